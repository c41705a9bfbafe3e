"""The scoring protocol of one video: offline and streamed, smoothing modes, missing frames."""
import numpy as np
import pytest

from pyanomaly.scoring import (CausalGaussianStream, CausalNormalizer, MinMaxNormalizer, NoNormalizer,
                               ScorePipeline, fill_nearest, gaussian_smooth, scores_from_errors)


def psnr_like(n=120, seed=0):
    rng = np.random.default_rng(seed)
    e = 30 + rng.normal(0, 1, n)
    e[70:80] -= 6  # a dip in PSNR = an anomaly
    return e


@pytest.mark.parametrize("sigma", [0.0, 1.5, 4.0])
def test_stream_equals_offline_causal_pipeline(sigma):
    e = psnr_like()
    valid = np.ones(e.size, bool)
    valid[:3] = False
    pipe = ScorePipeline(CausalNormalizer(window=50, warmup=10), False, sigma, "causal")
    assert pipe.causal
    whole = pipe(e, valid)
    s = pipe.stream()
    parts = [s.push(e[a:b], valid[a:b]) for a, b in ((0, 5), (5, 6), (6, 64), (64, 120))]
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=0, atol=1e-12, equal_nan=True)
    assert np.isnan(whole[:13]).all() and np.isfinite(whole[13:]).all()  # 3 unpredicted + 10 warm-up
    assert np.nanargmax(whole) in range(70, 80)


def test_causal_pipeline_never_reads_the_future():
    e = psnr_like()
    pipe = ScorePipeline(CausalNormalizer(window=30, warmup=5), False, 3.0, "causal")
    ref = pipe(e)
    f = e.copy()
    f[60:] = 0.0
    np.testing.assert_array_equal(pipe(f)[:60], ref[:60])
    centred = ScorePipeline(CausalNormalizer(window=30, warmup=5), False, 3.0, "centred")
    assert not centred.causal
    assert not np.array_equal(centred(f)[:60], centred(e)[:60])  # centred smoothing looks ahead


def test_streams_refuse_offline_steps():
    with pytest.raises(ValueError, match="whole video"):
        ScorePipeline(MinMaxNormalizer(), False).stream()
    with pytest.raises(ValueError, match="SMOOTH_MODE causal"):
        ScorePipeline(CausalNormalizer(), False, 2.0, "centred").stream()
    with pytest.raises(ValueError, match="SMOOTH_MODE"):
        ScorePipeline(MinMaxNormalizer(), False, 1.0, "forward")
    with pytest.raises(ValueError, match="MISSING"):
        ScorePipeline(MinMaxNormalizer(), False, missing="zero")
    none = ScorePipeline(NoNormalizer(), True).stream()
    np.testing.assert_array_equal(none.push(np.array([0.1, 0.3])), [0.1, 0.3])


def test_score_counts_frames_without_score_and_fills():
    e = np.array([np.nan, 30.0, 20.0, 25.0, 40.0])
    valid = np.isfinite(e)
    s, unscored = ScorePipeline(MinMaxNormalizer(), False).score(e, valid)
    assert unscored == 1 and np.isnan(s[0]) and np.allclose(s[1:], [0.5, 1.0, 0.75, 0.0])
    s, unscored = ScorePipeline(MinMaxNormalizer(), False, missing="fill").score(e, valid)
    assert unscored == 1 and s[0] == s[1]
    assert np.array_equal(scores_from_errors(e, valid, False, "minmax"),
                          ScorePipeline(MinMaxNormalizer(), False)(e, valid), equal_nan=True)


def test_fill_nearest():
    x = np.array([np.nan, np.nan, 1.0, np.nan, np.nan, 4.0, np.nan])
    np.testing.assert_array_equal(fill_nearest(x), [1, 1, 1, 1, 4, 4, 4])  # a tie takes the earlier frame
    assert np.isnan(fill_nearest(np.full(3, np.nan))).all()
    np.testing.assert_array_equal(fill_nearest(np.array([2.0])), [2.0])


def test_smoothing_edge_cases():
    assert gaussian_smooth(np.empty(0), 2.0).size == 0
    np.testing.assert_array_equal(gaussian_smooth(np.array([3.0]), 5.0), [3.0])
    np.testing.assert_array_equal(gaussian_smooth(np.array([3.0]), 5.0, causal=True), [3.0])
    assert np.isnan(gaussian_smooth(np.full(4, np.nan), 1.0)).all()
    x = np.r_[np.zeros(10), 1.0, np.zeros(10)]
    c = gaussian_smooth(x, 2.0, causal=True)
    assert c.argmax() == 10 and np.all(c[:10] == 0)  # one-sided: nothing before the peak
    assert np.all(np.diff(c[10:19]) < 0) and np.all(c[19:] == 0)  # a decaying tail, cut at 4 sigma
    # streamed smoothing with gaps and tiny chunks equals the offline causal one
    rng = np.random.default_rng(3)
    y = rng.random(50)
    y[[0, 7, 8, 30]] = np.nan
    s = CausalGaussianStream(1.7)
    streamed = np.concatenate([s.push(y[a:a + k]) for a, k in zip(range(0, 50, 3), [3] * 17)])
    np.testing.assert_allclose(streamed, gaussian_smooth(y, 1.7, causal=True), atol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(CausalGaussianStream(0.0).push(y[:5]), y[:5])
