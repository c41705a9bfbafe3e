"""Self-attention ConvLSTM: a ConvLSTM cell followed by a self-attention memory module.

Lin, Li, Liu, Zhu and Zha, "Self-Attention ConvLSTM for Spatiotemporal Prediction", AAAI
2020. Each step runs the plain :class:`~.convlstm.ConvLSTMCell` to get ``(H_t, c_t)``, then
the self-attention memory (SAM) lets every position look at every position of ``H_t`` and of
a memory ``M_{t-1}`` that the cell carries besides ``c`` (``*`` a convolution, ``o`` the
Hadamard product, attention over the ``N = H x W`` positions)::

    Z_h = attention(Q = W_q H_t, K = W_kh H_t,     V = W_vh H_t)
    Z_m = attention(Q = W_q H_t, K = W_km M_{t-1}, V = W_vm M_{t-1})
    Z   = W_z [Z_h; Z_m]
    i', g', o' = sigmoid, tanh, sigmoid of  W_m * [Z; H_t] + b_m
    M_t = (1 - i') o M_{t-1} + i' o g'
    h_t = o' o M_t                        (the state passed on in time and up the stack)

Queries and keys have ``attention_channels`` channels, values ``hidden`` channels; the
attention is softmax(Q^T K / sqrt(d)); public implementations of the paper leave out the ``1/sqrt(d)``.
Attention costs ``O((H W)^2)`` per step, so run it on downsampled feature maps.

Example:
    >>> stack = SAConvLSTM(8, [16, 16], kernel_size=3, return_all_layers=True)
    >>> outs, states = stack(torch.rand(2, 10, 8, 16, 16))  # outs: 2 x (2, 10, 16, 16, 16); states: (h, c, m)
    >>> net = SAConvLSTMForecaster(hidden_channels=(16, 16))  # drop-in for ConvLSTMForecaster
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from pyanomaly.registry import NETWORKS

from .convlstm import ConvLSTM, ConvLSTMCell
from .convlstm_forecaster import ConvLSTMForecaster

State = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (h, c, m)


class SelfAttentionMemory(nn.Module):
    """The SAM: ``(h, m)`` each ``(B, C, H, W)`` -> new ``(h, m)``; see the module docstring."""

    def __init__(self, channels: int, attention_channels: int, kernel_size: int = 1):
        super().__init__()
        c, d = int(channels), int(attention_channels)
        self.query = nn.Conv2d(c, d, 1)
        self.key_h, self.value_h = nn.Conv2d(c, d, 1), nn.Conv2d(c, c, 1)
        self.key_m, self.value_m = nn.Conv2d(c, d, 1), nn.Conv2d(c, c, 1)
        self.fuse = nn.Conv2d(2 * c, c, 1)
        self.gates = nn.Conv2d(2 * c, 3 * c, kernel_size, padding=kernel_size // 2)  # i', g', o'

    def forward(self, h: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, height, width = h.shape
        def tokens(x):  # (B, K, H, W) -> (B, N, K)
            return x.flatten(2).transpose(1, 2)
        q = tokens(self.query(h)) * self.query.out_channels ** -0.5
        # written out: on CPU scaled_dot_product_attention spends ~10% of a step checking for masks
        z_h = torch.softmax(q @ self.key_h(h).flatten(2), dim=-1) @ tokens(self.value_h(h))
        z_m = torch.softmax(q @ self.key_m(m).flatten(2), dim=-1) @ tokens(self.value_m(m))
        z = torch.cat([z_h, z_m], dim=2).transpose(1, 2).reshape(b, 2 * c, height, width)
        z = self.fuse(z)
        i, g, o = self.gates(torch.cat([z, h], dim=1)).chunk(3, dim=1)
        i = torch.sigmoid(i)
        m_next = (1 - i) * m + i * torch.tanh(g)
        return torch.sigmoid(o) * m_next, m_next


@NETWORKS.register_module()
class SAConvLSTMCell(nn.Module):
    """One SA-ConvLSTM layer, advanced one step per call: a :class:`ConvLSTMCell` + SAM.

    Args:
        input_channels, hidden_channels, kernel_size, bias, peephole: of the ConvLSTM cell.
        attention_channels: channels of queries and keys (default ``max(hidden // 4, 1)``).
        memory_kernel_size: odd kernel of the SAM's gate convolution (default 1: per position).

    ``forward(x, h=None, c=None, m=None) -> (h, c, m)``, all ``(B, hidden, H, W)`` (zeros
    when omitted); ``init_hidden(batch, (H, W)) -> (h, c, m)``.
    """

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: int | Sequence[int] = 3,
                 bias: bool = True, peephole: bool = False, attention_channels: int | None = None,
                 memory_kernel_size: int = 1):
        super().__init__()
        if memory_kernel_size < 1 or memory_kernel_size % 2 == 0:
            raise ValueError(f"SAConvLSTMCell memory_kernel_size must be odd, got {memory_kernel_size}")
        self.lstm = ConvLSTMCell(input_channels, hidden_channels, kernel_size, bias=bias, peephole=peephole)
        self.input_channels = self.lstm.input_channels
        self.hidden_channels = self.lstm.hidden_channels
        self.attention_channels = int(attention_channels or max(self.hidden_channels // 4, 1))
        self.memory = SelfAttentionMemory(self.hidden_channels, self.attention_channels, memory_kernel_size)

    def init_hidden(self, batch: int, spatial: Sequence[int]) -> State:
        h, c = self.lstm.init_hidden(batch, spatial)
        return h, c, torch.zeros_like(h)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None, c: torch.Tensor | None = None,
                m: torch.Tensor | None = None) -> State:
        if m is None:
            m = self.init_hidden(x.shape[0], x.shape[-2:])[2]
        h, c = self.lstm(x, h, c)
        h, m = self.memory(h, m)
        return h, c, m


@NETWORKS.register_module()
class SAConvLSTM(ConvLSTM):
    """Stacked :class:`SAConvLSTMCell` layers, with the sequence API of :class:`~.convlstm.ConvLSTM`.

    Args are those of ``ConvLSTM`` (``input_channels``, ``hidden_channels``, ``kernel_size``,
    ``step``, ``effective_step``, ``batch_first``, ``return_all_layers``, ``bias``,
    ``peephole``) plus ``attention_channels`` and ``memory_kernel_size`` of the cells. Inputs and
    outputs are as for ``ConvLSTM``, except that a layer's state is a triple ``(h, c, m)``.
    """

    state_names = ("h", "c", "m")

    def __init__(self, input_channels: int, hidden_channels: int | Sequence[int], kernel_size: int | Sequence = 3,
                 step: int = 1, effective_step: Sequence[int] = (1,), batch_first: bool = True,
                 return_all_layers: bool = False, bias: bool = True, peephole: bool = False,
                 attention_channels: int | None = None, memory_kernel_size: int = 1):
        nn.Module.__init__(self)  # ConvLSTM's own __init__ would build ConvLSTM cells
        self._init_stack(input_channels, hidden_channels, kernel_size, step, effective_step, batch_first,
                         return_all_layers,
                         lambda i, h, k: SAConvLSTMCell(i, h, k, bias=bias, peephole=peephole,
                                                        attention_channels=attention_channels,
                                                        memory_kernel_size=memory_kernel_size))


@NETWORKS.register_module()
class SAConvLSTMForecaster(ConvLSTMForecaster):
    """:class:`~.convlstm_forecaster.ConvLSTMForecaster` with SA-ConvLSTM stacks.

    Same arguments, input and output (history ``(B, T, C, H, W)`` -> next frame
    ``(B, C, H, W)``), plus ``attention_channels`` and ``memory_kernel_size`` of the cells, so
    it replaces ``ConvLSTMForecaster`` in any config (e.g. ``FramePredictor``'s network).
    """

    def __init__(self, in_channels: int = 1, hidden_channels: Sequence[int] = (32, 32), kernel_size: int = 3,
                 downsample: int = 2, base_channels: int = 16, skip: bool = True, peephole: bool = False,
                 attention_channels: int | None = None, memory_kernel_size: int = 1):
        super().__init__(in_channels, hidden_channels, kernel_size, downsample, base_channels, skip, peephole)
        hidden = [int(hidden_channels)] if isinstance(hidden_channels, int) else [int(h) for h in hidden_channels]
        feat = self.encoder.out_channels
        stack = dict(return_all_layers=True, peephole=peephole, attention_channels=attention_channels,
                     memory_kernel_size=memory_kernel_size)
        self.encoding_rnn = SAConvLSTM(feat, hidden, kernel_size, **stack)
        self.forecasting_rnn = SAConvLSTM(feat, hidden, kernel_size, **stack)
