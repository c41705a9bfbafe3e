"""STREAMER's ``streamer.models.networks``: CNN encoder/decoder, temporal encoding, hierarchical prediction.

Mounir, Vijayaraghavan and Sarkar, "STREAMER: Streaming Representation Learning and Event
Segmentation in a Hierarchical Manner", NeurIPS 2023. The documented classes, with their
signatures: each learning module owns an Adam optimiser at its own learning rate ``lr``
and offers ``get_params()``, ``step_params()`` and ``zero_params()``; ``encoder`` and
``decoder`` are classes (instantiated with ``feature_dim``) or modules. The computation is
that of :mod:`pyanomaly.networks.meta.streamer` (these classes extend ours).

Example:
    >>> te = TemporalEncoding(64, 8, 1e-3, encoder=CNNEncoder)
    >>> hp = HierarchicalPrediction(64, 3, 1e-3, 0, decoder=CNNDecoder)
    >>> summary, _ = te(torch.rand(5, 3, 64, 64))     # (1, 64)
    >>> hp(summary).shape                              # the next frame
    torch.Size([1, 3, 64, 64])
"""
from __future__ import annotations

import torch
from torch import nn

from pyanomaly.networks.meta.streamer import (StreamerCNNDecoder, StreamerCNNEncoder, StreamerHierarchicalPrediction,
                                              StreamerTemporalEncoding)
from pyanomaly.registry import NETWORKS, build

__all__ = ["CNNEncoder", "CNNDecoder", "TemporalEncoding", "HierarchicalPrediction"]


class CNNEncoder(StreamerCNNEncoder):
    """Images ``(N, 3, H, W)`` -> feature vectors ``(N, feature_dim)`` (four stride-2 convolutions).

    ``channels``, ``width`` and ``grid`` are those of :class:`StreamerCNNEncoder`; the
    documented call gives RGB input.
    """

    def __init__(self, feature_dim: int, channels: int = 3, width: int = 16, grid: int = 4):
        super().__init__(feature_dim, channels=channels, width=width, grid=grid)


class CNNDecoder(StreamerCNNDecoder):
    """Feature vectors ``(N, feature_dim)`` -> images ``(N, 3, 16 grid, 16 grid)`` in [0, 1] (64x64 by default).

    ``forward(z, size=None)``: ``size`` resizes to another ``(H, W)``.
    """

    def __init__(self, feature_dim: int, channels: int = 3, width: int = 16, grid: int = 4):
        super().__init__(feature_dim, channels=channels, width=width, grid=grid)


def _part(part, feature_dim: int) -> nn.Module | None:
    """An encoder/decoder given as a class (built with ``feature_dim``), a module, or a network dict."""
    if part is None or isinstance(part, nn.Module):
        return part
    if isinstance(part, dict):
        return build(NETWORKS, part)
    if callable(part):
        return part(feature_dim)
    raise TypeError(f"expected an nn.Module class, an nn.Module or a network dict, got {part!r}")


class _OwnOptimizer:
    """A module that steps itself: its own Adam at learning rate ``lr`` over all its parameters."""

    def _make_optimizer(self, lr: float) -> None:
        self.lr = float(lr)
        self.optimizer = torch.optim.Adam(self.get_params(), lr=self.lr)

    def get_params(self) -> list[torch.Tensor]:
        """The parameters of this module (with its encoder or decoder)."""
        return list(self.parameters())

    def step_params(self) -> None:
        """One optimiser step on the gradients the parameters hold."""
        self.optimizer.step()

    def zero_params(self) -> None:
        """Clear the parameters' gradients."""
        self.optimizer.zero_grad(set_to_none=True)

    def _keep_attention(self, patch: bool) -> None:
        self.patch = bool(patch)
        for block in self.transformer.blocks:
            block.keep_attention = self.patch

    @property
    def attention(self) -> list[torch.Tensor | None]:
        """With ``patch``: the attention weights of the last call, one ``(1, n_heads, S, S)`` per transformer layer."""
        return [block.attention for block in self.transformer.blocks]


class TemporalEncoding(_OwnOptimizer, StreamerTemporalEncoding):
    """A sequence ``[S, feature_dim]`` of features or ``[S, 3, H, W]`` of images -> summary ``[1, feature_dim]``.

    Args:
        feature_dim: size of the features and of the summary.
        buffer_size: longest sequence (length of the positional encoding).
        lr: learning rate of this module's optimiser.
        n_heads, num_layers: attention heads and transformer layers.
        encoder: image encoder (class, module or network dict); None for feature input.
        patch: keep the transformer's attention weights in :attr:`attention`.

    ``forward(x)`` returns ``(summary, encoder_attention)``: the second is what an encoder
    returning ``(features, attention)`` gave, else None (no encoder, or :class:`CNNEncoder`).
    """

    def __init__(self, feature_dim: int, buffer_size: int, lr: float, n_heads: int = 4, num_layers: int = 2,
                 encoder=None, patch: bool = False):
        super().__init__(feature_dim, buffer_size, n_heads, num_layers, encoder=None)
        self.encoder = _part(encoder, feature_dim)
        self._encoder_attention = None
        self._keep_attention(patch)
        self._make_optimizer(lr)

    def encode_inputs(self, x: torch.Tensor) -> torch.Tensor:
        self._encoder_attention = None
        out = super().encode_inputs(x)
        if isinstance(out, tuple):  # an encoder that also reports its attention
            out, self._encoder_attention = out
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        summary = super().forward(x)
        return summary, self._encoder_attention


class HierarchicalPrediction(_OwnOptimizer, StreamerHierarchicalPrediction):
    """Representations ``[S, feature_dim]`` of layers ``layer_num ..`` -> prediction ``[1, feature_dim]``.

    With a decoder the prediction is decoded, e.g. into an image ``[1, 3, H, W]``.

    Args:
        feature_dim: size of the representations.
        max_layers: most layers of the stack.
        lr: learning rate of this module's optimiser.
        layer_num: the layer this module predicts for.
        n_heads, num_layers: attention heads and transformer layers.
        decoder: decoder (class, module or network dict) called on the ``[1, feature_dim]``
            prediction; None: the prediction is the feature vector.
        patch: keep the transformer's attention weights in :attr:`attention`.
    """

    def __init__(self, feature_dim: int, max_layers: int, lr: float, layer_num: int, n_heads: int = 4,
                 num_layers: int = 2, decoder=None, patch: bool = False):
        super().__init__(feature_dim, max_layers, layer_num, n_heads, num_layers, decoder=None)
        self.decoder = _part(decoder, feature_dim)
        self._keep_attention(patch)
        self._make_optimizer(lr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.features(x)
        return z if self.decoder is None else self.decoder(z)
