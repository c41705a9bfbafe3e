"""From the raw errors of one video to its anomaly scores: orient, normalise, smooth, fill.

One object holds the whole scoring protocol, so the offline evaluation, the re-evaluation of
exported scores and the stream scorer apply the same steps and describe them the same way:

1. orient: the raw error becomes a value that grows with abnormality (``-PSNR``, ``MSE``);
2. normalise: a registered normaliser (:data:`~pyanomaly.scoring.normalize.NORMALIZERS`);
3. smooth: Gaussian of ``sigma`` frames, centred (offline) or causal (one-sided);
4. frames without a score: left NaN (``missing="exclude"``) or given the score of the
   nearest scored frame (``missing="fill"``; offline only, a stream never fills).

Example:
    >>> pipe = ScorePipeline(CausalNormalizer(), higher_is_anomalous=False, sigma=2.0, smooth_mode="causal")
    >>> pipe(error, valid)                              # (N,) -> (N,), whole video
    >>> s = pipe.stream(); s.push(e1, v1); s.push(e2, v2)   # the same scores, chunk by chunk
"""
from __future__ import annotations

import numpy as np

from .normalize import Normalizer, orient
from .smoothing import SMOOTH_MODES, CausalGaussianStream, gaussian_smooth

MISSING_MODES = ("exclude", "fill")


class ScorePipeline:
    """Args:
        normalizer: a built normaliser (see :mod:`pyanomaly.scoring.normalize`).
        higher_is_anomalous: direction of the raw error (the scorer's attribute).
        sigma: Gaussian smoothing in frames; 0 = off.
        smooth_mode: ``"centred"`` (offline) or ``"causal"`` (current and earlier frames only).
        missing: ``"exclude"`` or ``"fill"`` for frames without a score.
    """

    def __init__(self, normalizer: Normalizer, higher_is_anomalous: bool, sigma: float = 0.0,
                 smooth_mode: str = "centred", missing: str = "exclude"):
        if smooth_mode not in SMOOTH_MODES:
            raise ValueError(f"SCORE.SMOOTH_MODE must be one of {SMOOTH_MODES}, got {smooth_mode!r}")
        if missing not in MISSING_MODES:
            raise ValueError(f"SCORE.MISSING must be one of {MISSING_MODES}, got {missing!r}")
        if sigma < 0:
            raise ValueError(f"SCORE.SMOOTH_SIGMA must be >= 0, got {sigma}")
        self.normalizer, self.higher_is_anomalous = normalizer, bool(higher_is_anomalous)
        self.sigma, self.smooth_mode, self.missing = float(sigma), smooth_mode, missing

    @property
    def causal(self) -> bool:
        """True when every score uses its own and earlier frames only."""
        return self.normalizer.causal and (self.sigma == 0 or self.smooth_mode == "causal")

    def __call__(self, error: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Scores ``(N,)`` of one whole video from raw errors ``(N,)`` (``valid``: ``(N,)`` bool)."""
        return self.score(error, valid)[0]

    def score(self, error: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """Scores ``(N,)`` and how many frames had no score before ``missing`` was applied.

        A frame has no score when it has no prediction (``valid`` False or a non-finite
        error) or when the normaliser leaves it out (the warm-up of causal normalisation).
        """
        values = self._oriented(error, valid)
        scores = gaussian_smooth(self.normalizer(values), self.sigma, causal=self.smooth_mode == "causal")
        unscored = int((~np.isfinite(scores)).sum())
        return (fill_nearest(scores) if self.missing == "fill" else scores), unscored

    def stream(self) -> "ScoreStream":
        """A fresh per-video stream; needs a causal normaliser and causal (or no) smoothing."""
        if self.sigma > 0 and self.smooth_mode != "causal":
            raise ValueError("a stream cannot use centred smoothing (it reads later frames); "
                             "set SCORE.SMOOTH_MODE causal or SCORE.SMOOTH_SIGMA 0")
        return ScoreStream(self)

    def start(self) -> "ScoreStream | BufferedScores":
        """A fresh per-video scorer fed chunk by chunk: a :class:`ScoreStream` (scores final as
        the frames come) when the pipeline is causal, else :class:`BufferedScores` (scores at
        ``finish``, when the whole video is known). Both end with ``finish()``."""
        return ScoreStream(self) if self.causal else BufferedScores(self)

    def _oriented(self, error, valid) -> np.ndarray:
        error = np.asarray(error, dtype=np.float64).reshape(-1)
        ok = np.isfinite(error) if valid is None else (np.asarray(valid, dtype=bool) & np.isfinite(error))
        return np.where(ok, orient(error, self.higher_is_anomalous), np.nan)

    def describe(self) -> dict:
        """The protocol fragment written into ``metrics.json`` (plain types)."""
        out = dict(self.normalizer.describe())
        out.update({
            "smoothing_sigma": self.sigma,
            "smoothing": ("none" if self.sigma == 0 else
                          "centred Gaussian (offline)" if self.smooth_mode == "centred" else
                          "causal one-sided Gaussian (current and earlier frames)"),
            "smoothing_sigma_source": "the config (fixed before testing; never chosen on test labels)",
            "causal": self.causal,
        })
        return out


class ScoreStream:
    """Per-video state of a causal :class:`ScorePipeline` fed chunk by chunk (no fill)."""

    def __init__(self, pipeline: ScorePipeline):
        self.pipeline = pipeline
        self.normalizer = pipeline.normalizer.stream()
        self.smoother = CausalGaussianStream(pipeline.sigma)
        self._scores: list[np.ndarray] = []

    def push(self, error: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Scores ``(n,)`` of the next ``n`` frames (NaN: no score, and none will come)."""
        scores = self.smoother.push(self.normalizer.push(self.pipeline._oriented(error, valid)))
        self._scores.append(scores)
        return scores

    def finish(self) -> tuple[np.ndarray, int]:
        """Every score pushed ``(N,)`` and how many frames have none."""
        scores = np.concatenate(self._scores) if self._scores else np.empty(0)
        return scores, int((~np.isfinite(scores)).sum())


class BufferedScores:
    """Per-video state of an offline :class:`ScorePipeline`: errors are kept as they come and
    scored once the video ends (min-max and centred smoothing need the whole video)."""

    def __init__(self, pipeline: ScorePipeline):
        self.pipeline = pipeline
        self._errors: list[np.ndarray] = []
        self._valid: list[np.ndarray] = []

    def push(self, error: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Keeps ``error`` ``(n,)``; returns ``(n,)`` NaN (no score is final before the video ends)."""
        error = np.asarray(error, dtype=np.float64).reshape(-1)
        self._errors.append(error)
        self._valid.append(np.isfinite(error) if valid is None else np.asarray(valid, dtype=bool).reshape(-1))
        return np.full(error.shape, np.nan)

    def finish(self) -> tuple[np.ndarray, int]:
        """Scores ``(N,)`` of the whole video and how many frames had no score (see ``ScorePipeline.score``)."""
        if not self._errors:
            return np.empty(0), 0
        return self.pipeline.score(np.concatenate(self._errors), np.concatenate(self._valid))


def fill_nearest(scores: np.ndarray) -> np.ndarray:
    """NaN entries take the value of the nearest finite entry (the earlier one on a tie)."""
    scores = np.asarray(scores, dtype=np.float64)
    idx = np.flatnonzero(np.isfinite(scores))
    if idx.size == 0 or idx.size == scores.size:
        return scores.copy()
    t = np.arange(scores.size)
    right = np.clip(np.searchsorted(idx, t), 0, idx.size - 1)
    left = np.clip(right - 1, 0, idx.size - 1)
    use_left = np.abs(t - idx[left]) <= np.abs(idx[right] - t)
    return scores[np.where(use_left, idx[left], idx[right])]
