"""The training loop: small, with hooks as the extension points (detectron2's shape).

``Trainer.train()`` runs ``before_train``, then per step ``before_step`` / ``run_step`` /
``after_step``, then ``after_train`` in a ``finally``. ``run_step`` delegates to the
method's ``train_step`` so a method with a special step needs no new trainer.

Under ``torchrun`` every process runs the same loop and the same hooks at the same steps:
``save`` gathers every process's RNG state (a collective call) and only the main process
writes.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.distributed as dist

from .checkpoint import rng_state, save_checkpoint, set_rng_state
from .ema import WeightAverage
from .hooks import HookBase

logger = logging.getLogger("pyanomaly")


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class AutocastForward:
    """Calls ``forward`` under ``torch.autocast(device_type)``.

    Handed to the method's ``train_step`` in place of ``forward`` when ``TRAIN.AMP`` is on,
    so the loss computation runs in mixed precision while the backward pass and the
    optimizer step (in ``train_step``, with its ``GradScaler``) stay outside autocast, as
    torch recommends — without each method having to know about AMP.
    """

    def __init__(self, forward: Callable, device_type: str):
        self.forward, self.device_type = forward, device_type

    def __call__(self, *args, **kwargs):
        with torch.autocast(self.device_type):
            return self.forward(*args, **kwargs)


class Trainer:
    """Args:
        model: the method (a :class:`~pyanomaly.models.base.VADModel`).
        forward: what computes the losses (``model`` itself, or its DDP / compiled wrapper).
        optimizer, scheduler: torch optimizer and LR scheduler (or None).
        data: an endless iterator of training batches.
        max_steps: optimisation steps in total.
        hooks: hooks in the order they run.
        output_dir: the run directory (checkpoints go to ``output_dir/checkpoints``).
        evaluate: callable returning a metrics dict for the current model.
        meta: plain-typed description of the model, saved in checkpoints.
        grad_clip: max gradient norm (0 = off).
        scaler: a ``torch.amp.GradScaler`` (AMP on CUDA) or None.
        autocast: run ``forward`` under ``torch.autocast`` on ``device``.
        samples_per_step: clips consumed per step by all processes together (saved, so a
            resume knows where the global data stream stands).
        is_main: True on the process that writes files (rank 0).
        transform: applied to each batch's ``"frames"`` ``(B, T, C, H, W)`` on ``device``
            before the forward pass (``DATASET.TRAIN_TRANSFORMS``), or None.
        ema: a :class:`~pyanomaly.engine.ema.WeightAverage` of ``model`` (``TRAIN.EMA_DECAY``),
            updated after every step; once it holds weights they are what ``evaluate`` scores
            and what checkpoints store as ``"model"`` (the training weights go under ``"ema"``).

    Attributes read by hooks: ``step`` (completed steps), ``losses`` (the last step's loss
    terms, averaged over processes, with their sum under ``"loss"``), ``batch`` (the last
    batch, on ``device``), ``metrics`` / ``metrics_step``, ``stop`` (set to end training),
    ``failed`` (in ``after_train``: the loop ended with an error).
    """

    def __init__(self, model, forward, optimizer, scheduler, data: Iterable, max_steps: int,
                 hooks: list[HookBase], output_dir: str | Path, evaluate: Callable[[], dict],
                 meta: dict, device: torch.device, grad_clip: float = 0.0, scaler=None, autocast: bool = False,
                 samples_per_step: int = 0, is_main: bool = True,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None, ema: WeightAverage | None = None):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.forward = AutocastForward(forward, device.type) if autocast else forward
        self.data = iter(data)
        self.max_steps = max_steps
        self.hooks = hooks
        for h in hooks:
            h.trainer = self
        self.output_dir = Path(output_dir)
        self.checkpoint_dir = self.output_dir / "checkpoints"
        self._evaluate = evaluate
        self.meta, self.device, self.grad_clip, self.scaler = meta, device, grad_clip, scaler
        self.samples_per_step = samples_per_step
        self.is_main = is_main
        self.transform = transform
        self.ema = ema
        self.step = 0  # completed optimisation steps
        self.samples = 0  # clips consumed by all processes since step 0
        self.batch: dict | None = None
        self.losses: dict[str, torch.Tensor] = {}
        self.metrics: dict | None = None
        self.metrics_step = -1
        self.stop = False
        self.failed = False

    # -- loop ---------------------------------------------------------------------------
    def train(self) -> None:
        logger.info("training from step %d to %d", self.step, self.max_steps)
        try:
            for h in self.hooks:
                h.before_train()
            while self.step < self.max_steps and not self.stop:
                for h in self.hooks:
                    h.before_step()
                self.run_step()
                self.step += 1
                self.samples += self.samples_per_step
                if self.ema is not None:
                    self.ema.update(self.model, self.step)
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
        self.batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        if self.transform is not None:
            self.batch["frames"] = self.transform(self.batch["frames"])
        self.model.train()
        losses = self.model.train_step(self.batch, self.optimizer, forward=self.forward,
                                       grad_clip=self.grad_clip, scaler=self.scaler)
        self.losses = _mean_over_processes(losses)

    def evaluate(self) -> dict:
        """The metrics of the weights this run stands for (the average, with ``ema``)."""
        if self.ema is None:
            return self._evaluate()
        with self.ema.applied(self.model):
            return self._evaluate()

    # -- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything an exact resume needs, as tensors and plain types.

        Collective under ``torchrun``: every process must call it (it gathers their RNG states).
        """
        rng = rng_state()
        rank, world = _world()
        rng_all = [rng]
        if world > 1:
            rng_all = [None] * world
            dist.all_gather_object(rng_all, rng)
        averaged = self.ema is not None and self.ema.updates > 0
        state = {
            "model": self.ema.weights() if averaged else self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "step": self.step,
            "samples": self.samples,
            "world": world,
            "rng": rng_all[0],
            "rng_per_rank": rng_all,
            "hooks": {type(h).__name__: h.state_dict() for h in self.hooks},
            "metrics": _plain_metrics(self.metrics),
            "metrics_step": self.metrics_step,  # the step ``metrics`` were measured at (-1: none yet)
            "meta": self.meta,
        }
        if self.ema is not None:
            state["ema"] = {**self.ema.state_dict(), "training_model": self.model.state_dict() if averaged else None}
        return state

    def save(self, *names: str) -> None:
        """Write the state to ``checkpoints/<name>.pth`` for each name, atomically.

        Every process calls it at the same point; only the main one writes.
        """
        state = self.state_dict()
        if self.is_main:
            for name in names:
                save_checkpoint(self.checkpoint_dir / f"{name}.pth", state)

    def load_state_dict(self, ckpt: dict) -> None:
        """Restore everything ``state_dict`` saved, for an exact resume."""
        ema = ckpt.get("ema")
        if self.ema is not None and ema is not None:
            self.ema.load_state_dict(ema, ckpt["model"])
        trained = ckpt["model"] if ema is None or ema.get("training_model") is None else ema["training_model"]
        self.model.load_state_dict(trained)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler") is not None:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.step = int(ckpt["step"])
        self.samples = int(ckpt.get("samples", self.step * self.samples_per_step))
        for h in self.hooks:
            h.load_state_dict(ckpt.get("hooks", {}).get(type(h).__name__, {}))
        rank, world = _world()
        per_rank = ckpt.get("rng_per_rank") or [ckpt["rng"]]
        if len(per_rank) == world:
            set_rng_state(per_rank[rank])
        else:
            # Another number of processes: the data order still continues (it is global),
            # but random draws inside training (dropout, ...) cannot be those of the saved run.
            if rank < len(per_rank):
                set_rng_state(per_rank[rank])
            logger.warning("resuming a %d-process checkpoint with %d processes: not bitwise identical to an "
                           "uninterrupted run", len(per_rank), world)


def _mean_over_processes(losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The loss terms averaged over processes (unchanged in a single process).

    Every process then logs the same numbers and sees a NaN on any process, so the NaN
    guard stops all of them at the same step instead of leaving some waiting forever.
    """
    _, world = _world()
    if world == 1 or not losses:
        return losses
    names = list(losses)
    values = torch.stack([losses[k].detach().float().reshape(()) for k in names])
    dist.all_reduce(values)
    values /= world
    return dict(zip(names, values.unbind()))


def _plain_metrics(metrics: dict | None) -> dict | None:
    if metrics is None:
        return None
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, type(None)))}
