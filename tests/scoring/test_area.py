"""AREA: the fraction of mispredicted pixels, a raw error that ignores per-pixel noise."""
import numpy as np
import pytest
import torch

from pyanomaly.config import ConfigError, load_cfg
from pyanomaly.evaluation.build import build_task
from pyanomaly.scoring.build import build_scorer, describe_error
from pyanomaly.scoring import MSE, ErrorArea


def test_counts_pixels_above_the_threshold_over_the_frame_or_the_worst_patch():
    target = torch.zeros(1, 1, 16, 16)
    pred = target.clone()
    pred[..., :4, :4] = 0.3       # 16 of 256 pixels wrong
    pred[..., 8:, 8:] = 0.05      # 64 pixels off by less than the threshold
    assert ErrorArea(threshold=0.1)(pred, target).item() == pytest.approx(16 / 256)
    assert ErrorArea(threshold=0.1, patch=4)(pred, target).item() == pytest.approx(1.0)
    assert ErrorArea(threshold=0.01)(pred, target).item() == pytest.approx(80 / 256)
    # the threshold is a fraction of max_val: the same frames in [0, 255]
    assert ErrorArea(threshold=0.1, max_val=255.0)(pred * 255, target * 255).item() == pytest.approx(16 / 256)
    # channels are averaged before the threshold: one channel off by 0.3 of three is 0.1, not above
    rgb_pred, rgb_target = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    rgb_pred[:, 0] = 0.3
    assert ErrorArea(threshold=0.1)(rgb_pred, rgb_target).item() == 0.0
    assert ErrorArea(threshold=0.09)(rgb_pred, rgb_target).item() == 1.0


def test_noise_everywhere_does_not_outrank_a_small_real_error():
    """A noisy frame has the larger MSE; only the frame with a mispredicted object has area."""
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 1, 64, 64, generator=g)
    pred = target.clone()
    pred[0] += (torch.rand(1, 64, 64, generator=g) - 0.5) * 0.09    # noise within +-0.045 everywhere
    pred[1, :, 10:14, 10:14] += 0.2                                     # a 4x4 object mispredicted
    mse, area = MSE()(pred, target), ErrorArea(threshold=0.05)(pred, target)
    assert mse[0] > 2 * mse[1]  # by MSE the noise is the anomaly
    assert area[0].item() == 0.0 and area[1].item() == pytest.approx(16 / 4096)
    assert ErrorArea.higher_is_anomalous and not hasattr(MSE(), "threshold")


def test_bad_thresholds_name_the_key():
    with pytest.raises(ConfigError, match="SCORE.PIXEL_THRESHOLD"):
        load_cfg(None, ["SCORE.PIXEL_THRESHOLD", "1.5"])
    with pytest.raises(ConfigError, match="SCORE.PIXEL_THRESHOLD"):
        load_cfg(None, ["SCORE.PIXEL_THRESHOLD", "0.0"])
    with pytest.raises(ValueError, match="SCORE.PIXEL_THRESHOLD"):
        ErrorArea(threshold=-0.1)


def test_built_from_the_config_and_described_in_the_protocol(tmp_path):
    cfg = load_cfg(None, ["SCORE.ERROR", "AREA", "SCORE.PIXEL_THRESHOLD", "0.2", "SCORE.PATCH", "8"])
    scorer = build_scorer(cfg)
    assert isinstance(scorer, ErrorArea) and (scorer.threshold, scorer.patch) == (0.2, 8)
    assert "|error| > 0.2" in describe_error(cfg) and "worst 8x8 patch" in describe_error(cfg)
    # scorers without a threshold are built as before, and say nothing of one
    psnr = load_cfg(None, ["SCORE.PIXEL_THRESHOLD", "0.2"])
    assert not hasattr(build_scorer(psnr), "threshold") and "error|" not in describe_error(psnr)
    # the direction reaches the protocol: more area = more anomalous
    area = np.array([0.0, 0.01, 0.2, 0.3])
    cfg.defrost()
    cfg.SYSTEM.OUTPUT_DIR = str(tmp_path)
    metrics = build_task(cfg).evaluate_errors(["v"], [area], [np.array([0, 0, 1, 1])], None, tmp_path)
    assert metrics["auc_micro"] == 1.0 and metrics["protocol"]["higher_error_is_anomalous"] is True
    scores = np.load(tmp_path / "scores" / "npy" / "v_score.npy")
    assert np.allclose(scores, [0.0, 0.01 / 0.3, 0.2 / 0.3, 1.0])


def test_a_plugin_scorer_gets_the_threshold_only_when_it_takes_one():
    from pyanomaly.registry import SCORERS

    @SCORERS.register_module(name="TestThresholdScorer", force=True)
    class WithThreshold:
        higher_is_anomalous = True

        def __init__(self, max_val=1.0, patch=0, threshold=0.0):
            self.threshold = threshold

        def __call__(self, prediction, target):
            return ((prediction - target).abs() > self.threshold).flatten(1).float().mean(1)

    @SCORERS.register_module(name="TestPlainScorer", force=True)
    class Plain(WithThreshold):
        def __init__(self, max_val=1.0, patch=0):
            super().__init__(max_val, patch)

    cfg = load_cfg(None, ["SCORE.ERROR", "TestThresholdScorer", "SCORE.PIXEL_THRESHOLD", "0.3"])
    assert build_scorer(cfg).threshold == 0.3 and "|error| > 0.3" in describe_error(cfg)
    plain = load_cfg(None, ["SCORE.ERROR", "TestPlainScorer", "SCORE.PIXEL_THRESHOLD", "0.3"])
    assert build_scorer(plain).threshold == 0.0 and "error|" not in describe_error(plain)
