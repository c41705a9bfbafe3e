"""The one loop from a video's frames to its anomaly scores, offline and as a stream.

A method predicts every frame from earlier frames only (``predict_stream``, its state carried
from chunk to chunk), a scorer turns prediction and frame into a raw error per frame, and a
:class:`~pyanomaly.scoring.pipeline.ScorePipeline` turns the errors into scores. Offline
evaluation (``tools/test.py``, the evaluation hook) and streaming (``tools/score_video.py``)
run this same loop and differ only in the pipeline they give it: a causal pipeline makes
every score final the moment its frame is pushed; an offline one (per-video min-max) gives
the scores when the video ends.

Example:
    >>> video = VideoScorer(model, PSNR(), pipeline, torch.device("cpu"))
    >>> run = video.start()
    >>> for frames in chunks:                 # (n, C, H, W) float in [0, 1]
    ...     chunk = run.push(frames)          # chunk.errors, chunk.scores: (n,)
    >>> result = run.finish()                 # result.errors, result.scores: (N,)

Several videos go through one model together: one run per video, and :meth:`VideoScorer.push_many`
takes the next chunk of each (any lengths) and predicts them in shared forward passes
(the method's ``predict_streams``), each run keeping its own state, pipeline and results,
the same as if its video were scored alone:

    >>> runs = [video.start() for _ in range(3)]
    >>> chunks = video.push_many(runs, [a, b, c])   # one Chunk per run

With ``maps=True`` every chunk also carries the per-pixel map behind its errors (the scorer's
``error_map``: PSNR/MSE the squared error, AREA the absolute error, the cell scorers the
method's anomaly map), NaN on frames without a prediction:

    >>> chunk = VideoScorer(model, PSNR(), pipeline, device, maps=True).start().push(frames)
    >>> chunk.maps.shape                      # (n, H, W) float32
"""
from __future__ import annotations

import contextlib
import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from .pipeline import ScorePipeline

PRECISIONS = ("fp32", "bf16")


CPUINFO = Path("/proc/cpuinfo")
logger = logging.getLogger("pyanomaly")


def inference_precision(name: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context test-time prediction runs in: ``"fp32"`` (none) or ``"bf16"`` (bfloat16 autocast).
    bf16 on a CPU that emulates it is warned about, once."""
    if name not in PRECISIONS:
        raise ValueError(f"TEST.PRECISION must be one of {PRECISIONS}, got {name!r}")
    if name == "bf16":
        if device.type == "cpu" and native_bf16_cpu() is False:
            _warn_emulated_bf16()
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@functools.lru_cache(maxsize=None)
def native_bf16_cpu() -> bool | None:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX); None when it cannot be
    told (no ``/proc/cpuinfo``). Elsewhere torch emulates bf16, many times slower than fp32."""
    try:
        flags = set(CPUINFO.read_text().split())
    except OSError:
        return None
    return bool({"avx512_bf16", "amx_bf16"} & flags)


@functools.lru_cache(maxsize=None)
def _warn_emulated_bf16() -> None:
    logger.warning("TEST.PRECISION bf16 on a CPU without native bfloat16 (no AVX-512 BF16 or AMX): torch emulates "
                   "it, many times slower than fp32. TEST.PRECISION fp32 runs faster here (its scores differ from "
                   "bf16's by rounding)")


@dataclass
class Chunk:
    """What one pushed chunk of ``n`` frames gave.

    ``frames`` and ``prediction`` ``(n, C, H, W)`` float32 on the model's device; ``errors``
    ``(n,)`` float64, NaN where there is no prediction; ``valid`` ``(n,)`` bool; ``scores``
    ``(n,)``, NaN where no score is final yet (an offline pipeline scores at ``finish``) or none
    will come; ``start``: index of the chunk's first frame in the video; ``maps`` ``(n, H, W)``
    float32 on the CPU, the scorer's per-pixel error map, NaN on frames without a prediction
    (None unless the :class:`VideoScorer` keeps maps).
    """

    start: int
    frames: torch.Tensor
    prediction: torch.Tensor
    errors: np.ndarray
    valid: np.ndarray
    scores: np.ndarray
    maps: np.ndarray | None = None


@dataclass
class VideoResult:
    """A whole video: ``errors``, ``valid``, ``scores`` ``(N,)``; ``unscored``: frames without a
    score before the pipeline's fill; ``seconds`` spent predicting and scoring; ``maps``: the
    video's anomaly maps ``(N, h, w)`` as an evaluation keeps them (``EVAL.SAVE_MAPS``:
    :class:`~pyanomaly.evaluation.maps.MapRecorder`), else None."""

    errors: np.ndarray
    valid: np.ndarray
    scores: np.ndarray
    unscored: int
    seconds: float
    maps: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return int(self.errors.size)


def has_error_map(scorer) -> bool:
    """Whether ``scorer`` gives the per-pixel map behind its error: ``error_map(prediction, frames)
    -> (N, 1, H, W)``, higher = more anomalous."""
    return callable(getattr(scorer, "error_map", None))


class VideoScorer:
    """Method + scorer + pipeline; :meth:`start` one run per video.

    Args:
        model: a method with ``predict_stream(frames, state) -> (prediction, valid, state)`` and,
            to score several videos at once, ``predict_streams`` (:class:`~pyanomaly.models.base.VADModel`).
        scorer: raw error ``(prediction, frames) -> (n,)`` with ``higher_is_anomalous``.
        pipeline: how errors become scores (its direction must be the scorer's).
        device: where the model runs.
        precision: ``"fp32"`` or ``"bf16"`` (autocast); errors are computed in float32.
        maps: give every :class:`Chunk` the scorer's per-pixel ``error_map`` (costs a copy of
            each frame's map to the CPU); refused for a scorer that has none (FRAME_ERROR).
    """

    def __init__(self, model, scorer, pipeline: ScorePipeline, device: torch.device, precision: str = "fp32",
                 maps: bool = False):
        if precision not in PRECISIONS:
            raise ValueError(f"TEST.PRECISION must be one of {PRECISIONS}, got {precision!r}")
        output, reads = getattr(model, "output", "frame"), getattr(scorer, "reads", "frame")
        if output != reads:
            raise ValueError(f"the scorer reads a {reads} but the method gives a {output}")
        if bool(scorer.higher_is_anomalous) != pipeline.higher_is_anomalous:
            raise ValueError("the pipeline's error direction differs from the scorer's")
        if maps and not has_error_map(scorer):
            raise ValueError(f"the scorer {type(scorer).__name__} has no per-pixel error map (error_map): it reads "
                             "one error per frame")
        self.model, self.scorer, self.pipeline, self.device = model, scorer, pipeline, device
        self.precision, self.maps = precision, bool(maps)

    def start(self) -> "VideoRun":
        """A fresh run over one video (the model's state and the pipeline's start empty)."""
        return VideoRun(self)

    def score(self, chunks: Iterable[torch.Tensor], on_chunk: Callable[[Chunk], None] | None = None) -> VideoResult:
        """Push every chunk ``(n, C, H, W)`` of one video (calling ``on_chunk`` on each) and finish."""
        run = self.start()
        for frames in chunks:
            chunk = run.push(frames)
            if on_chunk is not None:
                on_chunk(chunk)
        return run.finish()

    @torch.no_grad()
    def push_many(self, runs: Sequence["VideoRun"], frames: Sequence[torch.Tensor]) -> list[Chunk]:
        """Predict and score the next frames of several videos: ``frames[i]`` ``(n_i, C, H, W)``
        continues ``runs[i]`` (runs of this scorer, each at most once). The frames are predicted
        together (``model.predict_streams``); each run gets its own :class:`Chunk`. The time
        spent is shared among the runs in proportion to their frames."""
        if len(runs) != len(frames):
            raise ValueError(f"push_many: {len(runs)} runs but {len(frames)} chunks")
        if any(r.video is not self for r in runs) or len({id(r) for r in runs}) != len(runs):
            raise ValueError("push_many: every run must be a distinct run started by this scorer")
        if not runs:
            return []
        start = time.perf_counter()
        xs = [f.to(self.device) for f in frames]
        with inference_precision(self.precision, self.device):
            predictions, ok, states = self._predict(xs, [r.state for r in runs])
        chunks = [run._scored(x, p, v, s) for run, x, p, v, s in zip(runs, xs, predictions, ok, states)]
        seconds = time.perf_counter() - start
        total = sum(x.shape[0] for x in xs)
        for run, x in zip(runs, xs):
            run.seconds += seconds * (x.shape[0] / total if total else 1.0 / len(runs))
        return chunks


    def _predict(self, xs: list[torch.Tensor], states: list) -> tuple[list, list, list]:
        many = getattr(self.model, "predict_streams", None)
        if many is not None:
            return many(xs, states)
        if len(xs) != 1:  # a model of its own with predict_stream only (no VADModel base)
            raise ValueError(f"{type(self.model).__name__} has no predict_streams: one video at a time")
        prediction, ok, state = self.model.predict_stream(xs[0], states[0])
        return [prediction], [ok], [state]


class VideoRun:
    """One video going through a :class:`VideoScorer`, chunk by chunk."""

    def __init__(self, video: VideoScorer):
        self.video = video
        self.scores = video.pipeline.start()
        self.state = None
        self.position = 0
        self.seconds = 0.0
        self._errors: list[np.ndarray] = []
        self._valid: list[np.ndarray] = []

    def push(self, frames: torch.Tensor) -> Chunk:
        """Predict and score the next frames ``(n, C, H, W)`` of the video."""
        return self.video.push_many([self], [frames])[0]

    def _scored(self, x: torch.Tensor, prediction: torch.Tensor, ok: torch.Tensor, state) -> Chunk:
        """The chunk ``x`` with the model's ``prediction`` and validity: errors, scores; the state carried."""
        v = self.video
        self.state = state
        prediction = prediction.float()
        valid = ok.cpu().numpy().astype(bool)
        # NaN where there is no prediction: exported errors then say so, and a re-score from
        # them cannot mistake the error of an empty prediction for a real one
        errors = np.where(valid, v.scorer(prediction, x).double().cpu().numpy(), np.nan)
        scores = self.scores.push(errors, valid)
        self._errors.append(errors)
        self._valid.append(valid)
        maps = None
        if v.maps:  # NaN, never zero, where there is no prediction: zero would read as "perfectly normal"
            # a copy: a cell scorer's map is the prediction itself, which the chunk carries too
            maps = v.scorer.error_map(prediction, x)[:, 0].cpu().numpy().astype(np.float32, copy=True)
            maps[~valid] = np.nan
        chunk = Chunk(self.position, x, prediction, errors, valid, scores, maps)
        self.position += x.shape[0]
        return chunk

    def finish(self) -> VideoResult:
        """The whole video's errors and scores."""
        scores, unscored = self.scores.finish()
        errors = np.concatenate(self._errors) if self._errors else np.empty(0)
        valid = np.concatenate(self._valid) if self._valid else np.empty(0, dtype=bool)
        return VideoResult(errors, valid, scores, unscored, self.seconds)
