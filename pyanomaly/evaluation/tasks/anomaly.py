"""The anomaly-detection task: per-frame scores of a split's videos, compared with their labels.

Each video is predicted as one stream and scored by the scoring loop
(:class:`~pyanomaly.scoring.video.VideoScorer`: method + scorer + pipeline); the evaluators turn
scores and labels into metrics (micro and macro AUC, EER, AP, ...), and the run directory gets
``metrics.json`` with its ``protocol`` block, ``scores/``, ``plots/`` and ``report.html``; with
``EVAL.SAVE_MAPS`` the scoring loop keeps each frame's per-pixel error map and ``scores/maps/``
gets one file per video (:mod:`..maps`). The baselines of ``EVAL.BASELINES`` are scored on the
same videos with the same protocol and written beside the metrics (``baselines``;
:mod:`..baselines`). Re-scoring exported errors (``tools/test.py --scores``) runs the same
pipeline and evaluators without a model (:meth:`AnomalyDetection.evaluate_errors`).

Under ``torchrun`` the videos are shared out across processes (video ``i`` to rank
``i % world``) and gathered on every rank, so each test frame is scored exactly once.

Example:
    >>> task = build_task(cfg)                       # pyanomaly.evaluation.build
    >>> metrics = task.evaluate(model, test_set, torch.device("cpu"), Path("outputs/run"))
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from pyanomaly.flow import OpticalFlow
from pyanomaly.registry import TASKS, accepted_arguments
from pyanomaly.scoring.pipeline import ScorePipeline
from pyanomaly.scoring.video import VideoResult, VideoScorer
from pyanomaly.utils import atomic_write_text

from ..ablation import ablation_table, exports_metrics
from ..baselines import Baselines
from ..maps import MapRecorder
from ..kinds import auc_by_kind, exports_by_kind, kinds_table
from ..outputs import OutputOptions, write_outputs
from ..topk import TopFrames, select_top

logger = logging.getLogger("pyanomaly")

AUC_WORDS = {
    "auc_micro": "ROC AUC over all labelled test frames of all videos concatenated",
    "auc_macro": "mean of per-video ROC AUCs over videos holding both classes; single-class videos left out and "
                 "counted in videos_single_class",
}


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@TASKS.register_module(name="anomaly_detection")
class AnomalyDetection:
    """Frame-level anomaly detection (see the module docstring).

    Args:
        pipeline: how raw errors become scores (``SCORE.*``).
        video_scorer: ``(model, device) -> VideoScorer`` with that pipeline: the scoring loop.
        evaluators: ``(names, scores, labels, groups) -> dict`` each, merged in order.
        protocol: what else describes the protocol (error in words, frame size, clip length,
            thresholds, ...), written into ``metrics.json``'s ``protocol`` block.
        outputs: which files to write.
        chunk: frames per forward pass.
        top_k: top-scoring frames per video kept for the report (0 = none).
        progress: show a progress bar.
        split: name of the scored split, handed to a method's own ``write_outputs``.
        baselines: methods without learning scored beside the method (:class:`..baselines.Baselines`).
    """

    def __init__(self, pipeline: ScorePipeline, video_scorer: Callable[..., VideoScorer], evaluators: Sequence = (),
                 protocol: dict | None = None, outputs: OutputOptions | None = None, chunk: int = 64, top_k: int = 0,
                 progress: bool = True, split: str = "testing", baselines: Baselines | None = None):
        if int(chunk) < 1:
            raise ValueError(f"TEST.CHUNK must be >= 1 frame, got {chunk}")
        self.pipeline, self.video_scorer, self.evaluators = pipeline, video_scorer, list(evaluators)
        self.protocol = dict(protocol or {})
        self.outputs = outputs or OutputOptions()
        self.chunk, self.top_k, self.progress, self.split = int(chunk), int(top_k), bool(progress), split
        self.baselines = baselines
        self._warned_unlabelled = False
        self._warned_unscored: set[str] = set()  # videos already named in a warning (evaluations repeat)

    @property
    def metric_names(self) -> tuple[str, ...] | None:
        """The scalar metrics ``evaluate`` can produce (each evaluator's ``metric_names``), or
        None when an evaluator does not say (a plugin's)."""
        names = [getattr(ev, "metric_names", None) for ev in self.evaluators]
        if any(n is None for n in names):
            return None
        return tuple(sorted({m for n in names for m in n} | {"inference_fps"}))

    # -- with a model ---------------------------------------------------------------------
    def evaluate(self, model, dataset, device: torch.device, out_dir: str | Path | None = None) -> dict:
        """Score every video of ``dataset`` with ``model``; with ``out_dir`` (rank 0) write the run's files."""
        start = time.perf_counter()
        results, tops = self.predict(model, dataset, device)
        seconds = time.perf_counter() - start
        labels = [dataset.labels(i) for i in range(len(dataset.videos))]
        names = list(dataset.names)
        metrics = self.evaluate_scores(names, results, labels, dataset.groups)
        metrics["inference_fps"] = sum(dataset.lengths) / max(seconds, 1e-9)
        events = getattr(dataset, "events", None)
        if events:
            metrics["auc_by_kind"] = auc_by_kind(names, [r.scores for r in results], labels, events)
        if all(label is None for label in labels):
            metrics["labels_missing"] = getattr(dataset, "labels_missing", None) or "no video of the split has labels"
            if not self._warned_unlabelled and _world()[0] == 0:
                logger.warning("every metric is n/a: %s", metrics["labels_missing"])
                self._warned_unlabelled = True
        if self.baselines:
            metrics["baselines"] = self.baselines.evaluate(self, dataset, device)
        scores = [r.scores for r in results]
        top = select_top(tops, dict(zip(names, scores)), self.top_k, dict(zip(names, labels)))
        if out_dir is not None and _world()[0] == 0:
            own = getattr(model, "write_outputs", None)
            if own is not None:  # what a method makes of the videos besides scores (STREAMER: events.json)
                takes_labels = "labels" in (accepted_arguments(own) or ())  # Fusion's ablation exports carry them
                own(Path(out_dir), names, self.split, **({"labels": labels} if takes_labels else {}))
                if (Path(out_dir) / "cues").is_dir():  # Fusion's exports: the ablation of its cues
                    metrics["cues"] = self.write_ablation(Path(out_dir) / "cues")
                    if events:  # which cues catch which kind
                        self.write_by_kind(Path(out_dir) / "cues", events)
            write_outputs(Path(out_dir), names, [r.errors for r in results], scores, labels, metrics, self.outputs,
                          groups=dataset.groups, top=top, maps=[r.maps for r in results])
        return metrics

    def write_ablation(self, folder: Path) -> dict[str, dict]:
        """``folder/ablation.md`` and ``ablation.json``: every export under ``folder`` re-scored under
        this protocol (:func:`~..ablation.exports_metrics`); returns its rows' main metrics."""
        rows = exports_metrics(folder, self.pipeline)
        table = ablation_table(rows)
        atomic_write_text(folder / "ablation.md", table)
        atomic_write_text(folder / "ablation.json", json.dumps(rows, indent=1))
        logger.info("each subset of the cues under this protocol (%s):\n%s", folder / "ablation.md", table)
        keys = ("auc_micro", "auc_macro", "eer", "ap", "frames_evaluated", "frames_unscored")
        return {name: {k: m.get(k) for k in keys} for name, m in rows.items()}

    def write_by_kind(self, folder: Path, events) -> str:
        """``folder/by_kind.md``: every export under ``folder`` re-scored under this protocol, micro
        AUC by kind (:func:`~..kinds.exports_by_kind`); returns the table."""
        table = kinds_table(exports_by_kind(folder, events, self.pipeline))
        atomic_write_text(folder / "by_kind.md", table)
        logger.info("micro AUC by kind of each export under %s (%s):\n%s", folder, folder / "by_kind.md", table)
        return table

    def predict(self, model, dataset, device: torch.device, video: VideoScorer | None = None,
                top_k: int | None = None) -> tuple[list[VideoResult], list[TopFrames]]:
        """Errors and scores of every video (in order), and each video's kept top frames;
        ``video`` replaces the task's scoring loop (a baseline's error measure), ``top_k`` the
        number of frames kept per video. A loop that keeps maps gives each result its ``maps``
        ``(N, h, w)`` float16, downsampled by ``outputs.maps_downsample``."""
        top_k = self.top_k if top_k is None else int(top_k)
        if getattr(model, "output", "frame") == "frame_error":
            top_k = 0  # one number per frame: no predicted frame or map to show beside the frame
        rank, world = _world()
        video = video if video is not None else self.video_scorer(model, device)
        higher = video.pipeline.higher_is_anomalous
        anomaly_map = getattr(model, "output", "frame") == "anomaly_map"
        flow = getattr(model, "flow", None)  # a method computing optical flow: the report shows it
        flow = flow if isinstance(flow, OpticalFlow) else None
        mine = list(range(rank, len(dataset.videos), world))
        results: dict[int, tuple[VideoResult, TopFrames]] = {}
        was_training = model.training
        model.eval()
        try:
            for i in tqdm(mine, desc="scoring", unit="video", disable=not self.progress or rank != 0, leave=False):
                top = TopFrames(dataset.names[i], top_k, anomaly_map=anomaly_map, flow=flow)
                maps = MapRecorder(self.outputs.maps_downsample) if getattr(video, "maps", False) else None

                def keep(c, top=top, maps=maps):
                    if top_k > 0:
                        top.offer(c.errors if higher else -c.errors, c.start, c.frames, c.prediction)
                    if maps is not None:
                        maps.add(c.maps)
                n = dataset.lengths[i]
                chunks = (dataset.video_frames(i, s, s + self.chunk) for s in range(0, n, self.chunk))
                result = video.score(chunks, keep)
                if maps is not None:
                    result.maps = maps.array()
                    maps.close()
                results[i] = (result, top)
        finally:
            model.train(was_training)
        if world > 1:
            gathered: list = [None] * world
            dist.all_gather_object(gathered, results)
            results = {k: v for part in gathered for k, v in part.items()}
        ordered = [results[i] for i in range(len(dataset.videos))]
        return [r for r, _ in ordered], [t for _, t in ordered]

    # -- from errors or scores ------------------------------------------------------------------
    def evaluate_scores(self, names: Sequence[str], results: Sequence[VideoResult],
                        labels: Sequence[np.ndarray | None], groups: Sequence[str] | None,
                        error: str | None = None) -> dict:
        """``metrics.json``'s content (with ``protocol``) from the videos' scores and labels."""
        scores = [r.scores for r in results]
        metrics: dict = {}
        for ev in self.evaluators:
            metrics.update(ev(list(names), scores, list(labels), groups))
        no_prediction = int(sum((~(r.valid & np.isfinite(r.errors))).sum() for r in results))
        metrics["protocol"] = self.describe(no_prediction, int(sum(r.unscored for r in results)), error)
        unscored = [(n, len(r.scores)) for n, r in zip(names, results) if not np.isfinite(r.scores).any()]
        if unscored:
            metrics["videos_without_score"] = [n for n, _ in unscored]
            new = [(n, k) for n, k in unscored if n not in self._warned_unscored]
            if new and _world()[0] == 0:
                logger.warning("%d video(s) have no frame with a score and count in no metric: %s. A prediction "
                               "needs %s frames (DATASET.CLIP_LENGTH); a shorter video, or one none of whose frames "
                               "the method could score, is left out", len(new),
                               ", ".join(f"'{n}' ({k} frames)" for n, k in new), self.protocol.get("clip_length", "?"))
            self._warned_unscored.update(n for n, _ in new)
        return metrics

    def evaluate_errors(self, names: Sequence[str], errors: Sequence[np.ndarray], labels: Sequence[np.ndarray | None],
                        groups: Sequence[str] | None, out_dir: str | Path | None = None,
                        error: str | None = None, note: str | None = None, protocol: dict | None = None) -> dict:
        """Score exported raw errors (NaN = no prediction) with the pipeline, evaluate, write ``out_dir``.

        ``error`` says what the errors are; ``note`` stands in the report where predictions
        would be shown; ``protocol`` is added to the ``protocol`` block.
        """
        results = []
        for e in errors:
            e = np.asarray(e, dtype=np.float64)
            scores, unscored = self.pipeline.score(e, np.isfinite(e))
            results.append(VideoResult(e, np.isfinite(e), scores, unscored, 0.0))
        metrics = self.evaluate_scores(names, results, labels, groups, error)
        metrics["protocol"].update(protocol or {})
        if out_dir is not None:
            write_outputs(Path(out_dir), list(names), list(errors), [r.scores for r in results], list(labels), metrics,
                          self.outputs, groups=groups, top_note=note)
        return metrics

    def describe(self, frames_without_prediction: int, frames_without_score: int, error: str | None = None) -> dict:
        """The ``protocol`` block: what was done to the raw errors, written beside every metric."""
        out = {"error": error or self.protocol.get("error", "raw error"),
               "higher_error_is_anomalous": self.pipeline.higher_is_anomalous}
        out.update({k: v for k, v in self.protocol.items() if k != "error"})
        out.update(self.pipeline.describe())
        out.update({
            "frames_without_prediction": frames_without_prediction,
            "frames_without_score": frames_without_score,
            "frames_without_score_handling": ("excluded from metrics" if self.pipeline.missing == "exclude" else
                                              "filled with the nearest scored frame's score"),
            **AUC_WORDS,
        })
        return out
