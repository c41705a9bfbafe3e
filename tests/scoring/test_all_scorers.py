"""Every registered scorer keeps the contract of ``SCORERS``: ``(prediction, frame)`` ``(N, C, H, W)``
in [0, 1] -> a finite raw error ``(N,)`` whose direction ``higher_is_anomalous`` states.

Scorers are built as a run builds them (:func:`~pyanomaly.scoring.build.build_scorer` from
``SCORE.*``: ``max_val``, ``patch``, and ``threshold`` when the scorer takes one), over the
whole frame and over its worst patch, so a newly registered scorer is checked with no entry here.

A scorer that reads a method's anomaly map instead (``reads = "anomaly_map"``, the cell
scorers) keeps the contract of its kind: ``(map (N, 1, H, W), frame)`` -> ``(N,)``, from the
map alone, growing with it, a constant map giving its value. A scorer of a method's own error per
frame (``reads = "frame_error"``, ``FRAME_ERROR``) gives those ``(N,)`` values as they are.
"""
from __future__ import annotations

import pytest
import torch

from pyanomaly.config import load_cfg
from pyanomaly.registry import SCORERS, registered_names
from pyanomaly.scoring.build import build_scorer

N, H, W = 5, 16, 24
PATCHES = (0, 4)


def _package_names() -> list[str]:
    """Registered scorers defined in the package: tests register scorers of their own into the same
    registry (``TestThresholdScorer`` in ``tests/scoring/test_area.py``); their module is not under
    ``pyanomaly.``, and they are left out."""
    return [n for n in registered_names(SCORERS) if SCORERS.get(n).__module__.startswith("pyanomaly.")]


def _scorer(name, patch):
    return build_scorer(load_cfg(None, ["SCORE.ERROR", name, "SCORE.PATCH", str(patch)]))


def _frames(c, seed=0):
    return torch.rand(N, c, H, W, generator=torch.Generator().manual_seed(seed))


def _oriented(scorer, prediction, frame):
    """The scorer's error, made to grow with abnormality, as float64."""
    e = scorer(prediction, frame).double()
    return e if scorer.higher_is_anomalous else -e


def _worse(frame, scale, seed=1):
    """``frame`` plus a fixed error pattern times ``scale``, clamped to [0, 1]: every pixel's error
    grows with ``scale``."""
    noise = torch.randn(frame.shape, generator=torch.Generator().manual_seed(seed))
    return (frame + scale * noise).clamp(0, 1)


def _reads(name) -> str:
    return getattr(SCORERS.get(name), "reads", "frame")


CASES = [pytest.param(name, patch, c, id=f"{name}-patch{patch}-C{c}")
         for name in _package_names() if _reads(name) == "frame" for patch in PATCHES for c in (1, 3)]
MAP_CASES = [pytest.param(name, patch, id=f"{name}-patch{patch}")
             for name in _package_names() if _reads(name) == "anomaly_map" for patch in PATCHES]


ERROR_CASES = [name for name in _package_names() if _reads(name) == "frame_error"]


def test_every_scorer_reads_a_known_kind():
    assert {_reads(n) for n in _package_names()} <= {"frame", "anomaly_map", "frame_error"}
    assert MAP_CASES, "no anomaly-map scorer is registered (CELL_MAX, CELL_TOP)"
    assert ERROR_CASES, "no scorer of a method's own error is registered (FRAME_ERROR)"


@pytest.mark.parametrize("name", ERROR_CASES)
def test_a_frame_error_scorer_gives_the_method_s_errors_as_they_are(name):
    scorer = _scorer(name, 4)
    assert scorer.higher_is_anomalous is True
    errors = torch.tensor([-1.5, 0.0, 2.25, 7.0, 0.5], dtype=torch.float64)
    out = scorer(errors, _frames(1))
    assert out.shape == (N,) and out.dtype == torch.float32
    torch.testing.assert_close(out, errors.float())
    with pytest.raises(ValueError, match=r"one error per frame \(N,\)"):
        scorer(_frames(1), _frames(1))


@pytest.mark.parametrize("name, patch", MAP_CASES)
def test_an_anomaly_map_scorer_reads_the_map_alone_and_grows_with_it(name, patch):
    scorer = _scorer(name, patch)
    assert scorer.higher_is_anomalous is True
    amap = _frames(1) * 3.0  # (N, 1, H, W), the method's units
    out = scorer(amap, _frames(3))
    assert out.shape == (N,) and torch.isfinite(out).all()
    torch.testing.assert_close(scorer(amap, _frames(3, seed=5)), out)  # the frame is not read
    assert (scorer(amap + 0.5, None) >= out).all() and (scorer(amap * 2, None) >= out).all()
    torch.testing.assert_close(scorer(torch.full((N, 1, H, W), 1.5), None), torch.full((N,), 1.5))
    alone = torch.cat([scorer(amap[i:i + 1], None) for i in range(N)])
    torch.testing.assert_close(alone, out, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name, patch, c", CASES)
def test_maps_frames_to_one_finite_float_per_frame(name, patch, c):
    scorer = _scorer(name, patch)
    assert isinstance(scorer.higher_is_anomalous, bool), f"{name}.higher_is_anomalous must be a bool"
    frame = _frames(c)
    prediction = _worse(frame, 0.1)
    kept = frame.clone(), prediction.clone()
    for pred in (prediction, frame, 1 - frame):  # an ordinary, a perfect and a wrong prediction
        out = scorer(pred, frame)
        assert isinstance(out, torch.Tensor) and out.is_floating_point(), f"{name} returned {type(out)}"
        assert out.shape == (N,), f"{name}: expected ({N},), got {tuple(out.shape)}"
        assert torch.isfinite(out).all(), f"{name}: non-finite error {out}"
    assert torch.equal(frame, kept[0]) and torch.equal(prediction, kept[1]), f"{name} changed its inputs"


@pytest.mark.parametrize("name, patch, c", CASES)
def test_a_perfect_prediction_is_least_anomalous_and_a_worse_one_at_least_as_anomalous(name, patch, c):
    scorer = _scorer(name, patch)
    frame = _frames(c)
    errors = torch.stack([_oriented(scorer, _worse(frame, s), frame) for s in (0.0, 0.02, 0.1, 0.3, 1.0)])
    perfect = _oriented(scorer, frame, frame)
    assert torch.equal(errors[0], perfect)
    assert (errors >= perfect).all(), f"{name}: a prediction scored less anomalous than a perfect one"
    assert (errors[1:] >= errors[:-1]).all(), f"{name}: a worse prediction scored less anomalous:\n{errors}"
    wrong = _oriented(scorer, 1 - frame, frame)  # most pixels off by far more than any noise threshold
    assert (wrong > perfect).all(), f"{name}: a wrong prediction scored as well as a perfect one"


@pytest.mark.parametrize("name, patch, c", CASES)
def test_each_frame_is_scored_on_its_own(name, patch, c):
    scorer = _scorer(name, patch)
    frame = _frames(c)
    prediction = _worse(frame, 0.1)
    together = scorer(prediction, frame)
    alone = torch.cat([scorer(prediction[i:i + 1], frame[i:i + 1]) for i in range(N)])
    torch.testing.assert_close(alone, together, rtol=1e-6, atol=1e-6)
    flipped = scorer(prediction.flip(0), frame.flip(0))
    torch.testing.assert_close(flipped, together.flip(0), rtol=1e-6, atol=1e-6)
