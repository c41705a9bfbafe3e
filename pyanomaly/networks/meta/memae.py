"""MemAE: a convolutional autoencoder whose code is read from a memory of normal prototypes.

Gong et al., "Memorizing Normality to Detect Anomaly: Memory-augmented Deep Autoencoder for
Unsupervised Anomaly Detection" (ICCV 2019): the encoder's code is not decoded as it is but
replaced, location by location, by a sparse combination of learned memory slots
(:class:`~pyanomaly.networks.meta.memory.Memory`), so that even an anomalous input is
reconstructed from normal patterns and its reconstruction error stays large. Here the
encoder and decoder are those of :class:`~pyanomaly.networks.meta.conv_ae.ConvAE` (2D
convolutions over the stacked window, where the paper used 3D convolutions).

The addressing weights of the last forward pass are kept in :attr:`MemAE.weights` so that
a method can add their entropy to its loss (:meth:`Memory.entropy`).

Example:
    >>> net = MemAE(in_channels=1, frames=4, base_channels=16, depth=3, slots=2000)
    >>> out = net(torch.rand(2, 4, 1, 64, 64))      # (2, 4, 1, 64, 64)
    >>> loss = F.mse_loss(out, x) + 0.0002 * Memory.entropy(net.weights)
"""
from __future__ import annotations

import torch

from pyanomaly.registry import NETWORKS

from .conv_ae import ConvAE
from .memory import Memory


@NETWORKS.register_module()
class MemAE(ConvAE):
    """A window ``(B, T, C, H, W)`` -> its reconstruction through the memory ``(B, T, C, H, W)``.

    Args:
        in_channels, frames, base_channels, depth, latent_channels, activation, batch_norm:
            as :class:`~pyanomaly.networks.meta.conv_ae.ConvAE`.
        slots: memory items ``N`` (the paper: 2000).
        threshold: hard-shrinkage threshold ``λ`` of the addressing weights (the paper: 0.0025).
        temperature: of the softmax over cosine similarities (:class:`~pyanomaly.networks.meta.memory.Memory`).

    ``weights``: the addressing weights of the last forward pass ``(B, N, h, w)`` (``None`` before).
    """

    def __init__(self, in_channels: int = 1, frames: int = 4, base_channels: int = 32, depth: int = 3,
                 latent_channels: int | None = None, activation: str = "sigmoid", batch_norm: bool = True,
                 slots: int = 2000, threshold: float = 0.0025, temperature: float = 0.1):
        super().__init__(in_channels, frames, base_channels, depth, latent_channels, activation, batch_norm)
        self.memory = Memory(slots, self.latent_channels, threshold, temperature)
        self.weights: torch.Tensor | None = None

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        read, self.weights = self.memory(self.encode(window))
        return self.decode(read)
