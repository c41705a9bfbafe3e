"""A fusion's learned cue trained on the run's own dataset: the cue spec's ``train`` recipe.

A learned cue's weights come from its ``checkpoint``, trained on some dataset. A cue spec that
also names ``train: CONFIG`` (or ``{config: CONFIG, opts: [KEY, VALUE, ...]}``) says how they
are made. ``tools/train.py`` of the fusion then trains the cue first wherever the checkpoint
does not fit the run: when no checkpoint is named, the file is missing, or the run that wrote
it read another dataset (its saved ``DATASET.NAME`` or ``DATASET.ROOT`` differ from this
run's). So a fused recipe moved to another benchmark with only ``DATASET.NAME``/``ROOT``
changed learns its cue on that benchmark, in one command, while on the benchmark it was
published for it uses the published weights. An ensemble cue (a list of ``K`` checkpoints) is
trained whole when any member does not fit: ``K`` runs of the recipe, member ``j`` with
``SYSTEM.SEED + j``, in ``cue_runs/<cue name>/member<j>/``.

The training is an ordinary run of the recipe, in ``<OUTPUT_DIR>/cue_runs/<cue name>/`` (its
log, config and checkpoints), with the fusion run's dataset (``DATASET.NAME``, ``ROOT``,
``ARGS``, ``CACHE_DIR``, ``ACCEPT_TRUNCATED``, ``NUM_WORKERS``), process settings
(``SYSTEM.DEVICE``, ``NUM_THREADS``, ``SEED``, ``IMPORTS``, ``DETERMINISTIC``) and logging, and
without an evaluation (``TRAIN.EVAL_PERIOD -1``: the fusion's run scores the cue alone on the
test split anyway, ``cues/<cue name>/``, so its test split is not read twice), then ``opts``
(``[TRAIN.EVAL_PERIOD, 0]`` scores it with the recipe's own baselines too). The frame size,
clip length and training schedule stay the recipe's. The fusion is then fitted with that run's
``checkpoints/last.pth``. A training that finished is used again as it is (a fusion run
started again after an interruption does not train twice); one that was interrupted is
resumed exactly, as ``--resume`` resumes any run. The fusion's config is not changed: its
checkpoint holds the trained weights.

Example:
    >>> train_cues(cfg, model, Path(cfg.SYSTEM.OUTPUT_DIR), train)   # before model.fit_online(...)
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Callable, NamedTuple

from yacs.config import CfgNode

from pyanomaly.config import cfg_from_dict, cfg_to_dict, load_cfg
from pyanomaly.errors import ConfigError

from .checkpoint import load_checkpoint, trained_dataset
from .session import setup_logging

logger = logging.getLogger("pyanomaly")

# what the cue's training takes from the fusion run: the dataset's identity, the process and logging
CARRIED = ("DATASET.NAME", "DATASET.ROOT", "DATASET.CACHE_DIR", "DATASET.ACCEPT_TRUNCATED", "DATASET.NUM_WORKERS",
           "SYSTEM.DEVICE", "SYSTEM.NUM_THREADS", "SYSTEM.SEED", "SYSTEM.IMPORTS", "SYSTEM.DETERMINISTIC",
           "LOG.LEVEL", "LOG.PROGRESS")
RUNS = "cue_runs"  # folder of the run directory holding the cues' trainings


def why_train(checkpoint: str | None, cfg: CfgNode) -> str | None:
    """Why a cue with a train recipe must be trained for this run, or None to use ``checkpoint``."""
    if checkpoint is None:
        return "no checkpoint is named"
    path = Path(checkpoint)
    if not path.is_file():
        return f"{path} does not exist"
    dataset = trained_dataset(load_checkpoint(path))
    if "NAME" not in dataset:
        logger.warning("%s does not say which dataset it was trained on; used as it is", path)
        return None
    if dataset["NAME"] != cfg.DATASET.NAME:
        return f"{path} was trained on {dataset['NAME']}, this run reads {cfg.DATASET.NAME}"
    root = dataset.get("ROOT")
    if root is not None and Path(root).resolve() != Path(cfg.DATASET.ROOT).resolve():
        return f"{path} was trained on {cfg.DATASET.NAME} at {root}, this run reads {cfg.DATASET.ROOT}"
    return None


def cue_config(cfg: CfgNode, recipe: tuple[str, tuple], out: Path, where: str, member: int = 0) -> CfgNode:
    """The config of a cue's training: the recipe, with the fusion run's dataset, process and
    logging settings (``CARRIED``, ``DATASET.ARGS``; an ensemble's ``member`` j: ``SYSTEM.SEED + j``),
    ``TRAIN.EVAL_PERIOD -1``, then the recipe's ``opts``, run in ``out``."""
    path, opts = recipe
    try:
        sub = cfg_to_dict(load_cfg(path))
        mine = cfg_to_dict(cfg)
        for key in CARRIED:
            section, leaf = key.split(".")
            sub[section][leaf] = copy.deepcopy(mine[section][leaf])
        sub["SYSTEM"]["SEED"] = cfg.SYSTEM.SEED + member
        sub["DATASET"]["ARGS"] = {**sub["DATASET"].get("ARGS", {}), **copy.deepcopy(mine["DATASET"]["ARGS"])}
        # not evaluated by default: the fusion's run scores the cue alone anyway (cues/<name>/)
        return cfg_from_dict(sub, ["TRAIN.EVAL_PERIOD", -1, *opts, "SYSTEM.OUTPUT_DIR", str(out)], source=path)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


class CueTraining(NamedTuple):
    """The training a cue needs before its fusion is fitted: cue ``index`` named ``name``, why, and
    one config a run (one per member of an ensemble)."""

    index: int
    name: str
    reason: str
    configs: list[CfgNode]
    ensemble: bool


def plan_cue_trainings(cfg: CfgNode, model, out: Path, quiet: bool = False) -> list[CueTraining]:
    """The trainings of ``model``'s cues (a :class:`~pyanomaly.models.fusion.Fusion`) whose checkpoint
    does not fit the run (:func:`why_train`), each recipe checked (a refusal names
    ``MODEL.ARGS.cues[i].train``); the runs go in ``out/cue_runs/``. ``quiet``: no log line for a
    cue used as it is."""
    plans = []
    for i, recipe in enumerate(getattr(model, "trainings", ())):
        if recipe is None:
            continue
        where = f"MODEL.ARGS.cues[{i}].train"
        name = model.names[i]
        ensemble = isinstance(model.checkpoints[i], tuple)
        named = list(model.checkpoints[i]) if ensemble else [model.checkpoints[i]]
        reasons = [r for r in (why_train(p, cfg) for p in named) if r is not None]
        if not reasons:
            if not quiet:
                logger.info("cue %s: %s trained on this dataset; used as it is (%s not run)", name,
                            ", ".join(named), recipe[0])
            continue
        runs = [out / RUNS / name / f"member{j}" for j in range(len(named))] if ensemble else [out / RUNS / name]
        subs = [cue_config(cfg, recipe, run, where, member=j) for j, run in enumerate(runs)]
        wanted = cfg.MODEL.ARGS.cues[i]["method"]["type"]
        if subs[0].MODEL.NAME != wanted:
            raise ConfigError(f"{where}: {recipe[0]} trains MODEL.NAME {subs[0].MODEL.NAME}, the cue's method is "
                              f"{wanted}")
        plans.append(CueTraining(i, name, reasons[0], subs, ensemble))
    return plans


def train_cues(cfg: CfgNode, model, out: Path, train: Callable[..., dict | None]) -> None:
    """Train each cue of ``model`` (a :class:`~pyanomaly.models.fusion.Fusion`) whose checkpoint does
    not fit the run (:func:`why_train`) with its recipe, through ``train`` (``launch.train``), and
    point the cue at the result. Every recipe is checked before the first training starts."""
    for plan in plan_cue_trainings(cfg, model, out):
        recipe = model.trainings[plan.index][0]
        lasts = [_trained(cfg, out, plan.name, sub, recipe, plan.reason, train) for sub in plan.configs]
        model.checkpoints[plan.index] = tuple(lasts) if plan.ensemble else lasts[0]


def _trained(cfg: CfgNode, out: Path, name: str, sub: CfgNode, recipe: str, reason: str,
             train: Callable[..., dict | None]) -> str:
    """The ``last.pth`` of one cue run: reused when finished, else trained (or resumed) now."""
    last = Path(sub.SYSTEM.OUTPUT_DIR) / "checkpoints" / "last.pth"
    step = int(load_checkpoint(last).get("step", 0)) if last.is_file() else 0
    if step >= sub.TRAIN.MAX_STEPS:
        logger.info("cue %s: trained in %s (step %d), used again", name, sub.SYSTEM.OUTPUT_DIR, step)
        return str(last)
    logger.info("cue %s: training it on %s with %s (seed %d) in %s, because %s", name, cfg.DATASET.NAME, recipe,
                sub.SYSTEM.SEED, sub.SYSTEM.OUTPUT_DIR, reason)
    try:
        train(sub, resume=last.is_file())
    finally:  # the cue's run logged to its own folder: back to this run's log
        setup_logging(out / "log.txt", cfg.LOG.LEVEL)
    logger.info("cue %s: trained in %s", name, sub.SYSTEM.OUTPUT_DIR)
    return str(last)
