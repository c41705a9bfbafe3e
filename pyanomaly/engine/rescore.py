"""Re-scoring exported errors without the model: ``tools/test.py --scores FILE``.

The raw ``error`` column of an export (``frame_scores.csv`` / ``.json``, ``scores/`` or
``scores/npy/``) is scored again under the config's ``SCORE.*`` / ``EVAL.*`` protocol by the
same pipeline and evaluators as a run with the model; the run directory (``SYSTEM.OUTPUT_DIR``,
or a new folder beside the run read from: ``engine/outputs.py``; never that run) gets
``metrics.json``, ``scores/``, ``plots/`` and ``report.html``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from yacs.config import CfgNode

from pyanomaly.config import save_cfg
from pyanomaly.evaluation.build import build_task
from pyanomaly.evaluation.export import find_index, load_scores
from pyanomaly.evaluation.metrics import format_metrics
from pyanomaly.scoring.build import build_pipeline, build_scorer, describe_error

from .session import setup, with_output_dir
from .outputs import choose_output_dir, scores_run

logger = logging.getLogger(__name__)


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


def rescore(cfg: CfgNode, scores_path: str | Path, config_path: str | None = None, new_output_dir: bool = False,
            overwrite: bool = False) -> dict:
    """``tools/test.py --scores FILE``: scores again from the exported ``error`` column under ``cfg``'s
    ``SCORE``/``EVAL`` protocol (no model); writes the run directory ``SYSTEM.OUTPUT_DIR``, or
    with ``new_output_dir`` a new folder beside the run read from. The run read from is never
    written over; another folder that is not empty only with ``overwrite``.

    ``FILE`` is anything :func:`~pyanomaly.evaluation.export.load_scores` reads. The errors'
    direction comes from the export's ``index.json`` (or its run's ``metrics.json``); without
    either it is that of ``SCORE.ERROR``. Groups come from ``index.json`` when it has them.
    """
    scores_path = Path(scores_path)
    data = load_scores(scores_path)  # fails before any file is written
    if not data:
        raise ValueError(f"{scores_path} holds no frames")
    out = choose_output_dir(cfg.SYSTEM.OUTPUT_DIR, scores_run(scores_path), "rescore", config_path, new_output_dir,
                            overwrite)
    cfg = with_output_dir(cfg, out)
    setup(cfg, config_path)
    logger.info("re-scoring outputs go to %s", out)
    save_cfg(cfg, out / "config.yaml")
    source = _source_protocol(scores_path)
    if source is not None and "higher_error_is_anomalous" in source:
        higher, error = bool(source["higher_error_is_anomalous"]), str(source.get("error", "raw error"))
        if error != describe_error(cfg):
            logger.info("the errors in %s are %s; SCORE.ERROR/PATCH (%s) do not apply to them",
                        scores_path, error, describe_error(cfg))
    else:
        higher, error = bool(build_scorer(cfg).higher_is_anomalous), describe_error(cfg)
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
    task = build_task(cfg, pipeline=build_pipeline(cfg, higher))
    note = f"Re-scored from exported errors ({scores_path}): no predictions to show."
    metrics = task.evaluate_errors(names, errors, labels, groups, out, error, note,
                                   protocol={"rescored_from": str(scores_path)})
    logger.info("re-scored %d videos from %s: %s", len(names), scores_path, format_metrics(metrics))
    logger.info("wrote %s/metrics.json, scores/, %sreport.html", out, "plots/, " if cfg.EVAL.PLOTS else "")
    return metrics
