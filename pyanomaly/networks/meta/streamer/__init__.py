"""STREAMER (Mounir et al., NeurIPS 2023) parts: image encoder/decoder, temporal encoding,
hierarchical prediction, event demarcation, layers and the growing stack."""
from .demarcation import AverageDemarcation, EventDemarcation, FixedDemarcation, build_demarcation
from .encoder import StreamerCNNDecoder, StreamerCNNEncoder
from .layer import StreamerLayer, prediction_loss
from .predictor import StreamerHierarchicalPrediction
from .settings import StreamerSettings
from .stack import StreamerStack
from .temporal import StreamerTemporalEncoding

__all__ = ["StreamerSettings", "StreamerCNNEncoder", "StreamerCNNDecoder", "StreamerTemporalEncoding",
           "StreamerHierarchicalPrediction", "EventDemarcation", "AverageDemarcation", "FixedDemarcation",
           "build_demarcation", "StreamerLayer", "StreamerStack", "prediction_loss"]
