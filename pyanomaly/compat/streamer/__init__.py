"""STREAMER's documented modules (``streamer.models.networks``, ``streamer.models.layer``).

Mounir, Vijayaraghavan and Sarkar, "STREAMER: Streaming Representation Learning and Event
Segmentation in a Hierarchical Manner", NeurIPS 2023. ``import pyanomaly.compat.streamer.networks``
stands for ``streamer.models.networks`` and ``...streamer.layer`` for ``streamer.models.layer``;
the modules compute with :mod:`pyanomaly.networks.meta.streamer`.

Example:
    >>> from pyanomaly.compat.streamer.networks import CNNEncoder, TemporalEncoding
    >>> te = TemporalEncoding(64, 8, 1e-3, encoder=CNNEncoder)
    >>> summary, attention = te(torch.rand(5, 3, 64, 64))    # (1, 64), None
"""
from .layer import StreamerLayer, StreamerLayerArguments
from .networks import CNNDecoder, CNNEncoder, HierarchicalPrediction, TemporalEncoding

__all__ = ["CNNEncoder", "CNNDecoder", "TemporalEncoding", "HierarchicalPrediction", "StreamerLayerArguments",
           "StreamerLayer"]
