"""ObjectCue: each foreground object scored by the cue's mean error over it, a frame's error = its worst object."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pyanomaly.models import Fusion, ObjectCue
from pyanomaly.models.object_cue import cue_error_map, object_means
from pyanomaly.registry import MODELS, SCORERS, build

from testutils import VideoList

H, W = 24, 32
_COPY = dict(method=dict(type="CopyLast"), error=dict(type="AREA"))
_DIFFERENCE = dict(method="difference", threshold=0.1, kernel=0, min_area=4)
_UNET = dict(type="FramePredictor", network=dict(type="UNet", in_channels=1, history=3, base_channels=4, depth=2),
             clip_length=4)


def _two_objects():
    """``(2, 1, H, W)``: a still frame at 0.2, then two squares: A at 0.6, B half 0.9 half 0.5.
    Copying the last frame, A's mean absolute error is 0.4 and B's 0.5."""
    video = torch.full((2, 1, H, W), 0.2)
    video[1, :, 2:8, 2:8] = 0.6                      # A: 36 pixels
    video[1, :, 12:20, 20:24] = 0.9                  # B: 32 pixels, half of them ...
    video[1, :, 16:20, 20:24] = 0.5                  # ... 0.5
    return video


def test_each_object_holds_its_mean_error_and_the_background_zero():
    errors = torch.zeros(1, 1, 6, 8)
    errors[0, 0, 1:3, 1:3] = torch.tensor([[1.0, 2.0], [3.0, 6.0]])  # object 1: mean 3
    errors[0, 0, 4:6, 5:8] = 0.5                                      # object 2: mean 0.5
    errors[0, 0, 0, 7] = 9.0                                          # background: ignored
    labels = torch.zeros(1, 6, 8, dtype=torch.int32)
    labels[0, 1:3, 1:3], labels[0, 4:6, 5:8] = 1, 2
    out = object_means(errors, labels)
    expected = torch.zeros(1, 1, 6, 8)
    expected[0, 0, 1:3, 1:3], expected[0, 0, 4:6, 5:8] = 3.0, 0.5
    torch.testing.assert_close(out, expected)
    # a frame's error = its worst object: CELL_MAX over 1-pixel cells is the largest pixel
    assert SCORERS.get("CELL_MAX")(patch=1)(out).tolist() == [3.0]


def test_a_frames_error_is_its_worst_objects_mean_error():
    model = ObjectCue(cue=_COPY, foreground=_DIFFERENCE)
    objects, valid = model.predict_video(_two_objects())
    assert valid.tolist() == [False, True]  # frame 0: nothing to copy, no previous frame to differ from
    assert torch.isnan(objects[0]).all()    # not valid: no made-up zero
    expected = torch.zeros(1, H, W)
    expected[:, 2:8, 2:8], expected[:, 12:20, 20:24] = 0.4, 0.5
    torch.testing.assert_close(objects[1], expected)
    assert SCORERS.get("CELL_MAX")(patch=1)(objects[1:]).tolist() == pytest.approx([0.5])


def test_a_scorers_own_error_map_is_preferred():
    class Squared:
        def error_map(self, prediction, frames):
            return (prediction - frames).pow(2).mean(dim=1)

    p, f = torch.full((1, 3, 2, 2), 0.5), torch.zeros(1, 3, 2, 2)
    assert cue_error_map("frame", Squared(), p, f).shape == (1, 1, 2, 2)
    torch.testing.assert_close(cue_error_map("frame", Squared(), p, f), torch.full((1, 1, 2, 2), 0.25))
    torch.testing.assert_close(cue_error_map("frame", object(), p, f), torch.full((1, 1, 2, 2), 0.5))
    torch.testing.assert_close(cue_error_map("anomaly_map", Squared(), p[:, :1], f), p[:, :1])


def test_frames_without_objects_are_not_valid():
    still = torch.full((4, 1, H, W), 0.3)
    objects, valid = ObjectCue(cue=_COPY, foreground=_DIFFERENCE).predict_video(still)
    assert not valid.any() and torch.isnan(objects).all()


def test_an_object_cue_is_a_fusion_cue():
    spec = dict(type="ObjectCue", cue=dict(method=dict(type="FlowSpeed", flow=dict(type="dis", preset="ultrafast")),
                                           error=dict(type="CELL_MAX")), foreground=_DIFFERENCE)
    fusion = Fusion(cues=[dict(name="objects", method=spec, error=dict(type="CELL_MAX", patch=1))])
    train = [_moving_square(8, 1), _moving_square(7, 2)]
    fusion.fit(VideoList(*train), torch.device("cpu"), progress=False)
    alone = build(MODELS, dict(spec))
    raw = [alone.predict_video(v) for v in train]
    values = np.concatenate([SCORERS.get("CELL_MAX")(patch=1)(m[ok]).double().numpy() for m, ok in raw])
    assert float(fusion.mean[0]) == pytest.approx(values.mean(), rel=1e-6)
    test = _moving_square(6, 3)
    fused, valid = fusion.predict_video(test, chunk=4)
    objects, ok = alone.predict_video(test)
    assert valid.tolist() == ok.tolist()
    expected = (SCORERS.get("CELL_MAX")(patch=1)(objects[ok]).double() - fusion.mean[0]) / fusion.std[0]
    torch.testing.assert_close(fused[valid].double(), expected, rtol=1e-5, atol=1e-5)


def _moving_square(n, seed):
    g = torch.Generator().manual_seed(seed)
    video = 0.2 + 0.1 * torch.rand(n, 1, H, W, generator=g)
    speed = 1 + seed  # pixels a frame: a different speed per video
    for t in range(n):
        x = (speed * t) % (W - 6)
        video[t, :, 8:14, x:x + 6] = 0.9
    return video


def test_the_cue_weights_are_read_when_fitted_and_kept_in_the_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = build(MODELS, dict(_UNET))
    path = tmp_path / "unet.pth"
    torch.save({"model": net.state_dict()}, path)
    spec = dict(cue=dict(method=dict(_UNET), error=dict(type="AREA"), checkpoint=str(path)), foreground=_DIFFERENCE)
    model = ObjectCue(**spec)
    assert model.has_weights
    model.fit(VideoList(_moving_square(6, 1)), torch.device("cpu"), progress=False)
    torch.testing.assert_close(model.cue.state_dict(), net.state_dict())
    path.unlink()  # the fitted ObjectCue's checkpoint needs no cue file
    again = ObjectCue(**spec)
    again.load_state_dict(model.state_dict())
    test = _moving_square(8, 2)
    torch.testing.assert_close(again.eval().predict_video(test)[0], model.eval().predict_video(test)[0], equal_nan=True)
    with pytest.raises(ValueError, match=r"ObjectCue cue\.checkpoint: not found"):
        again.fit(VideoList(_moving_square(6, 1)), torch.device("cpu"), progress=False)


@pytest.mark.parametrize("spec, message", [
    (dict(cue=dict(method=dict(type="CopyLast"), error=dict(type="CELL_MAX"))),
     r"ObjectCue cue\.error: CELL_MAX reads an anomaly map, but CopyLast gives a predicted frame"),
    (dict(cue=dict(_COPY, weight=2)), r"ObjectCue cue\.weight: an ObjectCue has one cue"),
    (dict(cue=dict(_COPY, size=[8, 8])), r"ObjectCue cue\.size: an ObjectCue's cue works at the frames' own size"),
    (dict(cue=dict(_COPY, train="configs/ped2_unet_small.yaml")),
     r"ObjectCue cue\.train: only a Fusion's cues are trained by a recipe"),
    (dict(cue=_COPY, foreground=dict(method="mgo2")),
     r"ObjectCue foreground\.method: expected one of \['difference', 'knn', 'mog2'\], got 'mgo2'"),
    (dict(cue=_COPY, foreground=dict(treshold=0.1)), r"ObjectCue foreground: unknown key\(s\) \['treshold'\]"),
])
def test_a_bad_spec_is_one_error_naming_the_key(spec, message):
    with pytest.raises(ValueError, match=message):
        build(MODELS, dict(type="ObjectCue", **spec))
