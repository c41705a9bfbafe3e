"""pyanomaly: video anomaly detection by frame prediction.

    >>> import pyanomaly
    >>> det = pyanomaly.load("outputs/prednet/checkpoints/best.pth")
    >>> det.score("my_clip.avi").scores          # (N,) one anomaly score per frame

The API (``load``, ``train``; ``pyanomaly.api``) is imported on first use, so ``import
pyanomaly`` stays light (no torch). See ``docs/api.md``; the commands: ``pyanomaly --help``.
"""
from __future__ import annotations

__version__ = "0.1.0"  # the one place the version is written; pyproject.toml reads it from here

__all__ = ["__version__", "load", "train"]


def __getattr__(name: str):
    if name in ("load", "train"):
        from pyanomaly import api
        return getattr(api, name)
    raise AttributeError(f"module 'pyanomaly' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + ["load", "train"])
