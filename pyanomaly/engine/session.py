"""The process a job runs in: process group, plugins, device, threads, seed, run directory, logging.

Every entry point (:mod:`.launch`, :mod:`.rescore`, :mod:`.streaming`) starts with :func:`setup`;
a job that joined ``torchrun``'s process group leaves it with :func:`teardown`.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from yacs.config import CfgNode

from pyanomaly.registry import import_plugins
from pyanomaly.utils import choose_threads, resolve_device, seed_everything

logger = logging.getLogger("pyanomaly")
_joined_group = False  # setup() started the default process group (torchrun), so we end it


def setup(cfg: CfgNode, config_path: str | None = None, output_dir: str | Path | None = None):
    """Process group, plugins, device, seed, run directory and logging. Returns (device, rank, world)."""
    global _joined_group
    rank, world = 0, 1
    device = resolve_device(cfg.SYSTEM.DEVICE)
    distributed = dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) > 1  # torchrun sets it
    if distributed and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)  # before the group starts, so NCCL knows this process's GPU
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        _joined_group = True
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    search = [Path.cwd()] + ([Path(config_path).resolve().parent] if config_path else [])
    import_plugins(cfg.SYSTEM.IMPORTS, search)
    threads = choose_threads(cfg.SYSTEM.NUM_THREADS)
    if threads is not None:
        torch.set_num_threads(threads[0])
    if cfg.SYSTEM.DETERMINISTIC:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":  # both switches, since torch's defaults differ (convolutions on, matmuls off)
        torch.backends.cuda.matmul.allow_tf32 = cfg.SYSTEM.TF32
        torch.backends.cudnn.allow_tf32 = cfg.SYSTEM.TF32
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
        logger.info("%d intra-op thread(s) (%s); OpenMP wait policy %s", torch.get_num_threads(),
                    threads[1] if threads else "OMP_NUM_THREADS", os.environ.get("OMP_WAIT_POLICY", "(runtime default)"))
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


def with_output_dir(cfg: CfgNode, out: str | Path) -> CfgNode:
    """``cfg`` with ``SYSTEM.OUTPUT_DIR`` set to ``out`` (a frozen copy when it changes)."""
    if cfg.SYSTEM.OUTPUT_DIR == str(out):
        return cfg
    cfg = cfg.clone()
    cfg.defrost()
    cfg.SYSTEM.OUTPUT_DIR = str(out)
    cfg.freeze()
    return cfg


def teardown() -> None:
    """Leave the process group :func:`setup` joined (one a caller set up is left alone)."""
    global _joined_group
    if _joined_group and dist.is_initialized():
        # All processes leave together: one that tears its group down while another is still
        # at work can abort in gloo's threads at exit.
        dist.barrier()
        dist.destroy_process_group()
    _joined_group = False
