"""The small pre-norm transformer encoder that STREAMER's modules are made of.

Written out (attention as a plain softmax of scaled dot products) rather than taken from
``nn.TransformerEncoder``, whose inference fast path computes differently with and without
gradients; STREAMER runs the same modules both ways within one stream, and an exact resume
needs one arithmetic.

Example:
    >>> enc = SequenceTransformer(dim=32, n_heads=4, num_layers=2)
    >>> enc(torch.rand(1, 7, 32)).shape
    torch.Size([1, 7, 32])
"""
from __future__ import annotations

import math

import torch
from torch import nn


class TransformerBlock(nn.Module):
    """Pre-norm self-attention + MLP block on ``(B, S, dim)``, dropout-free.

    With ``keep_attention`` set, each call leaves its attention weights, detached, in
    ``attention`` ``(B, n_heads, S, S)`` (for inspection; off by default).
    """

    keep_attention: bool = False

    def __init__(self, dim: int, n_heads: int, mlp_ratio: int = 2):
        super().__init__()
        self.attention: torch.Tensor | None = None
        if dim % n_heads:
            raise ValueError(f"transformer width {dim} must be divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(self.norm1(x)).view(b, s, 3, h, d // h).permute(2, 0, 3, 1, 4)  # each (B, h, S, d/h)
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // h), dim=-1)
        if self.keep_attention:
            self.attention = attn.detach()
        x = x + self.out((attn @ v).transpose(1, 2).reshape(b, s, d))
        return x + self.mlp(self.norm2(x))


class SequenceTransformer(nn.Module):
    """``num_layers`` :class:`TransformerBlock` s and a final LayerNorm: ``(B, S, dim)`` -> ``(B, S, dim)``."""

    def __init__(self, dim: int, n_heads: int = 4, num_layers: int = 2):
        super().__init__()
        self.blocks = nn.ModuleList(TransformerBlock(dim, n_heads) for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
