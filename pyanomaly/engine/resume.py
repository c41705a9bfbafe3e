"""What ``--resume`` may change: the run's saved ``config.yaml`` against the new merged config.

A resumed run continues from the checkpoint's weights, optimizer, scheduler, data position
and RNG states, so a key that shapes that trajectory (``MODEL.*``, the data and clips, the
optimisation, the seed) cannot change on resume: the run would go on under the old settings
while ``config.yaml`` claimed the new ones. Such a difference is refused with one line naming
every offending key with its old and new value. Only the keys in :data:`SAFE_KEYS` may differ;
the run's ``config.yaml`` is then rewritten with them, so it always tells the truth.

Example:
    >>> changed_keys({"TRAIN": {"LR": 0.001}}, {"TRAIN": {"LR": 0.5}})
    [('TRAIN.LR', 0.001, 0.5)]
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from yacs.config import CfgNode

from pyanomaly.config import cfg_to_dict, load_cfg
from pyanomaly.errors import CheckpointError

from .lr_schedules import build_lr_scheduler

logger = logging.getLogger("pyanomaly")

__all__ = ["SAFE_KEYS", "changed_keys", "check_resume_config"]

# Keys (or whole sections) that may differ on --resume: none of them changes the weights a
# step produces from the state the checkpoint holds. A section name covers all its keys.
SAFE_KEYS: tuple[str, ...] = (
    # where and how the run executes (numerics may differ in rounding, not in recipe)
    "SYSTEM.OUTPUT_DIR", "SYSTEM.DEVICE", "SYSTEM.NUM_THREADS", "SYSTEM.DETERMINISTIC",
    "SYSTEM.IMPORTS", "TRAIN.COMPILE", "DATASET.NUM_WORKERS", "DATASET.CACHE_DIR",
    # how long it runs (MAX_STEPS: see check_resume_config for LR schedules that depend on it)
    "TRAIN.MAX_STEPS", "TRAIN.EARLY_STOP_PATIENCE",
    # what it logs, writes and keeps
    "TRAIN.EVAL_PERIOD", "TRAIN.CHECKPOINT_PERIOD", "TRAIN.KEEP_CHECKPOINTS", "TRAIN.LOG_PERIOD",
    "TRAIN.TENSORBOARD", "TRAIN.IMAGE_PERIOD", "LOG",
    # user hooks: allowed, with a warning (a hook that changes training is the user's to answer for)
    "TRAIN.CUSTOM_HOOKS",
    # how the test split is scored and evaluated (metrics measured before the resume keep the old protocol)
    "TEST", "SCORE", "STREAM", "EVAL",
)
# TRAIN.BATCH_SIZE is per process: it may change when the global batch (BATCH_SIZE x
# processes) stays the same, e.g. a 2-process run resumed by one process with twice the batch.


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _is_safe(key: str) -> bool:
    return any(key == s or key.startswith(s + ".") for s in SAFE_KEYS)


def changed_keys(old: dict, new: dict) -> list[tuple[str, Any, Any]]:
    """Every dotted key whose value differs between two nested config dicts, as
    ``(key, old, new)``; a key missing on one side is ``None`` there."""
    a, b = _flat(old), _flat(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)]


def _saved_config(path: Path) -> dict:
    """The run's saved config, read as any config file is (a key added since then reads as its default)."""
    try:
        return cfg_to_dict(load_cfg(path, freeze=False))
    except (OSError, ValueError) as exc:  # ConfigError is a ValueError
        raise CheckpointError(f"--resume: cannot read {path}: {exc}") from None


def _schedule_change(old: dict, new: dict, step: int) -> str | None:
    """How the LR factors of the steps still to run differ when only ``TRAIN.MAX_STEPS`` changed."""
    def factors(cfg: dict) -> list[float]:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        fn = build_lr_scheduler(opt, dict(new["TRAIN"]["LR_SCHEDULE"]), cfg["TRAIN"]["MAX_STEPS"]).lr_lambdas[0]
        end = new["TRAIN"]["MAX_STEPS"]
        stride = max((end - step) // 1000, 1)
        return [(s, fn(s)) for s in range(step, end, stride)]
    for (s, f_old), (_, f_new) in zip(factors(old), factors(new)):
        if abs(f_old - f_new) > 1e-12:
            return f"step {s}: LR factor {f_old:.4g} -> {f_new:.4g}"
    return None


def check_resume_config(cfg: CfgNode, out: Path, ckpt: dict, world: int = 1) -> None:
    """Refuse a resume of the run in ``out`` (checkpoint ``ckpt``) whose config ``cfg`` changes
    a key outside :data:`SAFE_KEYS`; log what the allowed changes do.

    ``world`` is the number of processes now (the checkpoint records its own).
    Raises :class:`CheckpointError` with one line listing every offending key as
    ``KEY OLD -> NEW``. A run without ``config.yaml`` (older runs) resumes with a warning.
    """
    path = out / "config.yaml"
    if not path.is_file():
        logger.warning("--resume: %s has no config.yaml to compare the config with; the run continues from its "
                       "checkpoint under the config given now, unchecked", out)
        return
    old, new = _saved_config(path), cfg_to_dict(cfg)
    changes = changed_keys(old, new)
    bad, allowed = [], []
    for key, a, b in changes:
        if key == "TRAIN.BATCH_SIZE":
            before, now = a * int(ckpt.get("world", 1)), b * world
            (allowed if before == now else bad).append(f"{key} {a} -> {b} (global batch {before} -> {now})")
        elif _is_safe(key):
            allowed.append(f"{key} {a!r} -> {b!r}")
        else:
            bad.append(f"{key} {a!r} -> {b!r}")
    if bad:
        raise CheckpointError(f"--resume: the config changes what the run in {out} was trained with (it would "
                              f"continue under the old settings): {'; '.join(bad)}. Only logging, evaluation, "
                              "test-time and run-length keys may change (pyanomaly/engine/resume.py SAFE_KEYS); "
                              "start a new run in another SYSTEM.OUTPUT_DIR for the others")
    if allowed:
        logger.info("--resume with changed keys: %s", "; ".join(allowed))
    if any(k == "TRAIN.CUSTOM_HOOKS" for k, _, _ in changes):
        logger.warning("--resume: TRAIN.CUSTOM_HOOKS changed; a hook that alters training makes this run differ "
                       "from one trained with either list throughout")
    if old["TRAIN"]["MAX_STEPS"] != new["TRAIN"]["MAX_STEPS"]:
        step = int(ckpt.get("step", 0))
        diff = _schedule_change(old, new, step)
        if diff is not None:
            logger.warning("--resume: TRAIN.MAX_STEPS %d -> %d changes the LR schedule of the remaining steps (it "
                           "takes its length from TRAIN.MAX_STEPS; %s): steps 0-%d followed the old curve, so the "
                           "run matches neither a %d- nor a %d-step run", old["TRAIN"]["MAX_STEPS"],
                           new["TRAIN"]["MAX_STEPS"], diff, step - 1, old["TRAIN"]["MAX_STEPS"],
                           new["TRAIN"]["MAX_STEPS"])
