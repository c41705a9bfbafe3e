"""Scoring a test split: predict every video as a stream, score, evaluate, export.

``evaluate`` is what training (the eval hook) and ``tools/test.py`` run; ``rescore`` is
``tools/test.py --scores FILE``: it re-derives scores from exported raw errors under the
config's protocol without the model. Both write the same run directory: ``metrics.json``,
``scores/`` (CSV, JSON, ``.npy``, ``index.json``), ``plots/`` and ``report.html``.

Under ``torchrun`` the videos are shared out across processes (video ``i`` to rank
``i % world``) and gathered on every rank, so each test frame is scored exactly once.
This module and :mod:`pyanomaly.engine.streaming` are the only readers of ``SCORE.*`` and
``EVAL.*``: everything below them takes plain arguments.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm
from yacs.config import CfgNode

from pyanomaly.datasets.base import VideoDataset
from pyanomaly.evaluation.export import find_index, load_scores, write_metrics, write_score_files
from pyanomaly.evaluation.plots import plot_roc, plot_video
from pyanomaly.evaluation.report import write_report
from pyanomaly.evaluation.topk import FrameExample, TopFrames, select_top
from pyanomaly.networks.fast import FastPath, set_fast_path
from pyanomaly.registry import EVALUATORS, SCORERS, accepted_arguments, build
from pyanomaly.scoring import NORMALIZERS, ScorePipeline
from pyanomaly.utils import atomic_write

logger = logging.getLogger(__name__)


# -- building the parts from the config --------------------------------------------------
def build_scorer(cfg: CfgNode):
    """The raw-error scorer named by ``SCORE.ERROR`` (``(pred, frame) -> (N,)``); it gets
    ``SCORE.PIXEL_THRESHOLD`` as ``threshold`` when it takes one."""
    try:
        return build(SCORERS, dict(type=cfg.SCORE.ERROR, max_val=cfg.SCORE.MAX_VAL, patch=cfg.SCORE.PATCH),
                     threshold=cfg.SCORE.PIXEL_THRESHOLD)
    except ValueError as exc:
        raise ValueError(f"SCORE.ERROR {cfg.SCORE.ERROR}: {exc}") from None


def build_normalizer(cfg: CfgNode, name: str | None = None):
    """The normaliser named by ``SCORE.NORMALIZE`` (or ``name``), with the ``SCORE.CAUSAL_*`` settings it takes."""
    s = cfg.SCORE
    try:
        return build(NORMALIZERS, dict(type=name or s.NORMALIZE), window=s.CAUSAL_WINDOW, warmup=s.CAUSAL_WARMUP,
                     exclude_above=s.CAUSAL_EXCLUDE_ABOVE, min_std=s.CAUSAL_MIN_STD)
    except ValueError as exc:
        raise ValueError(f"SCORE.NORMALIZE {name or s.NORMALIZE} with SCORE.CAUSAL_WINDOW {s.CAUSAL_WINDOW}, "
                         f"SCORE.CAUSAL_WARMUP {s.CAUSAL_WARMUP}: {exc}") from None


def build_pipeline(cfg: CfgNode, higher_is_anomalous: bool, normalize: str | None = None) -> ScorePipeline:
    """The whole scoring protocol of ``SCORE.*`` for errors of the given direction."""
    return ScorePipeline(build_normalizer(cfg, normalize), higher_is_anomalous, cfg.SCORE.SMOOTH_SIGMA,
                         cfg.SCORE.SMOOTH_MODE, cfg.SCORE.MISSING)


def build_evaluators(cfg: CfgNode) -> list:
    """The evaluators of ``EVAL.EVALUATORS`` (those taking ``thresholds`` get ``EVAL.THRESHOLDS``)."""
    return [build(EVALUATORS, dict(type=name), thresholds=list(cfg.EVAL.THRESHOLDS)) for name in cfg.EVAL.EVALUATORS]


def precision(name: str, device: torch.device, fused_update: bool = False, model: torch.nn.Module | None = None):
    """The context test-time prediction runs in: ``"fp32"`` (none) or ``"bf16"`` (bfloat16
    autocast), with the fused LSTM update (``TEST.FUSED_UPDATE``) set on ``model`` where ``fused_update``."""
    if name not in ("fp32", "bf16"):
        raise ValueError(f"TEST.PRECISION must be 'fp32' or 'bf16', got {name!r}")
    stack = contextlib.ExitStack()
    if name == "bf16":
        stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))
    if fused_update and model is not None:
        set_fast_path(model, FastPath(fused=True))
    return stack


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


# -- prediction ----------------------------------------------------------------------------
@dataclass
class Predictions:
    """Per video: raw ``errors`` ``(N,)``, ``valid`` ``(N,)`` bool, ``tops`` (kept frames); timing."""

    errors: list[np.ndarray]
    valid: list[np.ndarray]
    tops: list[TopFrames] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0


@torch.no_grad()
def predict_videos(model, dataset: VideoDataset, scorer, device: torch.device, chunk: int = 64,
                   progress: bool = True, top_k: int = 0, precision_name: str = "fp32",
                   fused_update: bool = False) -> Predictions:
    """Predict each video of ``dataset`` as one stream, chunk by chunk; keep each video's ``top_k`` frames.

    ``precision_name``, ``fused_update``: see :func:`precision`; errors are always computed in float32.
    """
    rank, world = _world()
    model.eval()
    mine = list(range(rank, len(dataset.videos), world))
    results: dict[int, tuple[np.ndarray, np.ndarray, TopFrames]] = {}
    start, frames = time.perf_counter(), 0
    bar = tqdm(mine, desc="scoring", unit="video", disable=not progress or rank != 0, leave=False)
    for i in bar:
        n = dataset.lengths[i]
        errors, valid, state = [], [], None
        top = TopFrames(dataset.names[i], top_k)
        for s in range(0, n, chunk):
            x = dataset.video_frames(i, s, s + chunk).to(device)
            with precision(precision_name, device, fused_update, model):
                pred, ok, state = model.predict_stream(x, state)
            pred = pred.float()
            ok = ok.cpu().numpy().astype(bool)
            # NaN where there is no prediction: exported errors then say so, and a re-score
            # from them cannot mistake the error of an empty prediction for a real one
            e = np.where(ok, scorer(pred, x).double().cpu().numpy(), np.nan)
            errors.append(e)
            valid.append(ok)
            if top_k > 0:
                oriented = e if scorer.higher_is_anomalous else -e
                top.offer(oriented, s, x, pred)
        results[i] = (np.concatenate(errors), np.concatenate(valid), top)
        frames += n
    elapsed = time.perf_counter() - start
    if world > 1:
        gathered: list = [None] * world
        dist.all_gather_object(gathered, results)
        results = {k: v for part in gathered for k, v in part.items()}
    model.train()
    ordered = [results[i] for i in range(len(dataset.videos))]
    return Predictions([e for e, _, _ in ordered], [v for _, v, _ in ordered], [t for _, _, t in ordered],
                       frames, elapsed)


def predict_errors(model, dataset: VideoDataset, scorer, device: torch.device, chunk: int = 64,
                   progress: bool = True) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """Raw error ``(N,)`` and validity ``(N,)`` per video of ``dataset``, plus timing."""
    p = predict_videos(model, dataset, scorer, device, chunk, progress)
    return p.errors, p.valid, {"frames": p.frames, "seconds": p.seconds}


# -- scoring and metrics ---------------------------------------------------------------------
def error_description(cfg: CfgNode) -> str:
    s = cfg.SCORE
    where = f" (worst {s.PATCH}x{s.PATCH} patch)" if s.PATCH > 0 else " (frame mean)"
    if "threshold" in (accepted_arguments(SCORERS.get(s.ERROR)) or ()):
        where = f", pixels with |error| > {s.PIXEL_THRESHOLD * s.MAX_VAL:g}" + where
    return s.ERROR + where + (f", {cfg.TEST.PRECISION} prediction" if cfg.TEST.PRECISION != "fp32" else "")


def protocol(cfg: CfgNode, pipeline: ScorePipeline, frames_without_prediction: int, frames_without_score: int,
             error: str | None = None) -> dict:
    """What was done to the raw errors, written beside every metric."""
    out = {
        "error": error or error_description(cfg),
        "higher_error_is_anomalous": pipeline.higher_is_anomalous,
        "max_val": cfg.SCORE.MAX_VAL,
    }
    out.update(pipeline.describe())
    out.update({
        "clip_length": cfg.DATASET.CLIP_LENGTH,
        "image_size": list(cfg.DATASET.IMAGE_SIZE),
        "frames_without_prediction": frames_without_prediction,
        "frames_without_score": frames_without_score,
        "frames_without_score_handling": (
            "excluded from metrics" if cfg.SCORE.MISSING == "exclude" else "filled with the nearest scored frame's score"),
        "auc_micro": "ROC AUC over all labelled test frames of all videos concatenated",
        "auc_macro": "mean of per-video ROC AUCs over videos holding both classes; single-class videos left out and "
                     "counted in videos_single_class",
        "thresholds": [float(t) for t in cfg.EVAL.THRESHOLDS],
    })
    return out


def score_and_evaluate(cfg: CfgNode, names: Sequence[str], errors: Sequence[np.ndarray],
                       valid: Sequence[np.ndarray], labels: Sequence[np.ndarray | None],
                       groups: Sequence[str] | None, higher_is_anomalous: bool,
                       error: str | None = None) -> tuple[list[np.ndarray], dict]:
    """Scores per video and ``metrics.json``'s content (with ``protocol``) under ``cfg``'s protocol."""
    pipeline = build_pipeline(cfg, higher_is_anomalous)
    scored = [pipeline.score(e, v) for e, v in zip(errors, valid)]
    scores = [s for s, _ in scored]
    metrics: dict = {}
    for ev in build_evaluators(cfg):
        metrics.update(ev(list(names), scores, list(labels), groups))
    no_pred = int(sum((~(np.asarray(v, dtype=bool) & np.isfinite(e))).sum() for e, v in zip(errors, valid)))
    metrics["protocol"] = protocol(cfg, pipeline, no_pred, int(sum(u for _, u in scored)), error)
    return scores, metrics


def evaluate(model, dataset: VideoDataset, cfg: CfgNode, device: torch.device,
             out_dir: str | Path | None = None) -> dict:
    """Score ``dataset`` with ``model``; with ``out_dir`` (rank 0) write metrics, scores, plots, report."""
    scorer = build_scorer(cfg)
    write = out_dir is not None and _world()[0] == 0
    top_k = cfg.EVAL.REPORT_TOP_K if cfg.EVAL.REPORT else 0
    p = predict_videos(model, dataset, scorer, device, cfg.TEST.CHUNK, cfg.LOG.PROGRESS, top_k, cfg.TEST.PRECISION,
                       cfg.TEST.FUSED_UPDATE)
    labels = [dataset.labels(i) for i in range(len(dataset.videos))]
    scores, metrics = score_and_evaluate(cfg, dataset.names, p.errors, p.valid, labels, dataset.groups,
                                         scorer.higher_is_anomalous)
    metrics["inference_fps"] = p.frames / max(p.seconds, 1e-9)
    top = select_top(p.tops, dict(zip(dataset.names, scores)), top_k, dict(zip(dataset.names, labels)))
    if write:
        write_outputs(Path(out_dir), dataset.names, p.errors, scores, labels, metrics, cfg.EVAL.PLOTS,
                      groups=dataset.groups, top=top, cfg=cfg)
    return metrics


# -- files -------------------------------------------------------------------------------------
def _png(plot, *args, **kwargs) -> bytes | None:
    buf = io.BytesIO()
    if plot(buf, *args, **kwargs) is False:
        return None
    return buf.getvalue()


def write_outputs(out_dir: Path, names, errors, scores, labels, metrics: dict, plots: bool = True, *,
                  groups: Sequence[str] | None = None, top: Sequence[FrameExample] = (),
                  cfg: CfgNode | None = None, top_note: str | None = None) -> None:
    """``metrics.json``, ``scores/``, ``plots/`` (if ``plots``) and ``report.html`` in ``out_dir``.

    ``cfg`` gives ``EVAL.NPY``, ``EVAL.REPORT`` and ``EVAL.THRESHOLDS`` (the first fixed
    threshold is drawn on the curves; without one, the EER threshold, labelled as such).
    The report embeds the per-video curves only when ``plots`` is on.
    """
    out_dir = Path(out_dir)
    npy = cfg.EVAL.NPY if cfg is not None else True
    report = cfg.EVAL.REPORT if cfg is not None else False
    write_score_files(out_dir / "scores", names, errors, scores, labels, groups, metrics.get("protocol"), npy)
    write_metrics(out_dir / "metrics.json", metrics)
    fixed = list(cfg.EVAL.THRESHOLDS) if cfg is not None else []
    if fixed:
        threshold, label = float(fixed[0]), "fixed threshold"
    else:
        threshold, label = metrics.get("eer_threshold"), "EER threshold (set on test labels)"
    curves: dict[str, bytes] = {}
    roc = None
    if plots:  # the report shows the curves too, but only draws them when plots are wanted (it costs)
        for name, s, l in zip(names, scores, labels):
            curves[name] = _png(plot_video, name, s, l, threshold=threshold,
                                auc=metrics.get("per_video", {}).get(name), threshold_label=label)
    if plots or report:
        roc = _png(plot_roc, scores, labels, metrics.get("auc_micro"))
    if plots:
        for name, png in curves.items():
            atomic_write(out_dir / "plots" / f"{name.replace('/', '_')}.png",
                         lambda tmp, b=png: Path(tmp).write_bytes(b))
        if roc is not None:
            atomic_write(out_dir / "plots" / "roc.png", lambda tmp: Path(tmp).write_bytes(roc))
    if report:
        note = top_note or "No frames kept (EVAL.REPORT_TOP_K is 0)."
        write_report(out_dir / "report.html", metrics, names, scores, labels, groups, top=top, curves=curves,
                     roc=roc, title=f"pyanomaly report — {out_dir.resolve().name}", top_note=note)


def format_metrics(metrics: dict) -> str:
    """One line that always says which AUC is which (other tasks: their scalar metrics)."""
    def f(k):
        v = metrics.get(k)
        return "n/a" if v is None else f"{v:.4f}"
    if "protocol" not in metrics:
        return " | ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    return (f"frame AUC micro (all frames) {f('auc_micro')} | AUC macro (mean per video) {f('auc_macro')} | "
            f"EER {f('eer')} | AP {f('ap')} | {metrics.get('frames_evaluated', 0)} frames, "
            f"{metrics['protocol']['frames_without_score']} without score")


# -- re-evaluating exported scores -------------------------------------------------------------
def _source_protocol(path: Path) -> dict | None:
    """The protocol the exported errors were made under: ``index.json`` or the run's ``metrics.json``."""
    index = find_index(path)
    if index and index.get("protocol"):
        return index["protocol"]
    for m in (path.parent / "metrics.json", path.parent.parent / "metrics.json"):
        if m.is_file():
            try:
                return json.loads(m.read_text()).get("protocol")
            except json.JSONDecodeError:
                return None
    return None


def rescore(cfg: CfgNode, scores_path: str | Path, config_path: str | None = None) -> dict:
    """``tools/test.py --scores FILE``: scores again from the exported ``error`` column under ``cfg``'s
    ``SCORE``/``EVAL`` protocol (no model); writes the run directory ``SYSTEM.OUTPUT_DIR``.

    ``FILE`` is anything :func:`~pyanomaly.evaluation.export.load_scores` reads. The errors'
    direction comes from the export's ``index.json`` (or its run's ``metrics.json``); without
    either it is that of ``SCORE.ERROR``. Groups come from ``index.json`` when it has them.
    """
    from pyanomaly.config import save_cfg

    from .launch import setup
    scores_path = Path(scores_path)
    data = load_scores(scores_path)  # fails before any file is written
    if not data:
        raise ValueError(f"{scores_path} holds no frames")
    setup(cfg, config_path)
    out = Path(cfg.SYSTEM.OUTPUT_DIR)
    save_cfg(cfg, out / "config.yaml")
    source = _source_protocol(scores_path)
    if source is not None and "higher_error_is_anomalous" in source:
        higher, error = bool(source["higher_error_is_anomalous"]), str(source.get("error", "raw error"))
        if error != error_description(cfg):
            logger.info("the errors in %s are %s; SCORE.ERROR/PATCH (%s) do not apply to them",
                        scores_path, error, error_description(cfg))
    else:
        higher, error = bool(build_scorer(cfg).higher_is_anomalous), error_description(cfg)
        logger.warning("%s says nothing of how its errors were made; taking them as %s (SCORE.ERROR)",
                       scores_path, error)
    names = list(data)
    errors = [data[n]["error"] for n in names]
    if all(not np.isfinite(e).any() for e in errors):
        raise ValueError(f"{scores_path} has no 'error' values: re-scoring needs the raw errors")
    labels = [None if (data[n]["label"] < 0).all() else data[n]["label"] for n in names]
    index = find_index(scores_path) or {}
    by_name = {v.get("video"): v.get("group") for v in index.get("videos", [])}
    groups = [by_name.get(n) for n in names]
    groups = None if all(g is None for g in groups) else [g or "" for g in groups]
    scores, metrics = score_and_evaluate(cfg, names, errors, [np.isfinite(e) for e in errors], labels, groups,
                                         higher, error)
    metrics["protocol"]["rescored_from"] = str(scores_path)
    logger.info("re-scored %d videos from %s: %s", len(names), scores_path, format_metrics(metrics))
    write_outputs(out, names, errors, scores, labels, metrics, cfg.EVAL.PLOTS, groups=groups, cfg=cfg,
                  top_note=f"Re-scored from exported errors ({scores_path}): no predictions to show.")
    logger.info("wrote %s/metrics.json, scores/, %sreport.html", out, "plots/, " if cfg.EVAL.PLOTS else "")
    return metrics
