"""The per-pixel error map behind each scorer's per-frame error (``error_map``).

Every package scorer that reads a frame or a map gives ``(N, 1, H, W)``, higher = more anomalous,
and its per-frame error is a reduction of that map: PSNR/MSE the frame (or worst-patch) mean of
the squared error, AREA the share of its absolute errors above the threshold, the cell scorers
their cells of the map itself. FRAME_ERROR has none, and a run asking for maps with it is refused
where it is set up, naming the scorer and the setting.
"""
from __future__ import annotations

import math

import pytest
import torch

from pyanomaly.config import load_cfg
from pyanomaly.errors import ConfigError
from pyanomaly.models.build import build_model
from pyanomaly.registry import SCORERS, registered_names
from pyanomaly.scoring import VideoScorer, has_error_map
from pyanomaly.scoring.build import build_pipeline, build_scorer, build_video_scorer, check_method_scorer
from pyanomaly.scoring.cells import cell_means
from pyanomaly.scoring.psnr import frame_or_worst_patch

N, H, W = 4, 16, 24


def _scorer(name, patch, *extra):
    return build_scorer(load_cfg(None, ["SCORE.ERROR", name, "SCORE.PATCH", str(patch), *extra]))


def _rand(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


# how each scorer's per-frame error follows from its map (scorer, map, patch) -> (N,)
REDUCE = {
    "MSE": lambda s, m, p: frame_or_worst_patch(m, p),
    "PSNR": lambda s, m, p: 10.0 * torch.log10(s.max_val ** 2 / frame_or_worst_patch(m, p).clamp_min(1e-10)),
    "AREA": lambda s, m, p: frame_or_worst_patch((m > s.threshold * s.max_val).float(), p),
    "CELL_MAX": lambda s, m, p: cell_means(m, p).amax(dim=1),
    "CELL_TOP": lambda s, m, p: cell_means(m, p).topk(max(1, math.ceil(s.top_fraction * cell_means(m, p).shape[1]
                                                                        - 1e-9)), dim=1).values.mean(dim=1),
}


def _package_names():
    return [n for n in registered_names(SCORERS) if SCORERS.get(n).__module__.startswith("pyanomaly.")]


def test_every_scorer_of_a_frame_or_map_has_a_map_and_only_frame_error_has_none():
    names = _package_names()
    with_map = {n for n in names if has_error_map(SCORERS.get(n))}
    assert with_map == {n for n in names if getattr(SCORERS.get(n), "reads", "frame") != "frame_error"}
    assert "FRAME_ERROR" in names and "FRAME_ERROR" not in with_map
    assert with_map <= set(REDUCE), f"say here how {sorted(with_map - set(REDUCE))} reduce their maps"


@pytest.mark.parametrize("patch", [0, 4])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", ["PSNR", "MSE", "AREA"])
def test_a_frame_scorer_s_error_is_its_map_reduced(name, patch, channels):
    scorer = _scorer(name, patch)
    frame = _rand((N, channels, H, W), 0)
    prediction = (frame + 0.1 * torch.randn(frame.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    prediction[2, :, 3:9, 5:15] = 1 - frame[2, :, 3:9, 5:15]  # one frame badly wrong in one place
    m = scorer.error_map(prediction, frame)
    assert m.shape == (N, 1, H, W) and m.dtype == torch.float32 and (m >= 0).all()
    torch.testing.assert_close(REDUCE[name](scorer, m, patch), scorer(prediction, frame))
    # the map is where the prediction is wrong: the bad patch is hotter than the rest of its frame
    assert m[2, 0, 3:9, 5:15].mean() > 3 * m[0].mean()
    if name in ("PSNR", "MSE"):  # the squared error, averaged over channels
        torch.testing.assert_close(m, (prediction - frame).pow(2).mean(dim=1, keepdim=True))
    else:  # AREA: the absolute error, averaged over channels
        torch.testing.assert_close(m, (prediction - frame).abs().mean(dim=1, keepdim=True))


@pytest.mark.parametrize("patch", [0, 8])
@pytest.mark.parametrize("name", ["CELL_MAX", "CELL_TOP"])
def test_a_cell_scorer_s_map_is_the_anomaly_map_and_its_error_the_map_s_cells(name, patch):
    scorer = _scorer(name, patch, "SCORE.TOP_FRACTION", "0.2")
    speed = 5 * _rand((N, 1, H, W), 2)
    m = scorer.error_map(speed, None)
    torch.testing.assert_close(m, speed)
    torch.testing.assert_close(REDUCE[name](scorer, m, patch), scorer(speed, None))
    if name == "CELL_MAX":
        torch.testing.assert_close(cell_means(m, patch).amax(dim=1), scorer(speed, None))


def test_maps_from_frame_error_are_refused_where_the_run_is_set_up():
    cfg = load_cfg(None, ["MODEL.NAME", "CopyLast", "SCORE.ERROR", "FRAME_ERROR", "EVAL.SAVE_MAPS", "True"])
    scorer = build_scorer(cfg)
    pipeline = build_pipeline(cfg, scorer.higher_is_anomalous)

    class OwnError(torch.nn.Module):  # a method giving one error per frame
        output = "frame_error"
    with pytest.raises(ValueError, match="FrameError has no per-pixel error map"):
        VideoScorer(OwnError(), scorer, pipeline, torch.device("cpu"), maps=True)
    with pytest.raises(ConfigError, match=r"^EVAL.SAVE_MAPS: SCORE.ERROR FRAME_ERROR gives one error per frame.*"
                                          r"CELL_MAX.*PSNR"):
        build_video_scorer(cfg, OwnError(), torch.device("cpu"), pipeline, scorer, maps="EVAL.SAVE_MAPS")
    own = OwnError()
    own.task = "anomaly_detection"
    with pytest.raises(ConfigError, match="EVAL.SAVE_MAPS: SCORE.ERROR FRAME_ERROR"):
        check_method_scorer(cfg, own)
    # the same run without maps is fine, and a frame scorer with maps too
    assert VideoScorer(OwnError(), scorer, pipeline, torch.device("cpu")).maps is False
    psnr = load_cfg(None, ["MODEL.NAME", "CopyLast", "EVAL.SAVE_MAPS", "True"])
    check_method_scorer(psnr, build_model(psnr, torch.device("cpu")))
