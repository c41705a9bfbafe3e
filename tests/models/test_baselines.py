"""The no-learning methods: copying the last frame and the speed of the optical flow."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from pyanomaly.config import get_defaults
from pyanomaly.errors import ConfigError
from pyanomaly.models import CopyLast, FlowSpeed
from pyanomaly.registry import MODELS, SCORERS, build
from pyanomaly.scoring import cell_means
from pyanomaly.scoring.build import build_scorer, check_scorer

from testutils import VideoList


def _moving_texture(n=6, h=48, w=64, speed=2, seed=0) -> torch.Tensor:
    """``(n, 1, h, w)`` in [0, 1]: a smooth texture sliding ``speed`` pixels right per frame."""
    rng = np.random.default_rng(seed)
    low = cv2.resize(rng.random((h // 4, w // 4)).astype(np.float32), (w + n * speed, h),
                     interpolation=cv2.INTER_CUBIC)
    return torch.from_numpy(np.stack([low[:, (n - t) * speed:(n - t) * speed + w] for t in range(n)]))[:, None].clamp(0, 1)


def test_copy_last_predicts_each_frame_by_the_one_before():
    frames = torch.rand(7, 1, 8, 8)
    model = build(MODELS, dict(type="CopyLast"), clip_length=5)  # offered clip_length, as every method is
    pred, valid = model.predict_video(frames, chunk=3)
    assert valid.tolist() == [False] + [True] * 6
    assert torch.equal(pred[1:], frames[:-1])
    assert not list(model.parameters()) and model.online and not model.has_weights


def test_flow_speed_is_the_speed_of_what_moves_and_no_speed_for_the_first_frame():
    frames = _moving_texture(speed=2)
    model = FlowSpeed(flow={"type": "dis", "preset": "medium"})
    speed, valid = model.predict_video(frames, chunk=4)
    assert speed.shape == (6, 1, 48, 64) and valid.tolist() == [False] + [True] * 5
    assert torch.isnan(speed[0]).all()  # the first frame: missing, never a speed of zero
    assert speed[1:, :, 8:-8, 8:-8].median().item() == pytest.approx(2.0, abs=0.3)
    still, _ = model.predict_video(frames[:1].expand(4, -1, -1, -1))
    assert still[1:].abs().max().item() < 0.05


def test_excess_subtracts_each_cells_training_quantile_and_survives_a_checkpoint():
    train = VideoList(_moving_texture(n=5, speed=1, seed=1), _moving_texture(n=4, speed=3, seed=2))
    model = FlowSpeed(flow={"type": "farneback"}, excess=0.5, cell=16)
    assert model.needs_training_videos
    with pytest.raises(ValueError, match="no fitted quantiles"):
        model.predict_video(_moving_texture())
    assert model.fit(train, torch.device("cpu"), progress=False) == 9
    assert model.quantiles.shape == (3, 4)  # 48x64 frames, 16x16 cells
    # 4 + 3 frames with a flow, at 1 and 3 pixels a frame: the median cell speed is near 1
    assert 0.7 < model.quantiles.median().item() < 1.6
    test = _moving_texture(speed=2, seed=3)
    excess, valid = model.predict_video(test)
    speed, _ = FlowSpeed(flow={"type": "farneback"}).predict_video(test)
    q = model.quantiles.repeat_interleave(16, 0).repeat_interleave(16, 1)
    torch.testing.assert_close(excess[valid], speed[valid] - q)
    cells = build(SCORERS, dict(type="CELL_MAX", patch=16))  # a cell's score: its mean speed minus its quantile
    torch.testing.assert_close(cells(excess[valid]), (cell_means(speed[valid], 16) - model.quantiles.flatten()).amax(1))
    # a new model takes the quantiles' grid from the checkpoint
    again = FlowSpeed(flow={"type": "farneback"}, excess=0.5, cell=16)
    again.load_state_dict(model.state_dict())
    torch.testing.assert_close(again.predict_video(test)[0][valid], excess[valid])
    with pytest.raises(ValueError, match=r"fitted on a \(3, 4\) grid.*\(2, 2\)"):
        again.predict_video(torch.rand(3, 1, 32, 32))
    # frames that are no multiple of the cell: the strip left over takes its nearest cell's quantile
    frames = torch.cat([test, test[..., :8]], dim=-1)  # 48x72: 8 pixels in no whole cell
    wide, ok = again.predict_video(frames)
    q_wide = torch.cat([q, q[:, -1:].expand(-1, 8)], dim=1)
    torch.testing.assert_close(wide[ok], FlowSpeed(flow={"type": "farneback"}).predict_video(frames)[0][ok] - q_wide)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="quantile in"):
        FlowSpeed(excess=1.5)
    with pytest.raises(ValueError, match="presets"):
        FlowSpeed(flow={"type": "dis", "preset": "slowest"})
    with pytest.raises(NotImplementedError, match="learns nothing"):
        CopyLast()({"frames": torch.rand(1, 3, 1, 8, 8)})


@pytest.mark.parametrize("method, error, fits", [("FlowSpeed", "PSNR", "CELL_MAX, CELL_TOP"),
                                                  ("CopyLast", "CELL_MAX", "AREA, MSE, PSNR")])
def test_a_scorer_of_the_wrong_kind_is_one_clear_error(method, error, fits):
    cfg = get_defaults()
    cfg.SCORE.ERROR = error
    with pytest.raises(ConfigError, match=f"SCORE.ERROR {error} reads .* but {method} gives .*use one of {fits}"):
        check_scorer(build(MODELS, dict(type=method)), build_scorer(cfg), error, method)
