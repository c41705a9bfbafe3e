"""STREAMER's hierarchical prediction: the layers' representations -> the layer's next input.

Mounir, Vijayaraghavan and Sarkar, "STREAMER: Streaming Representation Learning and Event
Segmentation in a Hierarchical Manner", NeurIPS 2023. Layer ``l`` predicts its next input
from its own representation (the summary of its current event) and, as context, the
representations of the layers above it: a slow layer says which event is going on, which
helps the fast layer below guess what comes next. Each representation gets a learned
embedding of its layer; after a small transformer, the output at layer ``l``'s position is
projected to the prediction, and at the base layer decoded into an image by a registered
decoder (e.g. :class:`~.encoder.StreamerCNNDecoder`).

Example:
    >>> hp = StreamerHierarchicalPrediction(feature_dim=32, max_layers=3,
    ...                                     decoder=dict(type="StreamerCNNDecoder", feature_dim=32))
    >>> hp(torch.rand(2, 32), size=(32, 32)).shape   # layers 0 and 1 -> next frame
    torch.Size([1, 1, 32, 32])
"""
from __future__ import annotations

import torch
from torch import nn

from pyanomaly.registry import NETWORKS, build

from .transformer import SequenceTransformer


@NETWORKS.register_module()
class StreamerHierarchicalPrediction(nn.Module):
    """Representations ``(S, D)`` of layers ``layer_num .. layer_num + S - 1`` -> next input.

    Returns ``(1, D)``, or ``(1, C, H, W)`` in [0, 1] with a decoder.

    Args:
        feature_dim: size ``D`` of the representations.
        max_layers: most layers of the stack (size of the layer embedding).
        layer_num: the layer this module predicts for (row 0 of the input).
        n_heads: attention heads.
        num_layers: transformer layers.
        decoder: registered decoder (dict with ``type``) mapping ``(1, D)`` to an image, called
            with ``size``; ``None``: the prediction is a feature vector.
    """

    def __init__(self, feature_dim: int, max_layers: int, layer_num: int = 0, n_heads: int = 4,
                 num_layers: int = 2, decoder: dict | None = None):
        super().__init__()
        if not 0 <= layer_num < max_layers:
            raise ValueError(f"layer_num must be in [0, max_layers={max_layers}), got {layer_num}")
        self.feature_dim, self.max_layers, self.layer_num = feature_dim, max_layers, layer_num
        self.layer_embedding = nn.Parameter(torch.randn(1, max_layers, feature_dim) * 0.02)
        self.transformer = SequenceTransformer(feature_dim, n_heads, num_layers)
        self.head = nn.Linear(feature_dim, feature_dim)
        self.decoder = build(NETWORKS, decoder) if decoder is not None else None

    def forward(self, reps: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        z = self.features(reps)
        if self.decoder is None:
            return z
        return self.decoder(z, size=size)

    def features(self, reps: torch.Tensor) -> torch.Tensor:
        """The predicted next input as a feature vector ``(1, D)``, before any decoder."""
        s = reps.shape[0]
        if reps.dim() != 2 or reps.shape[1] != self.feature_dim or not 1 <= s <= self.max_layers - self.layer_num:
            raise ValueError(f"StreamerHierarchicalPrediction of layer {self.layer_num} expects "
                             f"(S, {self.feature_dim}) with 1 <= S <= {self.max_layers - self.layer_num}, "
                             f"got {tuple(reps.shape)}")
        x = reps.unsqueeze(0) + self.layer_embedding[:, self.layer_num:self.layer_num + s]
        return self.head(self.transformer(x)[:, 0])
