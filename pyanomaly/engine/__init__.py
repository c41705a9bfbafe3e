"""Engine: the trainer, its hooks, checkpoints, and the train/test entry points."""
from .hooks import HookBase
from .trainer import Trainer

__all__ = ["HookBase", "Trainer"]
