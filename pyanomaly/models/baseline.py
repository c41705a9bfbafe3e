"""Methods that learn nothing by optimisation: the baselines every learned method must beat.

A baseline (copying the last frame, the speed of the optical flow) has no weights. It is a
method like any other (registered, built from ``MODEL.*``, scored by the one scoring loop)
and is "trained" like an online method (``online = True``): ``tools/train.py`` calls
:meth:`Baseline.fit_online`, which fits whatever statistics of the training videos the
baseline needs (:meth:`Baseline.fit`; none by default), and writes ``checkpoints/last.pth``
and ``best.pth`` holding them, so ``tools/test.py --checkpoint`` scores it as it scores any
method. The evaluation can also run baselines beside a recipe (``EVAL.BASELINES``).

Example:
    >>> model = build(MODELS, dict(type="CopyLast"))
    >>> model.fit_online(train_set, torch.device("cpu"), save=lambda position: None)
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from .base import VADModel


class Baseline(VADModel):
    """Base of the methods without weights (see the module docstring)."""

    online = True
    has_weights = False

    def __init__(self):  # explicit: a baseline takes no argument it does not name (not clip_length)
        super().__init__()

    @property
    def needs_training_videos(self) -> bool:
        """True when :meth:`fit` reads the training videos (so a caller builds that split only then)."""
        return False

    def fit(self, train_set, device: torch.device, progress: bool = True) -> int:
        """Fit the statistics of the training videos the method needs; returns the frames read (none here)."""
        return 0

    def fit_online(self, train_set, device: torch.device, save: Callable[[dict], None],
                   position: dict | None = None, checkpoint_period: int = 500, log_period: int = 20,
                   progress: bool = True, out_dir: str | Path | None = None) -> dict:
        """:meth:`fit` from the start (a resumed fit starts again: it is one pass of reading);
        returns the position ``{"frames": frames read}``. The caller saves the final state."""
        self.to(device).eval()
        return {"frames": int(self.fit(train_set, device, progress))}

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} learns nothing by optimisation; tools/train.py fits it "
                                  "with fit_online")
