"""Meta parts: networks built from plain keyword arguments, registered in ``NETWORKS``.

Their inference fast path's switches: :mod:`pyanomaly.networks.fast` (re-exported here).
"""
from pyanomaly.networks.fast import FastPath, set_fast_path

from .activations import batch_flatten, get_activation, hard_sigmoid
from .conv_ae import ConvAE
from .convlstm import ConvLSTM, ConvLSTMCell
from .convlstm_forecaster import ConvLSTMForecaster
from .convlstm_rnn import ConvLSTMRNN
from .memae import MemAE
from .memory import Memory
from .pcn import ErrorRefinementModule, PredictiveCodingModule
from .prednet import PredNet, PredNetState
from .sa_convlstm import SAConvLSTM, SAConvLSTMCell, SAConvLSTMForecaster
from .streamer import (StreamerCNNDecoder, StreamerCNNEncoder, StreamerHierarchicalPrediction, StreamerSettings,
                       StreamerStack, StreamerTemporalEncoding)
from .unet import UNet

__all__ = ["PredNet", "PredNetState", "ConvLSTMCell", "ConvLSTM", "ConvLSTMForecaster", "PredictiveCodingModule",
           "ErrorRefinementModule", "ConvLSTMRNN", "SAConvLSTMCell", "SAConvLSTM",
           "SAConvLSTMForecaster", "UNet", "ConvAE", "Memory", "MemAE",
           "StreamerCNNEncoder", "StreamerCNNDecoder", "StreamerTemporalEncoding",
           "StreamerHierarchicalPrediction", "StreamerSettings", "StreamerStack", "hard_sigmoid", "get_activation",
           "batch_flatten", "FastPath", "set_fast_path"]
