"""An ensemble cue: a list of checkpoints of one method; the members' errors of a frame combined by a rule."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from pyanomaly.models import Fusion, ObjectCue
from pyanomaly.models.cue import build_cue
from pyanomaly.models.ensemble import Ensemble
from pyanomaly.registry import MODELS, SCORERS, build

from testutils import VideoList

_UNET = dict(type="FramePredictor", network=dict(type="UNet", in_channels=1, history=3, base_channels=4, depth=2),
             clip_length=4)


def _video(n, seed):
    return torch.rand(n, 1, 16, 24, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def members(tmp_path):
    """Three trainings of one U-Net predictor (different initial weights), saved as checkpoints."""
    nets, paths = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        net = build(MODELS, dict(_UNET)).eval()
        paths.append(tmp_path / f"s{seed}.pth")
        torch.save({"model": net.state_dict()}, paths[-1])
        nets.append(net)
    return nets, [str(p) for p in paths]


def _errors(net, scorer, frames):
    pred, valid = net.predict_video(frames, chunk=4)
    err = torch.full((frames.shape[0],), float("nan"), dtype=torch.float64)
    err[valid] = scorer(pred[valid], frames[valid]).double()
    return err.numpy()


def _combine(each, rule, higher_is_anomalous):
    """The members' errors ``(K, n)`` combined: the mean, or the most favourable (smallest error, largest PSNR)."""
    if rule == "mean":
        return each.mean(axis=0)
    return each.min(axis=0) if higher_is_anomalous else each.max(axis=0)


@pytest.mark.parametrize("rule", ["min", "mean"])
@pytest.mark.parametrize("error", [dict(type="AREA", threshold=0.05), dict(type="PSNR")])
def test_the_ensemble_error_of_a_frame_is_its_rule_over_its_members_errors(members, error, rule):
    nets, paths = members
    model = Fusion(cues=[dict(name="unets", method=dict(_UNET), error=error, checkpoint=paths, ensemble=rule)],
                   chunk=3)
    assert isinstance(model.cues[0], Ensemble) and len(model.cues[0].members) == 3
    model.fit(VideoList(_video(9, 1), _video(7, 2)), torch.device("cpu"), progress=False)
    for member, net in zip(model.cues[0].members, nets):
        torch.testing.assert_close(member.state_dict(), net.state_dict())
    scorer = build(SCORERS, dict(error))
    test = _video(11, 3)
    each = np.stack([_errors(net, scorer, test) for net in nets])
    assert not np.allclose(each[0, 3:], each[1, 3:])  # the members differ, so the choice matters
    best = _combine(each, rule, scorer.higher_is_anomalous)
    fused, valid = model.predict_video(test, chunk=4)
    assert valid.tolist() == [False] * 3 + [True] * 8  # no member predicts a frame without history
    sign = 1.0 if scorer.higher_is_anomalous else -1.0
    expected = sign * (best - float(model.mean[0])) / float(model.std[0])
    np.testing.assert_allclose(fused[3:].numpy(), expected[3:], rtol=1e-5, atol=1e-5)
    # the training statistics are those of the ensemble's own error, not of one member
    train_errors = np.concatenate([_combine(np.stack([_errors(n, scorer, v) for n in nets]), rule,
                                            scorer.higher_is_anomalous) for v in (_video(9, 1), _video(7, 2))])
    train_errors = train_errors[np.isfinite(train_errors)]
    assert float(model.mean[0]) == pytest.approx(train_errors.mean(), rel=1e-6)


def test_the_prediction_is_every_members_stacked_and_its_map_follows_the_rule(members):
    nets, paths = members
    cue = build_cue(0, dict(method=dict(_UNET), error=dict(type="MSE"), checkpoint=paths, ensemble="min"),
                    clip_length=4)
    for member, net in zip(cue.method.members, nets):
        member.load_state_dict(net.state_dict())
    cue.method.eval()
    # frames of very different brightness, so that no member predicts every frame best
    test = 0.1 * _video(10, 4) + torch.linspace(0.0, 0.9, 10)[torch.randperm(10, generator=torch.Generator().manual_seed(0))].view(-1, 1, 1, 1)
    whole, valid = cue.method.predict_video(test, chunk=10)
    parts, valid_parts = cue.method.predict_video(test, chunk=3)
    assert whole.shape == (10, 3, 1, 16, 24)
    torch.testing.assert_close(parts[valid], whole[valid])
    assert torch.equal(valid, valid_parts)
    alone = torch.stack([net.predict_video(test, chunk=10)[0] for net in nets], dim=1)  # (N, K, C, H, W)
    torch.testing.assert_close(whole[valid], alone[valid])
    mse = SCORERS.get("MSE")()
    errors = torch.stack([mse(alone[valid][:, k], test[valid]) for k in range(3)])  # (K, n)
    torch.testing.assert_close(cue.scorer(whole[valid], test[valid]).float(), errors.min(dim=0).values)
    pick = errors.argmin(dim=0)
    assert len(set(pick.tolist())) > 1  # different frames are best predicted by different members
    maps = cue.scorer.combine_maps(lambda p: (p - test[valid]).abs(), whole[valid], test[valid])
    torch.testing.assert_close(maps, (alone[valid] - test[valid][:, None]).abs()[torch.arange(pick.numel()), pick])
    mean = build_cue(0, dict(method=dict(_UNET), error=dict(type="MSE"), checkpoint=paths), 4).scorer  # the default
    torch.testing.assert_close(mean(whole[valid], test[valid]).float(), errors.mean(dim=0))
    torch.testing.assert_close(mean.combine_maps(lambda p: (p - test[valid]).abs(), whole[valid], test[valid]),
                               (alone[valid] - test[valid][:, None]).abs().mean(dim=1))


def test_a_fused_checkpoint_holds_every_members_weights(members, tmp_path):
    nets, paths = members
    spec = dict(cues=[dict(method=dict(_UNET), error=dict(type="AREA"), checkpoint=paths)])
    model = Fusion(**spec)
    model.fit(VideoList(_video(8, 1)), torch.device("cpu"), progress=False)
    for p in paths:  # a published fused checkpoint travels without the members' own files
        os.remove(p)
    again = Fusion(**spec)
    again.load_state_dict(model.state_dict())
    again.eval()  # as every tool scores
    test = _video(7, 2)
    torch.testing.assert_close(again.predict_video(test)[0], model.predict_video(test)[0], equal_nan=True)


@pytest.mark.parametrize("rule", ["min", "mean"])
def test_an_object_cue_may_be_an_ensemble(members, rule):
    _, paths = members
    model = ObjectCue(cue=dict(method=dict(_UNET), error=dict(type="AREA"), checkpoint=paths, ensemble=rule),
                      foreground=dict(method="difference", threshold=0.05, kernel=0, min_area=4), clip_length=4)
    model.fit(VideoList(_video(6, 1)), torch.device("cpu"), progress=False)
    maps, valid = model.predict_video(_video(8, 2))
    assert maps.shape == (8, 1, 16, 24) and not valid[:3].any() and valid[3:].any()
    assert torch.isfinite(maps[valid]).all() and (maps[valid] >= 0).all()


@pytest.mark.parametrize("checkpoint, message", [
    (["only.pth"], r"cues\[0\]\.checkpoint: an ensemble takes a list of at least 2 checkpoint paths"),
    (["a.pth", ""], r"cues\[0\]\.checkpoint: an ensemble takes a list of at least 2"),
    ({"a": 1}, r"cues\[0\]\.checkpoint: expected a path, or a list of paths"),
])
def test_a_bad_checkpoint_list_is_one_error_naming_the_key(checkpoint, message):
    with pytest.raises(ValueError, match=message):
        Fusion(cues=[dict(method=dict(_UNET), error=dict(type="AREA"), checkpoint=checkpoint)])


def test_a_bad_ensemble_rule_or_a_rule_without_an_ensemble_is_one_error_naming_the_key(members):
    _, paths = members
    with pytest.raises(ValueError, match=r"cues\[0\]\.ensemble: expected one of \('mean', 'min'\), got 'max'"):
        Fusion(cues=[dict(method=dict(_UNET), error=dict(type="AREA"), checkpoint=paths, ensemble="max")])
    with pytest.raises(ValueError, match=r"cues\[0\]\.ensemble: only for a cue whose checkpoint is a list"):
        Fusion(cues=[dict(method=dict(_UNET), error=dict(type="AREA"), checkpoint=paths[0], ensemble="mean")])


def test_a_method_without_weights_is_no_ensemble():
    with pytest.raises(ValueError, match=r"cues\[0\]\.checkpoint: CopyLast learns no weights"):
        Fusion(cues=[dict(method=dict(type="CopyLast"), error=dict(type="AREA"), checkpoint=["a.pth", "b.pth"])])


def test_a_missing_member_checkpoint_is_named_by_its_index(members, tmp_path):
    _, paths = members
    model = Fusion(cues=[dict(method=dict(_UNET), error=dict(type="AREA"),
                              checkpoint=[paths[0], str(tmp_path / "gone.pth")])])
    with pytest.raises(ValueError, match=r"cues\[0\]\.checkpoint\[1\]: not found: .*gone.pth"):
        model.fit(VideoList(_video(6, 1)), torch.device("cpu"), progress=False)


def test_flow_conditioned_members_share_their_flows_and_predict_what_each_predicts_alone():
    spec = dict(type="FlowConditionedPredictor", network=dict(type="UNet", base_channels=4, depth=2),
                flow=dict(type="dis", preset="ultrafast"), flow_scale=1.0)
    cue = build_cue(0, dict(method=spec, error=dict(type="MSE"), checkpoint=["a.pth", "b.pth", "c.pth"]),
                    clip_length=4)
    for j, member in enumerate(cue.method.members):  # three different "trainings"
        torch.manual_seed(j)
        for p in member.parameters():
            p.data.normal_(0, 0.3)
    cue.method.eval()
    video = 0.1 * _video(12, 5) + torch.linspace(0.0, 0.9, 12).view(-1, 1, 1, 1).flip(0)
    together, valid = cue.method.predict_video(video, chunk=5)  # the flows computed once, for all three
    alone = [m.predict_video(video, chunk=12) for m in cue.method.members]
    assert valid.tolist() == alone[0][1].tolist() == [False] * 3 + [True] * 9
    for k, (p, _) in enumerate(alone):
        assert not torch.allclose(p[valid], alone[(k + 1) % 3][0][valid])  # the members differ
        torch.testing.assert_close(together[valid][:, k], p[valid])
