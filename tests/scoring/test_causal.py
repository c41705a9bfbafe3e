"""Causal normalisation: scores from the recent normal past only, identical whole or in chunks."""
import numpy as np
import pytest

from pyanomaly.registry import build
from pyanomaly.scoring import NORMALIZERS, CausalNormalizer


def series(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(10.0, 1.0, n)


def test_never_reads_the_future():
    x = series()
    norm = CausalNormalizer(window=50, warmup=10, exclude_above=3.0)
    ref = norm(x)
    for cut in (10, 11, 57, 150):
        y = x.copy()
        y[cut:] = np.random.default_rng(cut).normal(100.0, 30.0, y.size - cut)  # wild later frames
        y[cut + 3] = np.nan
        out = norm(y)
        np.testing.assert_array_equal(out[:cut], ref[:cut])


def test_chunked_equals_whole():
    x = series()
    x[[5, 60, 61]] = np.nan
    norm = CausalNormalizer(window=40, warmup=8, exclude_above=2.0)
    whole = norm(x)
    stream = norm.stream()
    parts = [stream.push(x[a:b]) for a, b in ((0, 1), (1, 7), (7, 100), (100, 101), (101, 200))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_hand_computed_zscore_warmup_and_missing():
    x = np.array([np.nan, 1.0, 3.0, 1.0, 3.0, 2.0])
    out = CausalNormalizer(window=10, warmup=4, exclude_above=0)(x)
    assert np.isnan(out[:5]).all()  # frame 0: no prediction; frames 1-4: warm-up
    assert out[5] == pytest.approx((2.0 - 2.0) / 1.0)
    x = np.array([1.0, 3.0, 5.0])
    out = CausalNormalizer(window=2, warmup=2, exclude_above=0)(x)
    assert out[2] == pytest.approx((5.0 - 2.0) / 1.0)  # mean 2, population std 1 of [1, 3]
    out = CausalNormalizer(window=2, warmup=2, exclude_above=0)(np.array([1.0, 3.0, 5.0, 7.0]))
    assert out[3] == pytest.approx((7.0 - 4.0) / 1.0)  # window slides: [3, 5]


def test_window_forgets_old_frames():
    x = np.r_[np.zeros(20) + np.arange(20) % 2, np.full(40, 50.0) + np.arange(40) % 2]
    out = CausalNormalizer(window=10, warmup=4, exclude_above=0)(x)
    assert out[20] > 10  # the jump is anomalous at first
    assert abs(out[-1]) < 2  # then the history holds only the new level


def test_excluding_anomalies_keeps_the_baseline():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 300)
    x[150:250] += 8.0  # a long anomaly
    kept = CausalNormalizer(window=60, warmup=20, exclude_above=3.0)(x)
    adapt = CausalNormalizer(window=60, warmup=20, exclude_above=0.0)(x)
    assert np.nanmean(kept[200:250]) > 5  # still anomalous late in the event
    assert np.nanmean(adapt[220:250]) < 2  # the event became the new normal
    assert np.nanmean(np.abs(kept[260:])) < 2  # back to normal afterwards


def test_constant_input_does_not_explode():
    out = CausalNormalizer(window=20, warmup=5)(np.full(30, 25.0))
    assert np.nanmax(np.abs(out)) == 0.0
    out = CausalNormalizer(window=20, warmup=5)(np.r_[np.full(30, 25.0), 25.0 + 1e-9])
    assert abs(out[-1]) < 1e-3  # the std floor (0.1% of the mean) keeps rounding noise small


def test_registered_and_validated():
    norm = build(NORMALIZERS, dict(type="causal", window=30, warmup=5))
    assert isinstance(norm, CausalNormalizer) and norm.causal
    with pytest.raises(ValueError, match="warmup"):
        CausalNormalizer(window=10, warmup=1)
    with pytest.raises(ValueError, match="window"):
        CausalNormalizer(window=5, warmup=10)
    with pytest.raises(KeyError, match="did you mean|Did you mean 'causal'"):
        build(NORMALIZERS, dict(type="casual"))
    d = norm.describe()
    assert d["normalization"] == "causal running z-score" and d["causal_window"] == 30


def test_min_std_bounds_scores_after_an_all_zero_history():
    """AREA on a static scene is exactly 0: without a floor in its units one pixel scores ~1e9."""
    x = np.zeros(30)
    x[-1] = 1.0 / 4096  # one pixel of a 64x64 frame
    bare = CausalNormalizer(window=30, warmup=5, exclude_above=0)(x)
    floored = CausalNormalizer(window=30, warmup=5, exclude_above=0, min_std=0.002)(x)
    assert bare[-1] > 1e6
    assert floored[-1] == pytest.approx((1.0 / 4096) / 0.002)
    assert np.all(floored[5:-1] == 0.0)
    with pytest.raises(ValueError, match="min_std"):
        CausalNormalizer(min_std=-1.0)
    assert "0.002" in CausalNormalizer(min_std=0.002).describe()["causal_rule"]
