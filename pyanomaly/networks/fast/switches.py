"""The switches of the inference fast path, held by each network that has a fast step.

Every module with a fast step (PredNet, the ConvLSTM cell, the strided encoder and upsampling
decoder, the PCM, the ERM, the U-Net) has an attribute ``fast_path`` (a :class:`FastPath`,
``FastPath()`` unless set). :func:`set_fast_path` sets it on every such module of a model;
:func:`using_fast_path` does so for the length of a ``with`` block.

Example:
    >>> model = build_model(load_cfg("configs/prednet.yaml"))
    >>> set_fast_path(model, FastPath(fused=True))          # TEST.FUSED_UPDATE
    >>> with using_fast_path(model, FastPath.reference()):  # the plain code, as a baseline
    ...     ref = model.predict_video(frames)
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields
from typing import Iterator

import torch
from torch import nn


@dataclass(frozen=True)
class FastPath:
    """Which parts of the inference fast path run (all but ``fused`` on by default).

    The fast path only runs without grad (``torch.no_grad``/``torch.inference_mode``); with
    grad enabled every module runs its plain code whatever the switches say.

    Args:
        enabled: run the optimised step at all (False: the plain code, the numerical reference).
        channels_last: keep tensors and cached weights channels_last (NHWC).
        fold: fold the LSTM gate activations' affine parts into the cached gate weights.
        packed: hand oneDNN prepacked weights, activations fused as post-ops (CPU).
        zero_skip: on a stream's first step, leave the all-zero states out of the convolutions.
        subpixel: PredNet: convolve the nearest-upsampled ``R`` of the layer above on the small map.
        fused: run the LSTM state update as one ``torch.compile``'d pass (``TEST.FUSED_UPDATE``;
            opt-in: needs a C++ compiler on CPU, compiled on first use).
    """

    enabled: bool = True
    channels_last: bool = True
    fold: bool = True
    packed: bool = True
    zero_skip: bool = True
    subpixel: bool = True
    fused: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            if not isinstance(getattr(self, f.name), bool):
                raise TypeError(f"FastPath.{f.name} must be a bool, got {getattr(self, f.name)!r}")

    @classmethod
    def reference(cls) -> "FastPath":
        """The plain code even without grad (``enabled=False``): the before/after baseline."""
        return cls(enabled=False)

    @property
    def memory_format(self) -> torch.memory_format:
        """The memory format of the fast path's 4-D tensors."""
        return torch.channels_last if self.channels_last else torch.contiguous_format


def _holders(module: nn.Module) -> Iterator[nn.Module]:
    """The modules of ``module`` (itself included) that have a fast step."""
    return (m for m in module.modules() if isinstance(getattr(m, "fast_path", None), FastPath))


def set_fast_path(module: nn.Module, switches: FastPath) -> None:
    """Set ``switches`` on every module of ``module`` (itself included) that has a fast step;
    the others are left alone."""
    if not isinstance(switches, FastPath):
        raise TypeError(f"set_fast_path expects a FastPath, got {type(switches).__name__}")
    for m in _holders(module):
        m.fast_path = switches


@contextlib.contextmanager
def using_fast_path(module: nn.Module, switches: FastPath) -> Iterator[nn.Module]:
    """Within it, every module of ``module`` with a fast step holds ``switches``; after it,
    each holds again what it held before. Yields ``module``."""
    if not isinstance(switches, FastPath):
        raise TypeError(f"using_fast_path expects a FastPath, got {type(switches).__name__}")
    before = [(m, m.fast_path) for m in _holders(module)]
    try:
        for m, _ in before:
            m.fast_path = switches
        yield module
    finally:
        for m, held in before:
            m.fast_path = held
