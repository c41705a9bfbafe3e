"""Checkpoints that survive a kill and load safely.

A checkpoint is a dict of tensors and plain Python types only (loadable with
``torch.load(weights_only=True)``): model, optimizer and scheduler states, the step, every
RNG state, the best metric so far and ``meta`` (method name and arguments, used to refuse a
checkpoint of another model). Files are written to a temporary name, fsynced and renamed.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pyanomaly.utils import atomic_write


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or made for another model."""


def rng_state() -> dict:
    """Every RNG state as tensors and plain types."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "python": [py_version, list(py_internal), py_gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temp file + fsync + rename)."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, foreign or pickled objects
        raise CheckpointError(f"cannot load checkpoint {path}: {type(exc).__name__}: {exc}") from exc


def check_compatible(ckpt: dict, meta: dict, path: str | Path) -> None:
    """Refuse a checkpoint whose method or arguments differ from ``meta``, naming the difference."""
    saved = ckpt.get("meta", {})
    for key in ("model_name", "model_args"):
        if key in saved and saved[key] != meta.get(key):
            raise CheckpointError(
                f"checkpoint {path} was made for a different model: {key} is {saved[key]!r} there "
                f"but {meta.get(key)!r} in this config")


def load_model_weights(model: torch.nn.Module, ckpt: dict, path: str | Path) -> None:
    try:
        model.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} does not fit this model: {exc}") from exc
