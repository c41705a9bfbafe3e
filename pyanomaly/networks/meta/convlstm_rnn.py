"""A ConvLSTM with the interface of ``torch.nn.LSTM``: layers, dropout, two directions.

Shi, Chen, Wang, Yeung, Wong and Woo, "Convolutional LSTM Network: A Machine Learning
Approach for Precipitation Nowcasting", NeurIPS 2015, with the calling conventions of
``torch.nn.LSTM`` (arguments, ``(output, (h_n, c_n))``, layouts) plus the two spatial
dimensions. Every layer and direction is one :class:`~.convlstm.ConvLSTMCell`; with
``kernel_size=1`` on ``1 x 1`` maps it computes exactly what ``torch.nn.LSTM`` computes
(gate order i, f, g, o in both).

Shapes (``D`` = 2 if bidirectional else 1, ``L`` = ``num_layers``):

* ``input``: ``(T, B, C, H, W)``, or ``(B, T, C, H, W)`` with ``batch_first``, or unbatched
  ``(T, C, H, W)``;
* ``hx = (h_0, c_0)``: each ``(D * L, B, hidden, H, W)`` (unbatched: ``(D * L, hidden, H, W)``),
  zeros when omitted; never batch-first, as in ``torch.nn.LSTM``;
* ``output``: the last layer's ``h`` at every step, directions concatenated on channels:
  ``(T, B, D * hidden, H, W)`` (batch-first: ``(B, T, ...)``);
* ``h_n``, ``c_n``: final states, ``(D * L, B, hidden, H, W)``, row ``l * D + d`` for layer
  ``l`` and direction ``d`` (the backward direction's "final" state is the one after it has
  read the sequence from its end back to step 0).

Example:
    >>> rnn = ConvLSTMRNN(3, 8, num_layers=2, bidirectional=True, kernel_size=3)
    >>> out, (h_n, c_n) = rnn(torch.rand(5, 2, 3, 16, 16))   # out (5, 2, 16, 16, 16)
    >>> h_n.shape                                              # (4, 2, 8, 16, 16)
    >>> same = ConvLSTMRNN.from_lstm(torch.nn.LSTM(3, 8, num_layers=2))   # nn.LSTM's weights, kernel 1
"""
from __future__ import annotations

import warnings
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from pyanomaly.registry import NETWORKS

from .convlstm import ConvLSTMCell

State = tuple[torch.Tensor, torch.Tensor]


@NETWORKS.register_module()
class ConvLSTMRNN(nn.Module):
    """Multi-layer (optionally bidirectional) ConvLSTM over a sequence, ``nn.LSTM``-style.

    Args:
        input_size: channels ``C`` of the input.
        hidden_size: channels of ``h`` and ``c`` in every layer and direction.
        num_layers: stacked layers; layer ``l + 1`` reads layer ``l``'s output (both directions).
        bias: learn gate biases (the forget gate's start at 1, see :class:`ConvLSTMCell`).
        batch_first: input and output are ``(B, T, C, H, W)`` (``hx``, ``h_n``, ``c_n`` are not
            affected, as in ``torch.nn.LSTM``).
        dropout: dropout probability on the outputs of every layer but the last (training only).
        bidirectional: add a direction that reads the sequence backwards; outputs of both
            directions are concatenated on channels (forward first).
        kernel_size: odd int or ``(kh, kw)`` of the gate convolutions (1 = a per-pixel LSTM).

    Cells are ``self.cells[l * D + d]`` for layer ``l`` and direction ``d``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 kernel_size: int | Sequence[int] = 3):
        super().__init__()
        if int(num_layers) < 1 or int(hidden_size) < 1 or int(input_size) < 1:
            raise ValueError(f"ConvLSTMRNN needs input_size, hidden_size and num_layers >= 1, got "
                             f"{input_size}, {hidden_size}, {num_layers}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"ConvLSTMRNN dropout must be a probability in [0, 1], got {dropout}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"ConvLSTMRNN: dropout={dropout} acts between layers only, and num_layers=1",
                          stacklevel=2)
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        cells = []
        for layer in range(self.num_layers):
            inp = self.input_size if layer == 0 else self.hidden_size * self.num_directions
            cells += [ConvLSTMCell(inp, self.hidden_size, kernel_size, bias=bias) for _ in range(self.num_directions)]
        self.cells = nn.ModuleList(cells)
        self.kernel_size = self.cells[0].kernel_size

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM) -> "ConvLSTMRNN":
        """A ``kernel_size=1`` ConvLSTMRNN holding the weights of a ``torch.nn.LSTM``.

        On ``1 x 1`` maps (input ``(T, B, C, 1, 1)``) it computes what ``lstm`` computes on
        ``(T, B, C)``: each cell's gate convolution is ``[W_ih | W_hh]`` as a 1x1 kernel, its
        bias ``b_ih + b_hh`` (both use the gate order i, f, g, o). Layers, directions,
        ``batch_first``, ``dropout`` and ``bias`` are copied; the module is on ``lstm``'s
        device and dtype and its weights are copies (training one leaves the other as it was).
        LSTMs with ``proj_size > 0`` have no ConvLSTM counterpart and are refused.
        """
        if not isinstance(lstm, nn.LSTM):
            raise TypeError(f"ConvLSTMRNN.from_lstm expects a torch.nn.LSTM, got {type(lstm).__name__}")
        if lstm.proj_size:
            raise ValueError(f"ConvLSTMRNN.from_lstm: an LSTM with proj_size={lstm.proj_size} has projected hidden "
                             "states, which ConvLSTMRNN does not have")
        rnn = cls(lstm.input_size, lstm.hidden_size, num_layers=lstm.num_layers, bias=lstm.bias,
                  batch_first=lstm.batch_first, dropout=lstm.dropout, bidirectional=lstm.bidirectional,
                  kernel_size=1)
        weight = lstm.weight_ih_l0
        rnn.to(device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            for layer in range(rnn.num_layers):
                for d in range(rnn.num_directions):
                    suffix = f"l{layer}" + ("_reverse" if d else "")
                    conv = rnn.cells[layer * rnn.num_directions + d].conv
                    w = torch.cat([getattr(lstm, f"weight_ih_{suffix}"), getattr(lstm, f"weight_hh_{suffix}")], dim=1)
                    conv.weight.copy_(w[:, :, None, None])
                    if lstm.bias:
                        conv.bias.copy_(getattr(lstm, f"bias_ih_{suffix}") + getattr(lstm, f"bias_hh_{suffix}"))
        rnn.train(lstm.training)
        return rnn

    def _initial_state(self, hx, batch: int, spatial: Sequence[int], unbatched: bool) -> State:
        rows = self.num_layers * self.num_directions
        if hx is None:
            zeros = self.cells[0].init_hidden(batch, spatial)[0]
            zeros = zeros.unsqueeze(0).expand(rows, -1, -1, -1, -1)
            return zeros, zeros
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError("ConvLSTMRNN hx must be a pair (h_0, c_0)")
        h0, c0 = hx
        if unbatched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        expected = (rows, batch, self.hidden_size, *spatial)
        for name, t in (("h_0", h0), ("c_0", c0)):
            if tuple(t.shape) != expected:
                raise ValueError(f"ConvLSTMRNN {name} must have shape {expected} "
                                 f"(num_layers * num_directions, batch, hidden, H, W), got {tuple(t.shape)}")
        return h0, c0

    def forward(self, input: torch.Tensor, hx: State | None = None) -> tuple[torch.Tensor, State]:
        """See the module docstring for shapes; returns ``(output, (h_n, c_n))``."""
        unbatched = input.dim() == 4
        if unbatched:
            input = input.unsqueeze(1)  # (T, 1, C, H, W); batch_first does not apply, as in torch
        elif input.dim() != 5:
            raise ValueError(f"ConvLSTMRNN expects a 5-D (T, B, C, H, W) input (batch-first (B, T, ...)) or "
                             f"an unbatched 4-D (T, C, H, W) one, got shape {tuple(input.shape)}")
        elif self.batch_first:
            input = input.transpose(0, 1)
        if input.shape[2] != self.input_size:
            raise ValueError(f"ConvLSTMRNN expects {self.input_size} input channels, got {input.shape[2]}")
        steps, batch = input.shape[:2]
        h0, c0 = self._initial_state(hx, batch, input.shape[-2:], unbatched)
        layer_input = list(input.unbind(0))
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            per_direction = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                cell, h, c = self.cells[k], h0[k], c0[k]
                order = range(steps) if d == 0 else range(steps - 1, -1, -1)
                outs: list[torch.Tensor | None] = [None] * steps
                for t in order:
                    h, c = cell(layer_input[t], h, c)
                    outs[t] = h
                per_direction.append(outs)
                h_n.append(h)
                c_n.append(c)
            layer_input = [torch.cat(hs, dim=1) if len(hs) > 1 else hs[0] for hs in zip(*per_direction)]
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = [F.dropout(x, self.dropout, training=True) for x in layer_input]
        output = torch.stack(layer_input, dim=0)
        h_n, c_n = torch.stack(h_n), torch.stack(c_n)
        if unbatched:
            return output.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, (h_n, c_n)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, kernel_size={self.kernel_size}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s
