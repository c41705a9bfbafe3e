"""The memory module of MemAE (Gong et al., "Memorizing Normality to Detect Anomaly", ICCV 2019).

``N`` learned slots of dimension ``D`` hold prototypes of normal codes. A code ``z`` (``D``)
is replaced by a combination of slots: its addressing weights are the softmax over the slots
of the cosine similarity between ``z`` and each slot; weights below ``threshold`` are cut by
the hard shrinkage ``relu(w - λ) * w / (|w - λ| + ε)`` (a continuous form, so gradients flow)
and the rest renormalised to sum to 1 (L1; a code whose weights are all below ``λ``, which
happens only when its similarities are nearly equal, keeps them unshrunk); the read is ``weights @ slots``. An anomalous
code is thus rebuilt from normal prototypes, and its reconstruction error grows. Training
adds the mean entropy of the weights (weight 0.0002 in the paper) to keep them sparse.

On a feature map ``(B, D, h, w)`` each location is addressed on its own (the paper's video
model does the same on its 3D feature maps).

The similarities are divided by a temperature (0.1) before the softmax: a cosine is bounded,
and over 2000 slots a softmax of raw cosines is nearly uniform, too flat for the threshold
to leave any weight (see ``temperature``). The paper's released code addresses by the dot
product of the unnormalised code and slots, whose scale plays that part.

Example:
    >>> memory = Memory(slots=2000, dim=64, threshold=0.0025, temperature=0.1)
    >>> read, weights = memory(torch.rand(2, 64, 8, 8))   # (2, 64, 8, 8), (2, 2000, 8, 8)
    >>> entropy = Memory.entropy(weights)                 # scalar, mean over locations
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pyanomaly.registry import NETWORKS


def hard_shrink(weights: torch.Tensor, threshold: float, eps: float = 1e-12) -> torch.Tensor:
    """``relu(w - λ) * w / (|w - λ| + ε)``: 0 below ``λ``, about ``w`` above (for ``w >= 0``)."""
    return F.relu(weights - threshold) * weights / ((weights - threshold).abs() + eps)


@NETWORKS.register_module()
class Memory(nn.Module):
    """Codes ``(B, D, h, w)`` (or ``(M, D)``) -> (read ``(B, D, h, w)``, addressing weights ``(B, N, h, w)``).

    Args:
        slots: ``N``, memory items.
        dim: ``D``, their dimension (the code's channels).
        threshold: ``λ`` of the hard shrinkage; 0 = none. The paper takes ``λ`` in ``[1/N, 3/N]``;
            its code 0.0025 with ``N`` = 2000.
        temperature: the cosine similarities are divided by it before the softmax (the paper's
            formula is temperature 1). A cosine lies in [-1, 1], so at temperature ``τ`` no
            weight exceeds ``e^(2/τ) / (e^(2/τ) + N - 1)``: 0.0037 for 2000 slots at 1, where
            the threshold 0.0025 cuts every weight of nearly every code (and the memory reads a
            dense average: measured on the generated scene, all codes after 60 steps); at 0.1
            the addressing can peak and the shrinkage keeps a few slots (a median of 12 there).
    """

    def __init__(self, slots: int = 2000, dim: int = 64, threshold: float = 0.0025, temperature: float = 0.1):
        super().__init__()
        if int(slots) < 1 or int(dim) < 1 or not 0.0 <= float(threshold) < 1.0 or float(temperature) <= 0:
            raise ValueError(f"Memory needs slots >= 1, dim >= 1, threshold in [0, 1) and temperature > 0, got "
                             f"{slots}, {dim}, {threshold}, {temperature}")
        self.slots, self.dim, self.threshold = int(slots), int(dim), float(threshold)
        self.temperature = float(temperature)
        bound = 1.0 / math.sqrt(self.dim)
        self.items = nn.Parameter(torch.empty(self.slots, self.dim).uniform_(-bound, bound))

    def address(self, codes: torch.Tensor) -> torch.Tensor:
        """Addressing weights of codes ``(M, D)``: ``(M, N)``, each row sparse and summing to 1."""
        similarity = F.normalize(codes, dim=1) @ F.normalize(self.items, dim=1).t()
        weights = (similarity / self.temperature).softmax(dim=1)
        if self.threshold > 0:
            shrunk = hard_shrink(weights, self.threshold)
            # a code with every weight under the threshold (equal similarities: a zero code) keeps them all
            kept = shrunk.sum(dim=1, keepdim=True) > 0
            weights = F.normalize(torch.where(kept, shrunk, weights), p=1, dim=1)
        return weights

    def forward(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if codes.dim() not in (2, 4) or codes.shape[1] != self.dim:
            raise ValueError(f"Memory expects codes (M, {self.dim}) or (B, {self.dim}, h, w), got "
                             f"{tuple(codes.shape)}")
        if codes.dim() == 2:
            weights = self.address(codes)
            return weights @ self.items, weights
        b, d, h, w = codes.shape
        flat = codes.permute(0, 2, 3, 1).reshape(-1, d)  # one code per location
        weights = self.address(flat)
        read = (weights @ self.items).reshape(b, h, w, d).permute(0, 3, 1, 2)
        return read, weights.reshape(b, h, w, self.slots).permute(0, 3, 1, 2)

    @staticmethod
    def entropy(weights: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """Mean over codes of the entropy ``-sum w log w`` of their addressing weights (the slots
        along ``dim``): the sparsity loss of MemAE."""
        return -(weights * torch.log(weights + 1e-12)).sum(dim=dim).mean()
