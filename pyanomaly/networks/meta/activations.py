"""Activation functions selectable by name, as in Keras (``'relu'``, ``'tanh'``, ...)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear sigmoid: 0 below -2.5, 1 above 2.5, ``0.2 * x + 0.5`` between."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "linear": lambda x: x,
    "elu": F.elu,
    "leaky_relu": F.leaky_relu,
}


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation called ``name``; an unknown name lists the known ones."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation '{name}'; known: {', '.join(_ACTIVATIONS)}") from None


def batch_flatten(x: torch.Tensor) -> torch.Tensor:
    """``(B, ...) -> (B, prod(...))``."""
    return x.reshape(x.shape[0], -1)
