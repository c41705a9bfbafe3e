"""Meta parts: networks built from plain keyword arguments, registered in ``NETWORKS``."""
from .activations import batch_flatten, get_activation, hard_sigmoid
from .prednet import PredNet

__all__ = ["PredNet", "hard_sigmoid", "get_activation", "batch_flatten"]
