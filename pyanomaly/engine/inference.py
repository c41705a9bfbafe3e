"""Scoring a test split: predict every video as a stream, score, evaluate, export.

Under ``torchrun`` the videos are shared out across processes (video ``i`` to rank
``i % world``) and gathered on every rank, so each test frame is scored exactly once.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm
from yacs.config import CfgNode

from pyanomaly.datasets.base import VideoDataset
from pyanomaly.evaluation.export import frame_rows, write_metrics, write_scores
from pyanomaly.evaluation.metrics import frame_metrics
from pyanomaly.evaluation.plots import plot_roc, plot_video
from pyanomaly.registry import SCORERS, build
from pyanomaly.scoring import scores_from_errors

logger = logging.getLogger(__name__)


def build_scorer(cfg: CfgNode):
    return build(SCORERS, dict(type=cfg.SCORE.ERROR, max_val=cfg.SCORE.MAX_VAL, patch=cfg.SCORE.PATCH))


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def predict_errors(model, dataset: VideoDataset, scorer, device: torch.device, chunk: int = 64,
                   progress: bool = True) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """Raw error ``(N,)`` and validity ``(N,)`` per video of ``dataset``, plus timing."""
    rank, world = _world()
    model.eval()
    mine = list(range(rank, len(dataset.videos), world))
    results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    start, frames = time.perf_counter(), 0
    bar = tqdm(mine, desc="scoring", unit="video", disable=not progress or rank != 0, leave=False)
    for i in bar:
        video = dataset.video_frames(i)
        errors, valid, state = [], [], None
        for s in range(0, video.shape[0], chunk):
            x = video[s:s + chunk].to(device)
            pred, ok, state = model.predict_stream(x, state)
            errors.append(scorer(pred, x).cpu())
            valid.append(ok.cpu())
        results[i] = (torch.cat(errors).double().numpy(), torch.cat(valid).numpy())
        frames += video.shape[0]
    elapsed = time.perf_counter() - start
    if world > 1:
        gathered: list = [None] * world
        dist.all_gather_object(gathered, results)
        results = {k: v for part in gathered for k, v in part.items()}
    model.train()
    ordered = [results[i] for i in range(len(dataset.videos))]
    return [e for e, _ in ordered], [v for _, v in ordered], {"frames": frames, "seconds": elapsed}


def protocol(cfg: CfgNode, scorer, frames_unscored: int) -> dict:
    """What was done to the raw errors, written beside every metric."""
    return {
        "error": cfg.SCORE.ERROR + (f" (worst {cfg.SCORE.PATCH}x{cfg.SCORE.PATCH} patch)" if cfg.SCORE.PATCH > 0 else " (frame mean)"),
        "higher_error_is_anomalous": bool(scorer.higher_is_anomalous),
        "max_val": cfg.SCORE.MAX_VAL,
        "normalization": "per-video min-max" if cfg.SCORE.NORMALIZE == "minmax" else "none",
        "smoothing_sigma": cfg.SCORE.SMOOTH_SIGMA,
        "smoothing": "centred Gaussian (offline)" if cfg.SCORE.SMOOTH_SIGMA > 0 else "none",
        "clip_length": cfg.DATASET.CLIP_LENGTH,
        "image_size": list(cfg.DATASET.IMAGE_SIZE),
        "frames_without_score": frames_unscored,
        "frames_without_score_handling": (
            "excluded from metrics" if cfg.SCORE.MISSING == "exclude" else "filled with the nearest scored frame's score"),
        "auc_micro": "ROC AUC over all labelled test frames of all videos concatenated",
        "auc_macro": "mean of per-video ROC AUCs over videos holding both classes",
    }


def evaluate(model, dataset: VideoDataset, cfg: CfgNode, device: torch.device,
             out_dir: str | Path | None = None) -> dict:
    """Score ``dataset`` with ``model``; with ``out_dir`` (rank 0) write metrics, scores, plots."""
    scorer = build_scorer(cfg)
    errors, valid, timing = predict_errors(model, dataset, scorer, device, cfg.TEST.CHUNK, cfg.LOG.PROGRESS)
    scores = [scores_from_errors(e, v, scorer.higher_is_anomalous, cfg.SCORE.NORMALIZE,
                                 cfg.SCORE.SMOOTH_SIGMA, cfg.SCORE.MISSING) for e, v in zip(errors, valid)]
    labels = [dataset.labels(i) for i in range(len(dataset.videos))]
    metrics = frame_metrics(dataset.names, scores, labels)
    unscored = int(sum((~v).sum() for v in valid))
    metrics["protocol"] = protocol(cfg, scorer, unscored)
    metrics["inference_fps"] = timing["frames"] / max(timing["seconds"], 1e-9)
    if out_dir is not None and _world()[0] == 0:
        write_outputs(Path(out_dir), dataset.names, errors, scores, labels, metrics, cfg.EVAL.PLOTS)
    return metrics


def write_outputs(out_dir: Path, names, errors, scores, labels, metrics: dict, plots: bool = True) -> None:
    """``metrics.json``, ``scores/frame_scores.{csv,json}`` and ``plots/`` in ``out_dir``."""
    write_scores(out_dir / "scores", frame_rows(names, errors, scores, labels))
    write_metrics(out_dir / "metrics.json", metrics)
    if plots:
        (out_dir / "plots").mkdir(parents=True, exist_ok=True)
        for name, s, l in zip(names, scores, labels):
            plot_video(out_dir / "plots" / f"{name.replace('/', '_')}.png", name, s, l,
                       threshold=metrics.get("eer_threshold"), auc=metrics["per_video"].get(name))
        plot_roc(out_dir / "plots" / "roc.png", scores, labels, metrics.get("auc_micro"))


def format_metrics(metrics: dict) -> str:
    """One line that always says which AUC is which."""
    def f(k):
        v = metrics.get(k)
        return "n/a" if v is None else f"{v:.4f}"
    return (f"frame AUC micro (all frames) {f('auc_micro')} | AUC macro (mean per video) {f('auc_macro')} | "
            f"EER {f('eer')} | AP {f('ap')} | {metrics.get('frames_evaluated', 0)} frames, "
            f"{metrics['protocol']['frames_without_score']} without score")
