"""The benchmark's models: recipes of ``configs/`` at their input size, and the variants they run in.

Each entry of :data:`MODEL_CONFIGS` names a config file (plus only what the benchmark
changes) and is built as training builds it (:func:`build_model`); a variant (``reference``,
``fp32``, ``bf16``, ``fused``, ``compile``, ...) sets the fast path's switches on the model
(:func:`variant_switches`) and, for ``bf16``, autocast.
"""
from __future__ import annotations

import copy
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pyanomaly.config import CfgNode, load_cfg
from pyanomaly.models.build import build_model as build_method
from pyanomaly.networks.fast import FastPath, using_fast_path
from pyanomaly.registry import MODELS, accepted_arguments

# The repository, whose configs/ the benchmark models are read from.
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BenchConfig:
    """A benchmark model: a recipe of ``configs/`` (or the defaults), built as training builds it.

    The frame ``(C, H, W)`` and the clip length ``T`` are the config's ``DATASET.CHANNELS``,
    ``DATASET.IMAGE_SIZE`` and ``DATASET.CLIP_LENGTH`` (after ``overrides``).

    Args:
        config: a config file, relative to the repository (``"configs/prednet.yaml"``); None: the defaults.
        overrides: ``{KEY: value}`` applied to it where the benchmark differs from the recipe
            (e.g. ``{"DATASET.IMAGE_SIZE": [256, 256]}``), as ``KEY VALUE`` overrides of ``load_cfg``.
        frames: frames predicted per timed call.
        batch: test windows per forward pass (``MODEL.ARGS.batch_windows``).
        train_batch: training clips per step.
        modes: test modes: ``"window"`` and, for PredNet, ``"stream"`` (``MODEL.ARGS.test_window 0``).
    """
    config: str | None
    overrides: dict[str, Any] = field(default_factory=dict)
    frames: int = 32
    batch: int = 16
    train_batch: int = 4
    modes: tuple[str, ...] = ("window",)

    def load(self, mode: str | None = None, clip_length: int | None = None) -> CfgNode:
        """The config: the file, then ``overrides``; for a test ``mode`` also ``batch`` and the
        mode's ``test_window``; ``clip_length`` replaces ``DATASET.CLIP_LENGTH``."""
        path = ROOT / self.config if self.config is not None else None
        overrides = dict(self.overrides)
        if clip_length is not None:
            overrides["DATASET.CLIP_LENGTH"] = clip_length
        if mode is not None:
            accepted = accepted_arguments(MODELS.get(load_cfg(path, _pairs(overrides)).MODEL.NAME))
            if accepted is None or "batch_windows" in accepted:
                overrides["MODEL.ARGS.batch_windows"] = self.batch
            if mode == "stream":
                overrides["MODEL.ARGS.test_window"] = 0
        return load_cfg(path, _pairs(overrides))

    @property
    def input(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of a frame."""
        cfg = self.load()
        return (cfg.DATASET.CHANNELS, *cfg.DATASET.IMAGE_SIZE)

    @property
    def clip_length(self) -> int:
        """``T``: the training clip and the test window."""
        return self.load().DATASET.CLIP_LENGTH


def _pairs(overrides: dict[str, Any]) -> list:
    return [item for kv in overrides.items() for item in kv]


# Lotter et al.'s KITTI PredNet: no recipe of ours, so the whole method is given here.
_KITTI = {"MODEL.NAME": "PredNetPredictor", "DATASET.CHANNELS": 3, "DATASET.IMAGE_SIZE": [128, 160],
          "DATASET.CLIP_LENGTH": 10,
          "MODEL.ARGS.network": dict(type="PredNet", stack_sizes=[3, 48, 96, 192], R_stack_sizes=[3, 48, 96, 192],
                                     A_filter_sizes=[3, 3, 3], Ahat_filter_sizes=[3, 3, 3, 3],
                                     R_filter_sizes=[3, 3, 3, 3])}

MODEL_CONFIGS: dict[str, BenchConfig] = {
    "prednet_kitti": BenchConfig(None, _KITTI, frames=4, batch=4, train_batch=2, modes=("window", "stream")),
    "prednet_ped2": BenchConfig("configs/ped2_prednet.yaml", frames=16, batch=16, modes=("window", "stream")),
    "prednet_synthetic": BenchConfig("configs/prednet.yaml", modes=("window", "stream")),
    "prednet_256": BenchConfig("configs/prednet.yaml", {"DATASET.IMAGE_SIZE": [256, 256]}, frames=8, batch=8,
                               modes=("window", "stream")),
    "convlstm_64": BenchConfig("configs/convlstm.yaml"),
    "convlstm_ped2": BenchConfig("configs/ped2_convlstm.yaml", frames=16, batch=16),
    "convlstm_rgb": BenchConfig("configs/convlstm.yaml", {"DATASET.CHANNELS": 3, "DATASET.IMAGE_SIZE": [128, 160],
                                                          "MODEL.ARGS.network.in_channels": 3}, frames=16, batch=8),
    "convlstm_256": BenchConfig("configs/convlstm.yaml", {"DATASET.IMAGE_SIZE": [256, 256]}, frames=16, batch=8),
    # U-Net over 4 frames at Ped2's own 240x360 (window mode only)
    "unet_ped2": BenchConfig("configs/ped2_unet_native.yaml", frames=8, batch=8),
}
VARIANTS = ("reference", "fp32", "bf16", "fused", "fused-bf16", "compile", "compile-bf16")
ABLATION = ("channels_last", "packed", "fold", "subpixel", "zero_skip", "malloc")  # fast-path switches, plus tune_malloc


def variant_switches(name: str) -> FastPath:
    """The fast path of a variant: none (reference, compile*), the fused update (fused*) or the default."""
    if name == "reference" or name.startswith("compile"):
        return FastPath.reference()
    return FastPath(fused=name.startswith("fused"))


def _variant(name: str, model: torch.nn.Module, device: torch.device) -> ExitStack:
    """The context a variant runs in: ``model`` holding :func:`variant_switches` (restored after
    it) and, for ``*-bf16``, bf16 autocast."""
    stack = ExitStack()
    stack.enter_context(using_fast_path(model, variant_switches(name)))
    if name.endswith("bf16"):
        stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))
    return stack


def _compiled(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose network's plain code runs through ``torch.compile``."""
    model = copy.deepcopy(model)
    net = model.net
    # every compiled copy has its own entries in dynamo's cache (keyed by the code object, shared
    # by all PredNets): a small limit would silently run later models uncompiled
    config = torch._dynamo.config
    limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, limit, max(getattr(config, limit), 256))
    if hasattr(net, "reference_step"):  # PredNet: the step is what the loops call
        net.reference_step = torch.compile(net.reference_step)
    else:
        net.forward = torch.compile(net.forward)
    return model


def build_model(bench: BenchConfig, mode: str, device: torch.device, clip_length: int | None = None,
                seed: int = 0) -> torch.nn.Module:
    """The method of ``bench``'s config for test ``mode``, with fixed random weights, in eval mode."""
    torch.manual_seed(seed)
    return build_method(bench.load(mode, clip_length), device).eval()
