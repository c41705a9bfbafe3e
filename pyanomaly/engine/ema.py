"""A moving average of the weights over the last part of training (``TRAIN.EMA_DECAY``).

The weights a run evaluates, saves as ``checkpoints/*.pth["model"]`` and publishes are then
the average, not the last step's: the average of the iterates of a training run is often
less noisy than any one of them (Polyak averaging; SWA; on the flow-conditioned Ped2 predictor
it was not, docs/results.md). The average is mmengine's
``MomentumAnnealingEMA`` with ``gamma = 1``: at its ``n``-th update the new weights enter
with the factor ``max(1 - decay, 1 / n)``, so it is the plain mean of the weights seen until
``1 / (1 - decay)`` updates, an exponential average with ``decay`` after. It starts after
step ``TRAIN.EMA_START``, so the first, far-from-trained weights never enter it.

Parameters are averaged; buffers are the trained model's own, as mmengine does by default,
except the running statistics of batch-norm layers: those of the last weights do not fit the
averaged ones (on Ped2 that alone moved a predictor's AUC by up to 6 points, either way), so they are
computed again, as stochastic weight averaging does, by running the averaged model over
``TRAIN.EMA_BN_BATCHES`` fixed training batches before its weights are evaluated or saved.
The training weights stay in the checkpoint under ``"ema"["training_model"]``, so
``--resume`` continues both exactly.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable

import torch
from torch.nn.modules.batchnorm import _BatchNorm
from mmengine.model import MomentumAnnealingEMA

from pyanomaly.errors import ConfigError

__all__ = ["WeightAverage", "check_ema_config"]


def check_ema_config(decay: float, start: int, max_steps: int, bn_batches: int = 0) -> None:
    """Refuse ``TRAIN.EMA_DECAY`` / ``EMA_START`` / ``EMA_BN_BATCHES`` values that average nothing or everything."""
    if bn_batches < 0:
        raise ConfigError(f"TRAIN.EMA_BN_BATCHES must be >= 0 (0 = keep the trained model's statistics), got {bn_batches}")
    if not 0.0 <= decay < 1.0:
        raise ConfigError(f"TRAIN.EMA_DECAY must be in [0, 1) (0 = off), got {decay}")
    if decay > 0 and not 0 <= start < max_steps:
        raise ConfigError(f"TRAIN.EMA_START must be in [0, TRAIN.MAX_STEPS = {max_steps}) so that some steps are "
                          f"averaged, got {start}")


class WeightAverage:
    """The average of ``model``'s parameters over the steps after ``start``.

    Args:
        model: the trained module (the method, not a DDP or compiled wrapper).
        decay: the weight the average keeps at each step once it is past ``1 / (1 - decay)``
            updates, in ``(0, 1)``.
        start: the number of steps whose weights are left out (the first update follows
            step ``start + 1``).
        batches: returns the same training batches each time it is called; the averaged
            model's batch-norm statistics are computed over them (in train mode, without
            gradients) before its weights are used. None keeps the trained model's.
    """

    def __init__(self, model: torch.nn.Module, decay: float, start: int = 0,
                 batches: Callable[[], Iterable[dict]] | None = None):
        self.decay, self.start = float(decay), int(start)
        self.average = MomentumAnnealingEMA(model, momentum=1.0 - self.decay, gamma=1)
        self.batches = batches
        self._norms = [m for m in self.average.module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
        self._fresh = -1  # the number of updates the batch-norm statistics were computed at

    @property
    def updates(self) -> int:
        """How many steps' weights the average holds (0: none yet)."""
        return int(self.average.steps)

    def update(self, model: torch.nn.Module, step: int) -> None:
        """Fold in ``model``'s weights after step ``step`` (1-based) if it is past ``start``."""
        if step > self.start:
            self.average.update_parameters(model)

    def weights(self) -> dict[str, torch.Tensor]:
        """The averaged state dict (the trained model's keys; its buffers, but for batch-norm
        statistics, which are the averaged model's own)."""
        self._refresh_statistics()
        return self.average.module.state_dict()

    @torch.no_grad()
    def _refresh_statistics(self) -> None:
        if not self._norms or self.batches is None or self._fresh == self.updates or self.updates == 0:
            return
        module = self.average.module
        momenta = [m.momentum for m in self._norms]
        for m in self._norms:
            m.reset_running_stats()
            m.momentum = None  # a plain mean over the batches
        was_training = module.training
        module.train()
        try:
            batches = iter(self.batches())
            try:
                for batch in batches:
                    module(batch)
            finally:
                getattr(batches, "close", lambda: None)()  # a generator's own clean-up runs now
        finally:
            for m, momentum in zip(self._norms, momenta):
                m.momentum = momentum
            module.train(was_training)
        self._fresh = self.updates

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module):
        """``model`` holds the averaged weights inside the block, its own again after it.

        Nothing changes before the first update.
        """
        if self.updates == 0:
            yield
            return
        own = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.weights())
        try:
            yield
        finally:
            model.load_state_dict(own)

    def state_dict(self) -> dict:
        """What a resume needs besides the averaged weights, which the checkpoint holds as ``"model"``."""
        return {"updates": self.updates, "decay": self.decay, "start": self.start}

    def load_state_dict(self, state: dict, averaged: dict[str, torch.Tensor]) -> None:
        """Restore the average from a checkpoint: its ``"ema"`` entry and its ``"model"`` weights."""
        if int(state["updates"]) > 0:
            self.average.module.load_state_dict(averaged)
        self.average.steps.fill_(int(state["updates"]))
        self._fresh = self.updates  # the checkpoint's statistics are those computed for these weights
