"""Running a configured job: build every part, train or test (the process itself: :mod:`.session`).

These are what ``tools/train.py`` and ``tools/test.py`` call. Under ``torchrun`` each
process joins the default process group (gloo on CPU, nccl on GPU) and the model is
wrapped in ``DistributedDataParallel``; only rank 0 writes files.
"""
from __future__ import annotations

import gc
import logging
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from yacs.config import CfgNode

from pyanomaly.config import cfg_to_dict, save_cfg
from pyanomaly.datasets import build_fit_dataset, build_test_dataset, build_train_dataset
from pyanomaly.datasets.transforms import build_transforms
from pyanomaly.errors import ConfigError
from pyanomaly.evaluation.build import build_task, check_best_metric
from pyanomaly.evaluation.metrics import format_metrics
from pyanomaly.models.build import build_model, check_training_flow, model_meta
from pyanomaly.scoring.build import check_method_scorer

from .checkpoint import (CheckpointError, check_compatible, load_checkpoint, load_model_weights,
                         remove_stale_temporaries, require_file, rng_state, save_checkpoint, set_rng_state,
                         trained_dataset)
from .cue_training import RUNS, train_cues
from .ema import WeightAverage, check_ema_config
from .hooks import build_hooks
from .lr_schedules import build_lr_scheduler
from .outputs import choose_output_dir, source_run
from .resume import check_resume_config
from .session import setup, teardown, with_output_dir
from .sampler import InfiniteSampler
from .trainer import Trainer

logger = logging.getLogger("pyanomaly")
def checkpoint_meta(cfg: CfgNode) -> dict:
    """``meta`` of the checkpoints a run writes: the model's identity (compared on load) and
    the merged config as a plain dict (``"config"``), so a checkpoint needs no YAML to load."""
    return {**model_meta(cfg), "config": cfg_to_dict(cfg)}


def train(cfg: CfgNode, resume: bool = False, config_path: str | None = None) -> dict | None:
    """Train ``cfg``'s method; returns the final metrics after writing the run directory (rank 0).

    With ``resume`` it continues the run in ``SYSTEM.OUTPUT_DIR`` from
    ``checkpoints/last.pth`` exactly (see ``docs/architecture.md``). Every process reads
    that file, so under multi-node ``torchrun`` the run directory must be on a shared file
    system (see ``docs/distributed.md``).
    """
    device, rank, world = setup(cfg, config_path)
    out = Path(cfg.SYSTEM.OUTPUT_DIR)
    ckpt = _checkpoint_to_resume(cfg, out, resume, world)
    if rank == 0:
        logger.info("run directory %s (%d process%s, device %s)", out, world, "es" if world > 1 else "", device)
    # First: a misnamed part fails before any video is decoded.
    model = build_model(cfg, device)
    transform = build_transforms(cfg.DATASET.TRAIN_TRANSFORMS)
    task = build_task(cfg, model.task)
    check_best_metric(cfg, task)
    check_method_scorer(cfg, model)
    check_training_flow(cfg, model)
    online = getattr(model, "online", False)
    check_ema_config(cfg.TRAIN.EMA_DECAY, cfg.TRAIN.EMA_START, cfg.TRAIN.MAX_STEPS, cfg.TRAIN.EMA_BN_BATCHES)
    if online and cfg.TRAIN.EMA_DECAY > 0:
        raise ConfigError(f"TRAIN.EMA_DECAY averages the weights of step-trained methods; MODEL.NAME {cfg.MODEL.NAME} "
                          "learns online in one pass: set TRAIN.EMA_DECAY 0")
    optimizer, scheduler = (None, None) if online else build_optimizer(cfg, model)
    train_set, test_set = _build_datasets(cfg, world, fit=online)
    if online:
        if transform is not None:
            logger.warning("DATASET.TRAIN_TRANSFORMS are not applied: %s learns online from the frames as they come",
                           cfg.MODEL.NAME)
        return _train_online(cfg, model, task, train_set, test_set, ckpt, out, device, world)
    forward = model
    if world > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        forward = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if cfg.TRAIN.COMPILE:
        forward = torch.compile(forward)
    amp = cfg.TRAIN.AMP and device.type == "cuda"
    if cfg.TRAIN.AMP and not amp:
        logger.warning("TRAIN.AMP is for CUDA devices; training in float32 on %s", device)
    # The data stream is global (engine/sampler.py): its position is the number of clips all
    # processes consumed, so a resume may even use another number of processes.
    per_step = cfg.TRAIN.BATCH_SIZE * world
    start = int(ckpt.get("samples", ckpt["step"] * per_step)) if ckpt else 0
    sampler = InfiniteSampler(len(train_set), seed=cfg.SYSTEM.SEED, rank=rank, world=world, start=start)
    loader = DataLoader(train_set, batch_size=cfg.TRAIN.BATCH_SIZE, sampler=sampler,
                        num_workers=cfg.DATASET.NUM_WORKERS, pin_memory=device.type == "cuda",
                        persistent_workers=cfg.DATASET.NUM_WORKERS > 0)
    trainer = Trainer(model, forward, optimizer, scheduler, loader, cfg.TRAIN.MAX_STEPS, build_hooks(cfg), out,
                      evaluate=lambda: task.evaluate(model, test_set, device, out if rank == 0 else None),
                      meta=checkpoint_meta(cfg), device=device, grad_clip=cfg.TRAIN.GRAD_CLIP,
                      scaler=torch.amp.GradScaler("cuda") if amp else None, autocast=amp,
                      samples_per_step=per_step, is_main=rank == 0,
                      transform=transform, ema=_weight_average(cfg, model, train_set, device, transform))
    if ckpt is not None:
        trainer.load_state_dict(ckpt)
    if rank == 0:
        # Only now that every part is built and the checkpoint fits: a run that cannot start
        # leaves the run directory as it was.
        for p in remove_stale_temporaries(out / "checkpoints"):
            logger.info("removed %s, left by a write that was interrupted", p)
        save_cfg(cfg, out / "config.yaml")
    trainer.train()
    if trainer.metrics is not None and rank == 0:
        logger.info("final: %s", format_metrics(trainer.metrics))
        _log_outputs(out)
    metrics = trainer.metrics
    # DDP's reducer holds the process group and sits in reference cycles (hooks, closures):
    # free it now, not during interpreter shutdown, where gloo's threads can abort the process.
    del trainer, forward, loader
    gc.collect()
    teardown()
    return metrics


def _weight_average(cfg: CfgNode, model: torch.nn.Module, train_set, device: torch.device,
                    transform) -> WeightAverage | None:
    """The moving average of the weights ``TRAIN.EMA_DECAY`` asks for, or None.

    Its batch-norm statistics are computed over the first ``TRAIN.EMA_BN_BATCHES`` batches of a
    shuffle of the training split fixed by ``SYSTEM.SEED``, the same in every process and at every
    use, drawn with every RNG state put back after, so that training goes on as without them.
    """
    if cfg.TRAIN.EMA_DECAY <= 0:
        return None
    logger.info("the weights evaluated and saved are the moving average of steps %d-%d (TRAIN.EMA_DECAY %g)",
                cfg.TRAIN.EMA_START + 1, cfg.TRAIN.MAX_STEPS, cfg.TRAIN.EMA_DECAY)

    def batches():
        saved = rng_state()
        try:
            order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.SYSTEM.SEED))
            n = min(cfg.TRAIN.EMA_BN_BATCHES * cfg.TRAIN.BATCH_SIZE, len(train_set))
            loader = DataLoader(torch.utils.data.Subset(train_set, order[:n].tolist()),
                                batch_size=cfg.TRAIN.BATCH_SIZE, num_workers=0)
            for batch in loader:
                batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
                if transform is not None:
                    batch["frames"] = transform(batch["frames"])
                yield batch
        finally:
            set_rng_state(saved)

    return WeightAverage(model, cfg.TRAIN.EMA_DECAY, cfg.TRAIN.EMA_START,
                         batches=batches if cfg.TRAIN.EMA_BN_BATCHES > 0 else None)


def _log_outputs(out: Path) -> None:
    """Name what the evaluation wrote (a method other than VAD may write only ``metrics.json``)."""
    names = [n for n in ("metrics.json", "scores/", "plots/", "report.html") if (out / n.rstrip("/")).exists()]
    if names:
        logger.info("wrote %s: %s", out, ", ".join(names))


def _train_online(cfg: CfgNode, model, task, train_set, test_set, ckpt: dict | None, out: Path, device: torch.device,
                  world: int) -> dict:
    """Train a method that learns online (``model.online``) in one pass over the training stream.

    Instead of the step-based :class:`Trainer`, the method's ``fit_online(train_set, device,
    save, position, ...)`` streams the training videos and calls ``save(position)``
    every ``TRAIN.CHECKPOINT_PERIOD`` frames; ``position`` is a dict of plain types saying
    where the stream stands, stored in ``checkpoints/last.pth`` beside the model's state
    and the RNG states, and handed back on ``--resume``. When the pass ends, ``last.pth``
    and ``best.pth`` hold the final state and the test split is evaluated.
    """
    if world > 1:
        raise ValueError(f"MODEL.NAME {cfg.MODEL.NAME} learns online from one stream: run it in one process, "
                         "not under torchrun")
    train_cues(cfg, model, out, train)  # a cue with a train recipe that this dataset needs: trained first
    checkpoints = out / "checkpoints"
    position = None
    if ckpt is not None:
        load_model_weights(model, ckpt, checkpoints / "last.pth")
        set_rng_state(ckpt["rng"])
        position = ckpt.get("online")
    for p in remove_stale_temporaries(checkpoints):
        logger.info("removed %s, left by a write that was interrupted", p)
    save_cfg(cfg, out / "config.yaml")
    meta = checkpoint_meta(cfg)

    def save(pos: dict, names: tuple[str, ...] = ("last",)) -> None:
        state = {"model": model.state_dict(), "step": int(pos.get("frames", 0)), "online": dict(pos),
                 "rng": rng_state(), "meta": meta}
        for name in names:
            save_checkpoint(checkpoints / f"{name}.pth", state)

    final = model.fit_online(train_set, device, save, position, checkpoint_period=cfg.TRAIN.CHECKPOINT_PERIOD,
                             log_period=cfg.TRAIN.LOG_PERIOD, progress=cfg.LOG.PROGRESS, out_dir=out)
    save(final, ("last", "best"))
    metrics = None
    if test_set is not None:  # TRAIN.EVAL_PERIOD -1: fitted only
        metrics = task.evaluate(model, test_set, device, out)
        logger.info("final: %s", format_metrics(metrics))
        _log_outputs(out)
    teardown()
    return metrics


def _checkpoint_to_resume(cfg: CfgNode, out: Path, resume: bool, world: int = 1) -> dict | None:
    """``checkpoints/last.pth`` of ``out`` with ``resume`` (checked against ``cfg``), else None.

    Starting afresh over an existing run is refused: it would overwrite its checkpoints. A
    resume whose config changes the training trajectory is refused (``engine/resume.py``).
    """
    last = out / "checkpoints" / "last.pth"
    if not resume:
        if last.is_file():
            raise CheckpointError(f"{out} already holds a run (checkpoints/last.pth); pass --resume to continue "
                                  "it or choose another SYSTEM.OUTPUT_DIR")
        return None
    if not last.is_file():
        if (out / RUNS).is_dir():  # stopped while a cue of a fusion was being trained (engine/cue_training.py)
            raise CheckpointError(f"--resume: no checkpoint to resume from at {last}: the run stopped while training "
                                  f"a cue ({out / RUNS}); run the same command without --resume, and the cue's "
                                  "training goes on where it stopped")
        raise CheckpointError(f"--resume: no checkpoint to resume from at {last}")
    ckpt = load_checkpoint(last)
    check_compatible(ckpt, model_meta(cfg), last)  # the model's identity first: its own clear message
    check_resume_config(cfg, out, ckpt, world)
    logger.info("resuming from %s (step %d)", last, ckpt["step"])
    return ckpt


def _build_datasets(cfg: CfgNode, world: int, fit: bool = False):
    """The training and test splits; the first process on each node fills the frame cache first.
    The training split is read under ``TRAIN.MAX_FRAMES``, or with ``fit`` as a method fitted to
    it in one pass reads it (``TRAIN.FIT_MAX_FRAMES``; :mod:`pyanomaly.datasets.build`). With
    ``TRAIN.EVAL_PERIOD`` -1 (never evaluated) the test split is not read: None."""
    first_on_node = int(os.environ.get("LOCAL_RANK", 0)) == 0
    if world > 1 and not first_on_node:
        dist.barrier()  # let the first process decode, then read its cache instead of decoding again
    train_set = build_fit_dataset(cfg) if fit else build_train_dataset(cfg)
    test_set = build_test_dataset(cfg) if cfg.TRAIN.EVAL_PERIOD >= 0 else None
    if world > 1 and first_on_node:
        dist.barrier()
    logger.info("training split: %d videos, %d clips of %d frames; %s", len(train_set.videos), len(train_set),
                cfg.DATASET.CLIP_LENGTH, "test split not read (TRAIN.EVAL_PERIOD -1)" if test_set is None else
                f"test split: {len(test_set.videos)} videos, {sum(test_set.lengths)} frames")
    return train_set, test_set


def build_optimizer(cfg: CfgNode, model: torch.nn.Module):
    """``TRAIN.OPTIMIZER`` (any ``torch.optim`` class) and its LR schedule (a ``LambdaLR`` of
    the ``TRAIN.LR_SCHEDULE`` registered in ``LR_SCHEDULES``, over ``TRAIN.MAX_STEPS``)."""
    opt_cls = getattr(torch.optim, cfg.TRAIN.OPTIMIZER, None)
    if not (isinstance(opt_cls, type) and issubclass(opt_cls, torch.optim.Optimizer)
            and opt_cls is not torch.optim.Optimizer):
        names = sorted(n for n, c in vars(torch.optim).items() if isinstance(c, type)
                       and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer)
        raise ConfigError(f"TRAIN.OPTIMIZER: torch.optim has no optimizer '{cfg.TRAIN.OPTIMIZER}'; "
                          f"it has: {', '.join(names)}")
    try:
        optimizer = opt_cls(model.parameters(), lr=cfg.TRAIN.LR, weight_decay=cfg.TRAIN.WEIGHT_DECAY)
    except TypeError as exc:
        raise ConfigError(f"TRAIN.OPTIMIZER {cfg.TRAIN.OPTIMIZER} cannot be built with TRAIN.LR and "
                          f"TRAIN.WEIGHT_DECAY: {exc}") from None
    return optimizer, build_lr_scheduler(optimizer, cfg_to_dict(cfg.TRAIN.LR_SCHEDULE), cfg.TRAIN.MAX_STEPS)


def test(cfg: CfgNode, checkpoint: str | Path, config_path: str | None = None, new_output_dir: bool = False,
         overwrite: bool = False) -> dict:
    """Score the test split with the weights of ``checkpoint``; writes a run directory.

    It is ``SYSTEM.OUTPUT_DIR``, or with ``new_output_dir`` a new folder beside the
    checkpoint's run (``engine/outputs.py``); never the run holding ``checkpoint``, and a
    folder that is not empty only with ``overwrite``.
    """
    checkpoint = Path(checkpoint)
    require_file(checkpoint)  # before any folder is made
    out = choose_output_dir(cfg.SYSTEM.OUTPUT_DIR, source_run(checkpoint), "test", config_path, new_output_dir,
                            overwrite)
    cfg = with_output_dir(cfg, out)
    device, rank, _ = setup(cfg, config_path)
    if rank == 0:
        logger.info("test outputs go to %s", out)
    ckpt = load_checkpoint(checkpoint)
    check_compatible(ckpt, model_meta(cfg), checkpoint)
    trained_on = trained_dataset(ckpt).get("NAME")
    if rank == 0 and trained_on is not None and trained_on != cfg.DATASET.NAME:
        logger.warning("%s was trained (or fitted) on %s; this run scores %s with it as it is. To learn %s's own "
                       "normal, run tools/train.py with this config", checkpoint, trained_on, cfg.DATASET.NAME,
                       cfg.DATASET.NAME)
    if rank == 0:
        save_cfg(cfg, out / "config.yaml")
    model = build_model(cfg, device)
    load_model_weights(model, ckpt, checkpoint)
    task = build_task(cfg, model.task)  # a wrong scorer or baseline fails before the split is read
    check_method_scorer(cfg, model)
    test_set = build_test_dataset(cfg)
    logger.info("scoring %d videos (%d frames) of %s with %s (step %s)%s", len(test_set.videos),
                sum(test_set.lengths), cfg.DATASET.ROOT, checkpoint, ckpt.get("step"),
                "" if cfg.TEST.PSEUDO_ANOMALY.type == "none" else f", with {cfg.TEST.PSEUDO_ANOMALY.type} pseudo-anomalies")
    metrics = task.evaluate(model, test_set, device, out if rank == 0 else None)
    logger.info("%s", format_metrics(metrics))
    if rank == 0:
        _log_outputs(out)
    teardown()
    return metrics
