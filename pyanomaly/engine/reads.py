"""What ``tools/train.py`` will read of the datasets, for ``tools/prepare_data.py`` to decode and check first.

A run reads its dataset's training split under one frame budget or two (a step-trained method
under ``TRAIN.MAX_FRAMES``; a method fitted by reading it once, such as a Fusion or a baseline,
and the baselines of ``EVAL.BASELINES`` that fit statistics under ``TRAIN.FIT_MAX_FRAMES``),
and its test split. A budget that cuts a split decodes and caches only the frames it reads,
so each budget is its own cache. A fusion whose learned cue is trained on this dataset first
(its ``train`` recipe, :mod:`pyanomaly.engine.cue_training`) also reads the recipe's training
split, at the recipe's frame size. Each of these is a
:class:`~pyanomaly.datasets.summary.Reading`.

Example:
    >>> from pyanomaly.datasets.summary import main
    >>> main("configs/ped2_cues.yaml", ["DATASET.NAME", "avenue", "DATASET.ROOT", "/data/avenue"], reads=run_reads)
"""
from __future__ import annotations

from pathlib import Path

import torch
from yacs.config import CfgNode

from pyanomaly.datasets.summary import Reading
from pyanomaly.evaluation.build import build_baselines
from pyanomaly.models.build import build_model
from pyanomaly.registry import MODELS

from .cue_training import plan_cue_trainings


def run_reads(cfg: CfgNode) -> list[Reading]:
    """The datasets ``tools/train.py --cfg`` (this config) reads: its own, then one per cue training.
    Only a config whose cues name a ``train`` recipe has its model built (a dataset's own config,
    with no method set up, is read as a step-trained method reads it)."""
    reads = [Reading(cfg, _training(cfg), testing=True)]
    if not any(isinstance(c, dict) and c.get("train") for c in cfg.MODEL.ARGS.get("cues", None) or ()):
        return reads
    model = build_model(cfg, torch.device("cpu"))
    for plan in plan_cue_trainings(cfg, model, Path(cfg.SYSTEM.OUTPUT_DIR), quiet=True):
        sub = plan.configs[0]  # the members of an ensemble read the same frames (only their seed differs)
        members = f", {len(plan.configs)} members" if plan.ensemble else ""
        reads.append(Reading(sub, _training(sub), testing=sub.TRAIN.EVAL_PERIOD >= 0,
                             title=f"cue {plan.name}, trained first ({model.trainings[plan.index][0]}{members}; "
                                   f"{plan.reason})"))
    return reads


def _training(cfg: CfgNode) -> tuple[str, ...]:
    """How a run of ``cfg`` reads its training split: ``"train"`` and/or ``"fit"`` (see the module;
    a run that is never evaluated, ``TRAIN.EVAL_PERIOD -1``, scores no baseline)."""
    if getattr(MODELS.get(cfg.MODEL.NAME), "online", False):
        return ("fit",)
    if cfg.TRAIN.EVAL_PERIOD >= 0 and any(
            getattr(spec.build(), "needs_training_videos", False) for spec in build_baselines(cfg).specs):
        return ("train", "fit")
    return ("train",)
