"""Fusion of cues: statistics of the training videos, the rule, frames a cue cannot score, bad cue specs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pyanomaly.datasets.video import prepare_frame
from pyanomaly.models import CopyLast, Fusion
from pyanomaly.models.cue import resize_frames
from pyanomaly.registry import MODELS, SCORERS, build

from testutils import VideoList

_UNET = dict(type="FramePredictor", network=dict(type="UNet", in_channels=1, history=3, base_channels=4, depth=2),
             clip_length=4)


def _video(n, seed):
    return torch.rand(n, 1, 16, 24, generator=torch.Generator().manual_seed(seed))


def _raw(method, scorer, frames):
    """A cue's per-frame error computed on its own: NaN where the method has no prediction."""
    pred, valid = method.predict_video(frames, chunk=5)
    err = torch.full((frames.shape[0],), float("nan"), dtype=torch.float64)
    err[valid] = scorer(pred[valid], frames[valid]).double()
    return err.numpy()


@pytest.fixture
def unet_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = build(MODELS, dict(_UNET))
    path = tmp_path / "unet.pth"
    torch.save({"model": net.state_dict()}, path)
    return path, net


@pytest.mark.parametrize("rule", ["sum", "max"])
def test_the_fused_error_is_the_rule_over_cue_errors_normalised_on_the_training_videos(rule, unet_checkpoint):
    path, net = unet_checkpoint
    cues = [dict(name="psnr", method=dict(type="CopyLast"), error=dict(type="PSNR"), weight=2.0),
            dict(name="unet", method=dict(_UNET), error=dict(type="AREA", threshold=0.05), checkpoint=str(path))]
    model = Fusion(cues=cues, rule=rule, chunk=4)
    assert model.has_weights  # the U-Net's, read from its checkpoint when fitting
    train = [_video(9, 1), _video(7, 2)]
    assert model.fit(VideoList(*train), torch.device("cpu"), progress=False) == 16
    torch.testing.assert_close(model.cues[1].state_dict(), net.state_dict())
    psnr, area = SCORERS.get("PSNR")(), SCORERS.get("AREA")(threshold=0.05)
    # the statistics: over every training frame each cue scores, never a test frame
    for k, (method, scorer) in enumerate([(CopyLast(), psnr), (net.eval(), area)]):
        values = np.concatenate([_raw(method, scorer, v) for v in train])
        values = values[np.isfinite(values)]
        assert values.size == (8 + 6 if k == 0 else 6 + 4)
        assert float(model.mean[k]) == pytest.approx(values.mean(), rel=1e-6)
        assert float(model.std[k]) == pytest.approx(values.std(), rel=1e-6)
    test = _video(10, 3)
    fused, valid = model.predict_video(test, chunk=3)
    z_psnr = -(_raw(CopyLast(), psnr, test) - float(model.mean[0])) / float(model.std[0])  # lower PSNR = anomalous
    z_unet = (_raw(net, area, test) - float(model.mean[1])) / float(model.std[1])
    expected = 2.0 * z_psnr + z_unet if rule == "sum" else np.maximum(2.0 * z_psnr, z_unet)
    # frames the U-Net cannot score (its first 3: no full history) have no fused error, never a zero
    assert valid.tolist() == [False] * 3 + [True] * 7
    assert torch.isnan(fused[:3]).all()
    np.testing.assert_allclose(fused[3:].numpy(), expected[3:], rtol=1e-5, atol=1e-5)


def test_the_statistics_load_from_a_checkpoint_and_an_unfitted_fusion_refuses_to_score():
    spec = dict(cues=[dict(method=dict(type="CopyLast"), error=dict(type="MSE"))])
    model = Fusion(**spec)
    with pytest.raises(ValueError, match="no fitted statistics"):
        model.predict_stream(_video(3, 0))
    model.fit(VideoList(_video(6, 1)), torch.device("cpu"), progress=False)
    again = Fusion(**spec)
    again.load_state_dict(model.state_dict())
    assert torch.equal(again.mean, model.mean) and torch.equal(again.std, model.std)
    torch.testing.assert_close(again.predict_video(_video(5, 2))[0], model.predict_video(_video(5, 2))[0],
                               equal_nan=True)


def test_fit_frames_limits_the_training_frames_read():
    model = Fusion(cues=[dict(method=dict(type="CopyLast"), error=dict(type="MSE"))], fit_frames=4)
    assert model.fit(VideoList(_video(9, 1), _video(3, 2)), torch.device("cpu"), progress=False) == 4 + 3


@pytest.mark.parametrize("cue, message", [
    (dict(method=dict(type="CopyLast"), error=dict(type="AREA"), wieght=2), r"cues\[0\]: unknown key\(s\) \['wieght'\]"),
    (dict(method="CopyLast", error=dict(type="AREA")), r"cues\[0\]\.method: expected \{type: NAME"),
    (dict(method=dict(type="CopyLast")), r"cues\[0\]\.error: expected \{type: NAME"),
    (dict(method=dict(type="CopyLst"), error=dict(type="AREA")), r"cues\[0\]\.method: .*Did you mean 'CopyLast'"),
    (dict(method=dict(type="CopyLast"), error=dict(type="ARAE")), r"cues\[0\]\.error: .*unknown"),
    (dict(method=dict(type="CopyLast"), error=dict(type="CELL_MAX")),
     r"cues\[0\]\.error: CELL_MAX reads an anomaly map, but CopyLast gives a predicted frame"),
    (dict(method=dict(_UNET), error=dict(type="AREA")), r"cues\[0\]\.checkpoint: FramePredictor has learned weights"),
    (dict(method=dict(type="CopyLast"), error=dict(type="AREA"), weight=0), r"cues\[0\]\.weight: expected a number > 0"),
    (dict(method=dict(type="CopyLast"), error=dict(type="AREA"), size=[8]), r"cues\[0\]\.size: expected \[height, width\]"),
    (dict(method=dict(type="CopyLast"), error=dict(type="AREA"), size=[8, 0]), r"cues\[0\]\.size: expected \[height"),
])
def test_a_bad_cue_is_one_error_naming_its_key(cue, message):
    with pytest.raises(ValueError, match=message):
        Fusion(cues=[cue])


@pytest.mark.parametrize("name, message", [("missing.pth", r"cues\[0\]\.checkpoint: not found: .*missing.pth"),
                                           ("other.pth", r"cues\[0\]\.checkpoint .*other.pth: cannot load the "
                                                         "method's weights")])
def test_a_missing_or_foreign_cue_checkpoint_is_refused_when_fitting_naming_the_cue(tmp_path, name, message):
    torch.save({"model": {"weight": torch.zeros(2)}}, tmp_path / "other.pth")
    model = Fusion(cues=[dict(method=dict(_UNET), error=dict(type="AREA"), checkpoint=str(tmp_path / name))])
    with pytest.raises(ValueError, match=message):
        model.fit(VideoList(_video(6, 1)), torch.device("cpu"), progress=False)


def test_a_fitted_fusion_checkpoint_holds_the_cue_weights_and_needs_no_cue_checkpoint(unet_checkpoint):
    path, net = unet_checkpoint
    cues = [dict(name="unet", method=dict(_UNET), error=dict(type="AREA"), checkpoint=str(path))]
    model = Fusion(cues=cues)
    model.fit(VideoList(_video(8, 1)), torch.device("cpu"), progress=False)
    state = model.state_dict()
    path.unlink()  # a published fused checkpoint travels without the cue's own file
    again = Fusion(cues=cues)
    again.load_state_dict(state)
    again.eval()  # as every tool scores
    test = _video(7, 2)
    torch.testing.assert_close(again.predict_video(test)[0], model.predict_video(test)[0], equal_nan=True)


def test_bad_rules_and_cue_lists_are_refused():
    copy = dict(name="a", method=dict(type="CopyLast"), error=dict(type="AREA"))
    with pytest.raises(ValueError, match="rule must be one of"):
        Fusion(cues=[copy], rule="mean")
    with pytest.raises(ValueError, match="non-empty list"):
        Fusion(cues=[])
    with pytest.raises(ValueError, match=r"two cues named \['a'\]"):
        Fusion(cues=[copy, copy])


def test_a_cue_constant_on_the_training_videos_cannot_be_normalised():
    still = torch.full((5, 1, 16, 24), 0.5)
    model = Fusion(cues=[dict(name="copy", method=dict(type="CopyLast"), error=dict(type="AREA"))])
    with pytest.raises(ValueError, match="cue 'copy' gives the same error 0 on every training frame"):
        model.fit(VideoList(still), torch.device("cpu"), progress=False)



def test_resize_frames_makes_the_pixels_the_dataset_pipeline_makes_at_that_size():
    frames = _video(3, 4)
    pixels = frames.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    expected = np.stack([prepare_frame(p[..., 0], (8, 12), 1) for p in pixels]).astype(np.float32) / 255
    small = resize_frames(frames, (8, 12))
    assert small.shape == (3, 1, 8, 12)
    np.testing.assert_array_equal(small.permute(0, 2, 3, 1).numpy(), expected)
    assert resize_frames(frames, None) is frames and resize_frames(frames, (16, 24)) is frames


def test_a_sized_cue_fits_and_scores_on_frames_resized_to_its_size():
    appearance = dict(type="LocalAppearance", cell=4, grid=2, codewords=2, frame_stride=1)
    cues = [dict(name="copy", method=dict(type="CopyLast"), error=dict(type="PSNR"), size=[8, 12]),
            dict(name="look", method=appearance, error=dict(type="CELL_MAX", patch=4), size=[8, 12])]
    model = Fusion(cues=cues, parallel=False)
    train = [_video(6, 1), _video(5, 2)]
    model.fit(VideoList(*train), torch.device("cpu"), progress=False)
    assert tuple(model.cues[1].codebook.shape[:2]) == (2, 3)  # the cells of an 8x12 frame, not of 16x24
    test = _video(7, 3)
    fused, valid = model.predict_video(test)
    small = resize_frames(test, (8, 12))
    alone = build(MODELS, dict(appearance))
    alone.fit(VideoList(*[resize_frames(v, (8, 12)) for v in train]), torch.device("cpu"), progress=False)
    z_copy = -(_raw(CopyLast(), SCORERS.get("PSNR")(), small) - float(model.mean[0])) / float(model.std[0])
    z_look = (_raw(alone, SCORERS.get("CELL_MAX")(patch=4), small) - float(model.mean[1])) / float(model.std[1])
    assert valid.tolist() == [False] + [True] * 6
    np.testing.assert_allclose(fused[1:].numpy(), (z_copy + z_look)[1:], rtol=1e-5, atol=1e-5)


def test_cues_computed_in_parallel_give_the_errors_of_cues_computed_one_after_another(unet_checkpoint):
    path, _ = unet_checkpoint
    cues = [dict(name="flow", method=dict(type="FlowSpeed", cell=8), error=dict(type="CELL_TOP", patch=8)),
            dict(name="unet", method=dict(_UNET), error=dict(type="MSE"), checkpoint=str(path)),
            dict(name="copy", method=dict(type="CopyLast"), error=dict(type="PSNR"))]
    train, test = VideoList(_video(8, 1), _video(6, 2)), _video(9, 3)
    out = {}
    for parallel in (False, True):
        model = Fusion(cues=cues, parallel=parallel, chunk=4)
        model.fit(train, torch.device("cpu"), progress=False)
        for amp in (False, True):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):  # as TEST.PRECISION bf16 scores
                out[parallel, amp] = (model.mean.clone(), model.std.clone(), *model.predict_video(test, chunk=4))
    for amp in (False, True):
        (m0, s0, f0, v0), (m1, s1, f1, v1) = out[False, amp], out[True, amp]
        assert torch.equal(m0, m1) and torch.equal(s0, s1) and torch.equal(v0, v1)
        torch.testing.assert_close(f1, f0, rtol=0, atol=0, equal_nan=True)
    # autocast reached the U-Net in its worker thread: bfloat16 moved the fused error
    scored = out[True, False][3]
    assert not torch.allclose(out[True, True][2][scored], out[True, False][2][scored], rtol=0, atol=1e-7)
