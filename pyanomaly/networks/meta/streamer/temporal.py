"""STREAMER's temporal encoding: a buffer of inputs -> one summary vector.

Mounir, Vijayaraghavan and Sarkar, "STREAMER: Streaming Representation Learning and Event
Segmentation in a Hierarchical Manner", NeurIPS 2023. Each layer keeps the inputs of its
current event in a buffer; this module summarises the buffer into the layer's representation.
At the base layer the inputs are images, first encoded by an image encoder (a registered
network, e.g. :class:`~.encoder.StreamerCNNEncoder`); above, they are the summaries of the
layer below.

A learned summary token is put in front of the buffer, a learned positional encoding is added
to the buffer's positions, and the token's output after a small transformer is the summary.

Example:
    >>> te = StreamerTemporalEncoding(feature_dim=32, buffer_size=8,
    ...                               encoder=dict(type="StreamerCNNEncoder", feature_dim=32))
    >>> te(torch.rand(5, 1, 32, 32)).shape          # 5 frames -> one summary
    torch.Size([1, 32])
"""
from __future__ import annotations

import torch
from torch import nn

from pyanomaly.registry import NETWORKS, build

from .transformer import SequenceTransformer


@NETWORKS.register_module()
class StreamerTemporalEncoding(nn.Module):
    """Sequence ``(S, D)`` of features or ``(S, C, H, W)`` of images -> summary ``(1, D)``.

    Args:
        feature_dim: size ``D`` of the features and of the summary.
        buffer_size: longest sequence ``S`` (length of the positional encoding).
        n_heads: attention heads.
        num_layers: transformer layers.
        encoder: registered image encoder (dict with ``type``) mapping ``(S, C, H, W)`` to
            ``(S, D)``; ``None`` when the inputs are feature vectors already.
    """

    def __init__(self, feature_dim: int, buffer_size: int, n_heads: int = 4, num_layers: int = 2,
                 encoder: dict | None = None):
        super().__init__()
        self.feature_dim, self.buffer_size = feature_dim, buffer_size
        self.encoder = build(NETWORKS, encoder) if encoder is not None else None
        self.summary_token = nn.Parameter(torch.zeros(1, 1, feature_dim))
        self.position = nn.Parameter(torch.randn(1, buffer_size, feature_dim) * 0.02)
        self.transformer = SequenceTransformer(feature_dim, n_heads, num_layers)

    def encode_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs ``(S, ...)`` -> features ``(S, D)`` (through the image encoder if there is one)."""
        if self.encoder is not None:
            return self.encoder(x)
        if x.dim() != 2 or x.shape[1] != self.feature_dim:
            raise ValueError(f"StreamerTemporalEncoding without an encoder expects (S, {self.feature_dim}) "
                             f"features, got {tuple(x.shape)}")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.shape[0]
        if not 1 <= s <= self.buffer_size:
            raise ValueError(f"StreamerTemporalEncoding takes 1 to {self.buffer_size} inputs (buffer_size), got {s}")
        feats = self.encode_inputs(x).unsqueeze(0) + self.position[:, :s]
        tokens = torch.cat([self.summary_token, feats], dim=1)
        return self.transformer(tokens)[:, 0]
