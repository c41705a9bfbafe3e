"""Running a configured job: set up the run directory, build every part, train or test.

These are what ``tools/train.py`` and ``tools/test.py`` call. Under ``torchrun`` each
process joins the default process group (gloo on CPU, nccl on GPU) and the model is
wrapped in ``DistributedDataParallel``; only rank 0 writes files.
"""
from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from yacs.config import CfgNode

from pyanomaly.config import cfg_to_dict, save_cfg
from pyanomaly.datasets import build_dataset
from pyanomaly.registry import MODELS, build, import_plugins
from pyanomaly.utils import resolve_device, seed_everything

from .checkpoint import CheckpointError, check_compatible, load_checkpoint, load_model_weights
from .hooks import build_hooks
from .inference import evaluate, format_metrics
from .sampler import InfiniteSampler
from .trainer import Trainer

logger = logging.getLogger("pyanomaly")


def setup(cfg: CfgNode, config_path: str | None = None, output_dir: str | Path | None = None):
    """Process group, plugins, device, seed, run directory and logging. Returns (device, rank, world)."""
    rank, world = 0, 1
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and cfg.SYSTEM.DEVICE != "cpu" else "gloo"
        dist.init_process_group(backend)
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    search = [Path.cwd()] + ([Path(config_path).resolve().parent] if config_path else [])
    import_plugins(cfg.SYSTEM.IMPORTS, search)
    device = resolve_device(cfg.SYSTEM.DEVICE)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if cfg.SYSTEM.NUM_THREADS > 0:
        torch.set_num_threads(cfg.SYSTEM.NUM_THREADS)
    if cfg.SYSTEM.DETERMINISTIC:
        torch.use_deterministic_algorithms(True, warn_only=True)
    seed_everything(cfg.SYSTEM.SEED + rank)
    out = Path(output_dir or cfg.SYSTEM.OUTPUT_DIR)
    if rank == 0:
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / ".write_test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise OSError(f"output directory {out} is not writable: {exc.strerror or exc}") from None
        setup_logging(out / "log.txt", cfg.LOG.LEVEL)
    else:
        setup_logging(None, "WARNING")
    return device, rank, world


def setup_logging(log_file: Path | None, level: str = "INFO") -> None:
    """Plain lines to stderr and (appending) to ``log_file``."""
    root = logging.getLogger("pyanomaly")
    root.setLevel(level)
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    fmt = logging.Formatter("[%(asctime)s] %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    root.addHandler(console)
    if log_file is not None:
        fh = logging.FileHandler(log_file, mode="a")
        fh.setFormatter(fmt)
        root.addHandler(fh)
    root.propagate = False


def model_meta(cfg: CfgNode) -> dict:
    """Plain-typed identity of the model, stored in checkpoints and compared on load."""
    return {"model_name": cfg.MODEL.NAME, "model_args": cfg_to_dict(cfg.MODEL.ARGS),
            "image_size": list(cfg.DATASET.IMAGE_SIZE), "channels": cfg.DATASET.CHANNELS}


def build_model(cfg: CfgNode, device: torch.device):
    """The method named by ``MODEL.NAME`` with ``MODEL.ARGS`` (+ ``clip_length`` if it takes one)."""
    args = dict(type=cfg.MODEL.NAME, **cfg_to_dict(cfg.MODEL.ARGS))
    model = build(MODELS, args, clip_length=cfg.DATASET.CLIP_LENGTH)
    return model.to(device)


def _lr_lambda(cfg: CfgNode):
    tr = cfg.TRAIN
    def f(step: int) -> float:
        if tr.LR_WARMUP_STEPS > 0 and step < tr.LR_WARMUP_STEPS:
            return (step + 1) / tr.LR_WARMUP_STEPS
        if tr.LR_SCHEDULE == "cosine":
            span = max(tr.MAX_STEPS - tr.LR_WARMUP_STEPS, 1)
            return 0.5 * (1 + math.cos(math.pi * min(step - tr.LR_WARMUP_STEPS, span) / span))
        if tr.LR_SCHEDULE == "step":
            return tr.LR_GAMMA ** sum(step >= s for s in tr.LR_STEPS)
        return 1.0
    return f


def train(cfg: CfgNode, resume: bool = False, config_path: str | None = None) -> dict | None:
    """Train ``cfg``'s method; returns the final metrics (rank 0) after writing the run directory."""
    device, rank, world = setup(cfg, config_path)
    out = Path(cfg.SYSTEM.OUTPUT_DIR)
    last = out / "checkpoints" / "last.pth"
    ckpt = None
    if resume:
        if not last.is_file():
            raise CheckpointError(f"--resume: no checkpoint to resume from at {last}")
        ckpt = load_checkpoint(last)
        check_compatible(ckpt, model_meta(cfg), last)
        logger.info("resuming from %s (step %d)", last, ckpt["step"])
    elif last.is_file():
        raise CheckpointError(
            f"{out} already holds a run (checkpoints/last.pth); pass --resume to continue it or choose "
            "another SYSTEM.OUTPUT_DIR")
    if rank == 0:
        save_cfg(cfg, out / "config.yaml")
        logger.info("run directory %s (%d process%s, device %s)", out, world, "es" if world > 1 else "", device)
    train_set = build_dataset(cfg, "training")
    test_set = build_dataset(cfg, cfg.TEST.SPLIT)
    logger.info("training split: %d videos, %d clips of %d frames; test split: %d videos, %d frames",
                len(train_set.videos), len(train_set), cfg.DATASET.CLIP_LENGTH, len(test_set.videos), sum(test_set.lengths))
    model = build_model(cfg, device)
    forward = model
    if world > 1:
        forward = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.TRAIN.COMPILE:
        forward = torch.compile(forward)
    try:
        opt_cls = getattr(torch.optim, cfg.TRAIN.OPTIMIZER)
    except AttributeError:
        raise ValueError(f"TRAIN.OPTIMIZER: torch.optim has no optimizer '{cfg.TRAIN.OPTIMIZER}'") from None
    optimizer = opt_cls(model.parameters(), lr=cfg.TRAIN.LR, weight_decay=cfg.TRAIN.WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg))
    scaler = torch.amp.GradScaler("cuda") if cfg.TRAIN.AMP and device.type == "cuda" else None
    start = int(ckpt["step"]) if ckpt else 0
    sampler = InfiniteSampler(len(train_set), seed=cfg.SYSTEM.SEED, rank=rank, world=world,
                              start=start * cfg.TRAIN.BATCH_SIZE)
    loader = DataLoader(train_set, batch_size=cfg.TRAIN.BATCH_SIZE, sampler=sampler,
                        num_workers=cfg.DATASET.NUM_WORKERS, pin_memory=device.type == "cuda",
                        persistent_workers=cfg.DATASET.NUM_WORKERS > 0)
    trainer = Trainer(model, forward, optimizer, scheduler, loader, cfg.TRAIN.MAX_STEPS, build_hooks(cfg), out,
                      evaluate=lambda: evaluate(model, test_set, cfg, device, out if rank == 0 else None),
                      meta=model_meta(cfg), device=device, grad_clip=cfg.TRAIN.GRAD_CLIP, scaler=scaler,
                      is_main=rank == 0)
    if ckpt is not None:
        trainer.load_state_dict(ckpt)
    trainer.train()
    if trainer.metrics is not None and rank == 0:
        logger.info("final: %s", format_metrics(trainer.metrics))
        logger.info("wrote %s/metrics.json, scores/ and plots/", out)
    return trainer.metrics


def test(cfg: CfgNode, checkpoint: str | Path, config_path: str | None = None) -> dict:
    """Score the test split with the weights of ``checkpoint``; writes the run directory."""
    device, rank, _ = setup(cfg, config_path)
    ckpt = load_checkpoint(checkpoint)
    check_compatible(ckpt, model_meta(cfg), checkpoint)
    out = Path(cfg.SYSTEM.OUTPUT_DIR)
    if rank == 0:
        save_cfg(cfg, out / "config.yaml")
    model = build_model(cfg, device)
    load_model_weights(model, ckpt, checkpoint)
    test_set = build_dataset(cfg, cfg.TEST.SPLIT)
    logger.info("scoring %d videos (%d frames) of %s with %s (step %s)", len(test_set.videos),
                sum(test_set.lengths), cfg.DATASET.ROOT, checkpoint, ckpt.get("step"))
    metrics = evaluate(model, test_set, cfg, device, out if rank == 0 else None)
    logger.info("%s", format_metrics(metrics))
    if rank == 0:
        logger.info("wrote %s/metrics.json, scores/ and plots/", out)
    return metrics
