"""Learning-rate schedules, registered in ``LR_SCHEDULES`` and named by ``TRAIN.LR_SCHEDULE``.

A schedule is a callable ``step -> factor``: the learning rate of optimizer step ``step``
(0 for the first) is ``TRAIN.LR * factor``. It is built from ``TRAIN.LR_SCHEDULE``, a spec
``{type: NAME, <arguments>}``; a schedule that takes ``total_steps`` receives
``TRAIN.MAX_STEPS`` unless the spec gives it. The built-in ones all start with an optional
linear warm-up of ``warmup_steps`` steps (Goyal et al. 2017, "Accurate, Large Minibatch SGD"):

* ``constant``: 1 after the warm-up;
* ``cosine``: half a cosine from 1 after the warm-up to 0 at ``total_steps`` (Loshchilov &
  Hutter 2017, "SGDR", without restarts);
* ``step``: multiplied by ``gamma`` at each of the ``milestones`` (steps counted from 0,
  warm-up included).

The schedule is rebuilt from the config on ``--resume``; checkpoints hold the step count of
its ``LambdaLR`` only.

Example (YAML):
    TRAIN:
      MAX_STEPS: 3000
      LR_SCHEDULE: {type: step, milestones: [2000, 2500], gamma: 0.1, warmup_steps: 100}

Example (command line): ``TRAIN.LR_SCHEDULE constant`` or ``TRAIN.LR_SCHEDULE.warmup_steps 100``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from pyanomaly.registry import LR_SCHEDULES, RegistryError, build

__all__ = ["WarmupSchedule", "Constant", "Cosine", "Step", "build_lr_scheduler"]


class WarmupSchedule:
    """Base of the built-in schedules: ``(step + 1) / warmup_steps`` during the warm-up,
    then :meth:`factor`.

    Args:
        warmup_steps: steps of linear warm-up (>= 0; 0 = none).
    """

    def __init__(self, warmup_steps: int = 0):
        if int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(f"TRAIN.LR_SCHEDULE.warmup_steps must be an int >= 0, got {warmup_steps!r}")
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        return self.factor(step)

    def factor(self, step: int) -> float:
        """The factor of a step after the warm-up."""
        raise NotImplementedError


@LR_SCHEDULES.register_module(name="constant")
class Constant(WarmupSchedule):
    """1 after the warm-up."""

    def factor(self, step: int) -> float:
        return 1.0


@LR_SCHEDULES.register_module(name="cosine")
class Cosine(WarmupSchedule):
    """Half a cosine from 1 at the end of the warm-up to 0 at ``total_steps`` (and 0 after).

    Args:
        total_steps: the step at which the factor reaches 0 (``TRAIN.MAX_STEPS``).
        warmup_steps: steps of linear warm-up (>= 0).
    """

    def __init__(self, total_steps: int, warmup_steps: int = 0):
        super().__init__(warmup_steps)
        if int(total_steps) != total_steps or total_steps < 1:
            raise ValueError(f"TRAIN.LR_SCHEDULE.total_steps must be an int >= 1, got {total_steps!r}")
        self.total_steps = int(total_steps)

    def factor(self, step: int) -> float:
        span = max(self.total_steps - self.warmup_steps, 1)
        return 0.5 * (1 + math.cos(math.pi * min(step - self.warmup_steps, span) / span))


@LR_SCHEDULES.register_module(name="step")
class Step(WarmupSchedule):
    """``gamma ** k`` after the warm-up, ``k`` the number of ``milestones`` reached.

    Args:
        milestones: steps (0-based, warm-up included) from which the factor is multiplied by
            ``gamma`` once more; one int or a list.
        gamma: the factor applied at each milestone (> 0).
        warmup_steps: steps of linear warm-up (>= 0).
    """

    def __init__(self, milestones: int | Sequence[int], gamma: float = 0.1, warmup_steps: int = 0):
        super().__init__(warmup_steps)
        steps = [milestones] if isinstance(milestones, int) else list(milestones)
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in steps):
            raise ValueError(f"TRAIN.LR_SCHEDULE.milestones must be steps (ints >= 0), got {milestones!r}")
        if not float(gamma) > 0:
            raise ValueError(f"TRAIN.LR_SCHEDULE.gamma must be > 0, got {gamma!r}")
        self.milestones, self.gamma = steps, float(gamma)

    def factor(self, step: int) -> float:
        return self.gamma ** sum(step >= s for s in self.milestones)


def build_lr_scheduler(optimizer: torch.optim.Optimizer, spec: dict,
                       max_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """``optimizer``'s scheduler for ``spec`` (``TRAIN.LR_SCHEDULE`` as a dict with ``type``).

    ``max_steps`` (``TRAIN.MAX_STEPS``) is the schedule's ``total_steps`` when it takes one
    and the spec does not give it. Unknown names and arguments raise :class:`RegistryError`
    naming ``TRAIN.LR_SCHEDULE``.
    """
    try:
        schedule = build(LR_SCHEDULES, dict(spec), total_steps=max_steps)
    except RegistryError as exc:
        raise RegistryError(f"TRAIN.LR_SCHEDULE: {exc}") from None
    if not callable(schedule):
        raise RegistryError(f"TRAIN.LR_SCHEDULE: LR schedule '{spec['type']}' built a {type(schedule).__name__}, "
                            "not a callable step -> factor")
    # A plain function, not the object itself: LambdaLR would store a callable object's
    # attributes in its state_dict and restore them over those the config gives on resume.
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule(step))
