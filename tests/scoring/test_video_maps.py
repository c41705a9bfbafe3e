"""The scoring loop keeping maps (``VideoScorer(..., maps=True)``): each chunk's ``maps`` ``(n, H, W)``
is the scorer's error map of the method's prediction, NaN (never zero) on frames without a
prediction, the same whatever the chunking and whether the video is scored alone or with others
(``push_many``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pyanomaly.config import load_cfg
from pyanomaly.models.build import build_model
from pyanomaly.scoring.build import build_video_scorer

H, W = 16, 20


def _video(n, seed):
    """``(n, 1, H, W)``: a bright square moving right over noise, different per seed."""
    g = torch.Generator().manual_seed(seed)
    x = 0.2 * torch.rand(n, 1, H, W, generator=g)
    for t in range(n):
        x[t, 0, 5:10, t % (W - 5):t % (W - 5) + 5] = 0.9
    return x


def _loop(method, error, maps=True):
    cfg = load_cfg(None, ["MODEL.NAME", method, "SCORE.ERROR", error, "SCORE.PATCH", "4",
                          "DATASET.IMAGE_SIZE", f"[{H}, {W}]"])
    model = build_model(cfg, torch.device("cpu")).eval()
    return build_video_scorer(cfg, model, torch.device("cpu"), maps="test" if maps else None)


def _maps(loop, video, chunk):
    run = loop.start()
    return np.concatenate([run.push(video[s:s + chunk]).maps for s in range(0, len(video), chunk)])


@pytest.mark.parametrize("method,error", [("CopyLast", "PSNR"), ("CopyLast", "AREA"), ("FlowSpeed", "CELL_MAX")])
def test_chunks_carry_the_scorer_s_maps_nan_without_prediction_and_chunking_changes_nothing(method, error):
    loop = _loop(method, error)
    video = _video(9, 0)
    run = loop.start()
    chunks = [run.push(video[s:s + 4]) for s in range(0, 9, 4)]
    maps = np.concatenate([c.maps for c in chunks])
    valid = np.concatenate([c.valid for c in chunks])
    assert maps.shape == (9, H, W) and maps.dtype == np.float32
    assert not valid[0] and valid[1:].all()
    assert np.isnan(maps[0]).all() and np.isfinite(maps[1:]).all()  # frame 0: no prediction, NaN not 0
    # each map is the scorer's map of the method's prediction of its frame
    for c in chunks:
        ok = torch.as_tensor(c.valid)
        np.testing.assert_allclose(c.maps[c.valid], loop.scorer.error_map(c.prediction[ok], c.frames[ok])[:, 0].numpy())
    if error == "CELL_MAX":  # the map is the method's anomaly map: the cell scorer reads the error off it
        errors = loop.scorer(torch.from_numpy(maps[1:])[:, None], None).numpy()
        np.testing.assert_allclose(errors, np.concatenate([c.errors for c in chunks])[1:], rtol=1e-5)
    if method == "CopyLast":  # the map is the change from the frame before: 0 where nothing changed
        assert maps[3][0, 0] < maps[3][5:10].max()
    np.testing.assert_allclose(_maps(loop, video, 9), maps, rtol=1e-5, equal_nan=True)  # whole == chunked
    np.testing.assert_allclose(_maps(loop, video, 1), maps, rtol=1e-5, equal_nan=True)


def test_push_many_gives_each_video_the_maps_it_gets_alone():
    loop = _loop("CopyLast", "MSE")
    videos = [_video(7, 1), _video(5, 2), _video(3, 3)]
    alone = [_maps(loop, v, 2) for v in videos]
    runs = [loop.start() for _ in videos]
    together = [[] for _ in videos]
    for s in range(0, 7, 2):
        part = [(i, v[s:s + 2]) for i, v in enumerate(videos) if s < len(v)]
        for (i, _), c in zip(part, loop.push_many([runs[i] for i, _ in part], [x for _, x in part])):
            together[i].append(c.maps)
    for a, t in zip(alone, together):
        np.testing.assert_allclose(np.concatenate(t), a, rtol=1e-6, equal_nan=True)
    assert not np.array_equal(alone[0][1:3], alone[1][1:3])  # different videos, different maps


def test_maps_are_off_by_default():
    loop = _loop("CopyLast", "PSNR", maps=False)
    assert loop.maps is False and loop.start().push(_video(3, 0)).maps is None
    assert load_cfg(None, []).EVAL.SAVE_MAPS is False
