"""Baselines scored in the same run as a recipe, on the same test videos, by the same protocol.

A learned method is worth its cost only where it beats what needs no learning: copying the
last frame, the speed of the optical flow. ``EVAL.BASELINES`` lists such methods; every
evaluation of the anomaly-detection task scores them too and writes their metrics beside the
recipe's (``metrics.json`` ``baselines``, the log line, ``report.html``). Each entry is a
spec::

    {type: METHOD, <its arguments>, name: ROW NAME, score: {SCORE KEY: value, ...}}

``type`` and the arguments build a registered method (a :class:`~pyanomaly.models.baseline.Baseline`:
no weights; statistics, if any, fitted on the training split when first needed); ``score``
overrides keys of ``SCORE`` for this baseline only (its error measure: ``{ERROR: CELL_MAX,
PATCH: 16}``), the rest of the protocol (normalisation, smoothing, frames without a score)
stays the recipe's; ``name`` (default: the method's name and its error) names its row.
A baseline does not change while a recipe trains, so it is scored once per run and reused by
later evaluations.

Example:
    >>> baselines = Baselines([BaselineSpec("copy_last", build_copy_last, scorer_of_copy_last, "AREA")],
    ...                       training_set=lambda: build_dataset(cfg, "training"))
    >>> rows = baselines.evaluate(task, test_set, device)  # {"copy_last": {"auc_micro": ..., ...}}
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

logger = logging.getLogger("pyanomaly")

#: the metrics of a baseline's row (those of the recipe's line, plus how many frames had no score)
ROW_KEYS = ("auc_micro", "auc_macro", "eer", "ap", "frames_evaluated")


@dataclass
class BaselineSpec:
    """One baseline: its row ``name``, ``build() -> method``, ``video_scorer(model, device) ->
    VideoScorer`` (its error measure with the recipe's protocol), and ``error`` in words."""

    name: str
    build: Callable
    video_scorer: Callable
    error: str


class Baselines:
    """The baselines of a run, scored once per test set and kept.

    Args:
        specs: the baselines, in the order of their rows.
        training_set: ``() -> dataset`` of the training split, called once if a baseline has
            statistics to fit (:meth:`~pyanomaly.models.baseline.Baseline.fit`).
        progress: progress bars while fitting.
    """

    def __init__(self, specs: Sequence[BaselineSpec], training_set: Callable | None = None, progress: bool = True):
        names = [s.name for s in specs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"EVAL.BASELINES: two baselines named {twice}; give each a distinct name")
        self.specs, self.training_set, self.progress = list(specs), training_set, bool(progress)
        self._scored: tuple = (None, {})  # the dataset last scored and its rows

    def __bool__(self) -> bool:
        return bool(self.specs)

    def evaluate(self, task, dataset, device) -> dict[str, dict]:
        """``{name: {auc_micro, auc_macro, eer, ap, frames_evaluated, frames_without_score, error, method}}``
        for ``dataset``, scored with ``task``'s protocol and evaluators."""
        if self._scored[0] is not dataset:
            self._scored = (dataset, {spec.name: self._score(spec, task, dataset, device) for spec in self.specs})
        return self._scored[1]

    def _score(self, spec: BaselineSpec, task, dataset, device) -> dict:
        model = spec.build()
        if model.needs_training_videos:
            if self.training_set is None:
                raise ValueError(f"baseline {spec.name} fits statistics of the training videos, and none were given")
            model.fit(self.training_set(), device, self.progress)
        model = model.to(device)
        results, _ = task.predict(model, dataset, device, spec.video_scorer(model, device), top_k=0)
        labels = [dataset.labels(i) for i in range(len(dataset.videos))]
        metrics = task.evaluate_scores(list(dataset.names), results, labels, dataset.groups, spec.error)
        row = {k: metrics.get(k) for k in ROW_KEYS}
        row.update(frames_without_score=metrics["protocol"]["frames_without_score"], error=spec.error,
                   method=type(model).__name__)
        logger.info("baseline %s (%s): frame AUC micro %s | macro %s", spec.name, spec.error,
                    _f(row["auc_micro"]), _f(row["auc_macro"]))
        return row


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"
