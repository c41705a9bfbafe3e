import math

import numpy as np
import torch

from pyanomaly.scoring import MSE, PSNR, gaussian_smooth, minmax, scores_from_errors


def test_psnr_known_value():
    target = torch.zeros(2, 1, 4, 4)
    pred = torch.full((2, 1, 4, 4), 0.1)  # MSE 0.01 -> 20 dB
    assert torch.allclose(PSNR()(pred, target), torch.tensor([20.0, 20.0]))
    assert torch.allclose(MSE()(pred, target), torch.tensor([0.01, 0.01]))


def test_patch_error_finds_a_small_anomaly():
    target = torch.zeros(1, 1, 16, 16)
    pred = target.clone()
    pred[..., :4, :4] = 1.0  # 16 of 256 pixels wrong
    whole = MSE()(pred, target).item()
    patch = MSE(patch=4)(pred, target).item()
    assert math.isclose(whole, 16 / 256, rel_tol=1e-6)
    assert math.isclose(patch, 1.0, rel_tol=1e-6)
    assert PSNR(patch=4)(pred, target).item() < PSNR()(pred, target).item()


def test_minmax_keeps_nan_and_handles_constant():
    out = minmax(np.array([np.nan, 2.0, 4.0, 3.0]))
    assert np.isnan(out[0]) and np.allclose(out[1:], [0.0, 1.0, 0.5])
    assert np.allclose(minmax(np.array([5.0, 5.0])), [0.0, 0.0])


def test_psnr_scores_are_one_minus_regularity():
    psnr = np.array([30.0, 20.0, 25.0, 40.0])
    valid = np.array([False, True, True, True])
    s = scores_from_errors(psnr, valid, higher_is_anomalous=False)
    # regularity = (psnr - 20) / 20 over the valid frames; score = 1 - regularity
    assert np.isnan(s[0])
    assert np.allclose(s[1:], [1.0, 0.75, 0.0])
    filled = scores_from_errors(psnr, valid, False, missing="fill")
    assert filled[0] == filled[1]


def test_gaussian_smoothing():
    x = np.zeros(21)
    x[10] = 1.0
    y = gaussian_smooth(x, 2.0)
    assert math.isclose(y.sum(), 1.0, rel_tol=0.05) and y.argmax() == 10 and np.allclose(y, y[::-1])
    c = gaussian_smooth(x, 2.0, causal=True)
    assert np.all(c[:10] == 0) and c[10] > 0  # never reads the future
    assert np.array_equal(gaussian_smooth(x, 0.0), x)
    with_nan = x.copy()
    with_nan[0] = np.nan
    out = gaussian_smooth(with_nan, 1.0)
    assert np.isnan(out[0]) and np.isfinite(out[1:]).all()
    # constant input stays constant at the borders (normalised kernel)
    assert np.allclose(gaussian_smooth(np.ones(7), 3.0), 1.0)
