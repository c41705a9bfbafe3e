"""The training loop: small, with hooks as the extension points (detectron2's shape).

``Trainer.train()`` runs ``before_train``, then per step ``before_step`` / ``run_step`` /
``after_step``, then ``after_train`` in a ``finally``. ``run_step`` delegates to the
method's ``train_step`` so a method with a special step needs no new trainer.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterable

import torch

from .checkpoint import rng_state, save_checkpoint, set_rng_state
from .hooks import HookBase

logger = logging.getLogger("pyanomaly")


class Trainer:
    """Args:
        model: the method (a :class:`~pyanomaly.models.base.VADModel`).
        forward: what computes the losses (``model`` itself, or its DDP wrapper).
        optimizer, scheduler: torch optimizer and LR scheduler (or None).
        data: an endless iterator of training batches.
        max_steps: optimisation steps in total.
        hooks: hooks in the order they run.
        output_dir: the run directory (checkpoints go to ``output_dir/checkpoints``).
        evaluate: callable returning a metrics dict for the current model.
        meta: plain-typed description of the model, saved in checkpoints.
        is_main: True on the process that writes files (rank 0).
    """

    def __init__(self, model, forward, optimizer, scheduler, data: Iterable, max_steps: int,
                 hooks: list[HookBase], output_dir: str | Path, evaluate: Callable[[], dict],
                 meta: dict, device: torch.device, grad_clip: float = 0.0, scaler=None, is_main: bool = True):
        self.model, self.forward, self.optimizer, self.scheduler = model, forward, optimizer, scheduler
        self.data = iter(data)
        self.max_steps = max_steps
        self.hooks = hooks
        for h in hooks:
            h.trainer = self
        self.output_dir = Path(output_dir)
        self.checkpoint_dir = self.output_dir / "checkpoints"
        self._evaluate = evaluate
        self.meta, self.device, self.grad_clip, self.scaler = meta, device, grad_clip, scaler
        self.is_main = is_main
        self.step = 0  # completed optimisation steps
        self.losses: dict[str, torch.Tensor] = {}
        self.metrics: dict | None = None
        self.metrics_step = -1
        self.stop = False
        self.failed = False

    # -- loop ---------------------------------------------------------------------------
    def train(self) -> None:
        logger.info("training from step %d to %d", self.step, self.max_steps)
        for h in self.hooks:
            h.before_train()
        try:
            while self.step < self.max_steps and not self.stop:
                for h in self.hooks:
                    h.before_step()
                self.run_step()
                self.step += 1
                for h in self.hooks:
                    h.after_step()
        except BaseException:
            self.failed = True
            raise
        finally:
            for h in self.hooks:
                h.after_train()

    def run_step(self) -> None:
        batch = next(self.data)
        batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        self.model.train()
        self.losses = self.model.train_step(batch, self.optimizer, forward=self.forward,
                                            grad_clip=self.grad_clip, scaler=self.scaler)

    def evaluate(self) -> dict:
        return self._evaluate()

    # -- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "step": self.step,
            "rng": rng_state(),
            "hooks": {type(h).__name__: h.state_dict() for h in self.hooks},
            "metrics": _plain_metrics(self.metrics),
            "meta": self.meta,
        }

    def save(self, name: str) -> None:
        """Write ``checkpoints/<name>.pth`` (main process only; atomic)."""
        if self.is_main:
            save_checkpoint(self.checkpoint_dir / f"{name}.pth", self.state_dict())

    def load_state_dict(self, ckpt: dict) -> None:
        """Restore everything ``state_dict`` saved, for an exact resume."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler") is not None:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.step = int(ckpt["step"])
        for h in self.hooks:
            h.load_state_dict(ckpt.get("hooks", {}).get(type(h).__name__, {}))
        set_rng_state(ckpt["rng"])


def _plain_metrics(metrics: dict | None) -> dict | None:
    if metrics is None:
        return None
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, type(None)))}
