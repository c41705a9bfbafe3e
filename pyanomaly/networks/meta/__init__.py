"""Meta parts: networks built from plain keyword arguments, registered in ``NETWORKS``."""
from .activations import batch_flatten, get_activation, hard_sigmoid
from .convlstm import ConvLSTM, ConvLSTMCell
from .convlstm_forecaster import ConvLSTMForecaster
from . import convlstm_rnn, sa_convlstm  # noqa: F401  registers ConvLSTMRNN and the SAConvLSTM parts
from .pcn import ErrorRefinementModule, PredictiveCodingModule
from .prednet import PredNet

__all__ = ["PredNet", "ConvLSTMCell", "ConvLSTM", "ConvLSTMForecaster", "PredictiveCodingModule",
           "ErrorRefinementModule", "hard_sigmoid", "get_activation", "batch_flatten"]
