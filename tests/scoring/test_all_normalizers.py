"""Every registered normaliser keeps the contract of ``NORMALIZERS`` (:mod:`pyanomaly.scoring.normalize`).

Oriented values of one video ``(N,)`` (NaN: no prediction) -> scores ``(N,)``; NaN stays NaN and
leaves the other scores as if the frame were not there; a ``causal`` normaliser streams (chunks
== whole) and never reads a later frame, any other refuses to stream with a ``ValueError``.

A normaliser registered in ``NORMALIZERS`` without an entry in ``CASES`` fails here: add the
arguments that let it score a short video, and whether it keeps the order of the values.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from pyanomaly.registry import NORMALIZERS, build, registered_names

N = 40
CHUNKS = (1, 5, 7)

# name -> (constructor arguments for a video of N frames, does the score keep the values' order)
CASES = {
    "causal": (dict(window=20, warmup=3), False),  # each value against its own running history
    "minmax": ({}, True),
    "none": ({}, True),
}


def _package_names() -> list[str]:
    """Registered normalisers defined in the package (a test's own, registered from a module not
    under ``pyanomaly.``, is left out)."""
    return [n for n in registered_names(NORMALIZERS) if NORMALIZERS.get(n).__module__.startswith("pyanomaly.")]


def _normalizer(name):
    if name not in CASES:
        pytest.fail(f"registered normaliser '{name}' has no entry in CASES of {__file__}: add its arguments for a "
                    f"video of {N} frames and whether it keeps the order of the values")
    return build(NORMALIZERS, dict(type=name, **CASES[name][0]))


def _values(seed=0, missing=(0, 1, 9, 10, 23)):
    """Oriented errors ``(N,)`` of a video: noise around -30 (``-PSNR``), a bump, NaN where there is no prediction."""
    rng = np.random.default_rng(seed)
    v = -30 + rng.normal(0, 1, N)
    v[25:30] += 6
    v[list(missing)] = np.nan
    return v


names = pytest.mark.parametrize("name", _package_names())


@names
def test_one_score_per_value_nan_kept_and_left_out(name):
    norm = _normalizer(name)
    values = _values()
    kept = values.copy()
    scores = norm(values)
    np.testing.assert_array_equal(values, kept, err_msg=f"{name} changed its input")
    assert isinstance(scores, np.ndarray) and scores.shape == (N,) and scores.dtype.kind == "f"
    nan = np.isnan(values)
    assert np.isnan(scores[nan]).all(), f"{name}: a frame without prediction got a score"
    assert np.isfinite(scores).sum() >= N // 2, f"{name}: too few scores to check anything: {scores}"
    # a frame without prediction changes no other score: the same as if it were not in the video
    np.testing.assert_allclose(scores[~nan], norm(values[~nan]), rtol=1e-12, atol=1e-12, equal_nan=True)
    for empty in (np.empty(0), np.full(4, np.nan)):
        out = norm(empty)
        assert out.shape == empty.shape and np.isnan(out).all()
    json.dumps(norm.describe())  # written into metrics.json


@names
def test_causal_ones_stream_and_never_read_a_later_frame(name):
    norm = _normalizer(name)
    assert isinstance(norm.causal, bool)
    values = _values()
    if not norm.causal:
        with pytest.raises(ValueError, match="causal"):
            norm.stream()
        return
    whole = norm(values)
    for chunk in CHUNKS:
        stream = norm.stream()
        parts = [stream.push(values[s:s + chunk]) for s in range(0, N, chunk)]
        assert [p.shape for p in parts] == [values[s:s + chunk].shape for s in range(0, N, chunk)]
        np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-12, atol=1e-12, equal_nan=True,
                                   err_msg=f"{name}: stream in chunks of {chunk} differs from the whole video")
    rng = np.random.default_rng(1)
    for t in (5, 20, 27):
        later = values.copy()
        later[t + 1:] = rng.normal(0, 10, N - t - 1)
        later[t + 3] = np.nan
        np.testing.assert_allclose(norm(later)[:t + 1], whole[:t + 1], rtol=1e-12, atol=1e-12, equal_nan=True,
                                   err_msg=f"{name}: changing frames after {t} changed a score up to {t}")


@names
def test_order_is_kept_where_that_is_the_contract(name):
    norm = _normalizer(name)
    if not CASES.get(name, (None, False))[1]:
        pytest.skip(f"'{name}' scores a value against others, not by its rank")
    values = _values()
    scores = norm(values)
    ok = np.isfinite(values)
    order = np.argsort(values[ok])
    assert (np.diff(scores[ok][order]) > 0).all(), f"{name}: scores do not follow the order of the values"
