"""Convolutional LSTM: an LSTM whose gates are convolutions over feature maps.

Shi, Chen, Wang, Yeung, Wong and Woo, "Convolutional LSTM Network: A Machine Learning
Approach for Precipitation Nowcasting", NeurIPS 2015. With ``*`` a convolution and ``o``
the Hadamard product::

    i = sigmoid(W_xi * x + W_hi * h + w_ci o c_prev + b_i)
    f = sigmoid(W_xf * x + W_hf * h + w_cf o c_prev + b_f)
    c = f o c_prev + i o tanh(W_xc * x + W_hc * h + b_c)
    o = sigmoid(W_xo * x + W_ho * h + w_co o c + b_o)
    h = o o tanh(c)

The ``w_c*`` peephole terms are optional. The four gate convolutions of a layer are one
convolution of ``[x, h]`` with ``4 * hidden`` outputs ("same" padding, so ``H, W`` are kept).

Example:
    >>> lstm = ConvLSTM(1, [16, 16], kernel_size=3)
    >>> out, (h, c) = lstm(torch.rand(2, 10, 1, 32, 32))    # out: (2, 10, 16, 32, 32)
    >>> more, state = ConvLSTM(1, 16, 3, return_all_layers=True)(torch.rand(2, 4, 1, 32, 32))
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from pyanomaly.networks.fast import FastPath
from pyanomaly.networks.fast import ops as fast
from pyanomaly.networks.fast.lstm import lstm_update
from pyanomaly.registry import NETWORKS

State = tuple[torch.Tensor, torch.Tensor]


def _pair(k: int | Sequence[int]) -> tuple[int, int]:
    k = (int(k), int(k)) if isinstance(k, int) else tuple(int(v) for v in k)
    if len(k) != 2 or any(v < 1 or v % 2 == 0 for v in k):
        # an even kernel cannot be padded symmetrically, so H, W would change
        raise ValueError(f"ConvLSTM kernel_size must be an odd int or an (odd, odd) pair, got {k}")
    return k


@NETWORKS.register_module()
class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer, advanced one time step per call.

    Args:
        input_channels: channels ``C`` of the input ``x``.
        hidden_channels: channels of ``h`` and ``c``.
        kernel_size: odd int or ``(kh, kw)`` of the gate convolution.
        bias: learn gate biases (the forget gate's starts at 1 so memory is kept early on).
        peephole: add Shi et al.'s peephole terms, one learned weight per channel
            (``(1, hidden, 1, 1)``, so any ``H, W`` works), initialised to 0.

    ``fast_path``: which parts of the inference fast path run without grad (see
    :func:`pyanomaly.networks.fast.set_fast_path`).
    """

    fast_path: FastPath = FastPath()

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: int | Sequence[int],
                 bias: bool = True, peephole: bool = False):
        super().__init__()
        self.input_channels = int(input_channels)
        self.hidden_channels = int(hidden_channels)
        self.kernel_size = _pair(kernel_size)
        self.peephole = bool(peephole)
        padding = (self.kernel_size[0] // 2, self.kernel_size[1] // 2)
        # gates in the order i, f, g (candidate), o along the output channels
        self.conv = nn.Conv2d(self.input_channels + self.hidden_channels, 4 * self.hidden_channels,
                              self.kernel_size, padding=padding, bias=bias)
        if bias:
            with torch.no_grad():
                self.conv.bias.zero_()
                self.conv.bias[self.hidden_channels:2 * self.hidden_channels].fill_(1.0)
        if self.peephole:
            shape = (1, self.hidden_channels, 1, 1)
            self.w_ci = nn.Parameter(torch.zeros(shape))
            self.w_cf = nn.Parameter(torch.zeros(shape))
            self.w_co = nn.Parameter(torch.zeros(shape))

    def init_hidden(self, batch: int, spatial: Sequence[int]) -> State:
        """Zero ``(h, c)``, each ``(batch, hidden, H, W)``, on the weights' device and dtype."""
        h, w = spatial
        weight = self.conv.weight
        zeros = torch.zeros(batch, self.hidden_channels, h, w, device=weight.device, dtype=weight.dtype)
        return zeros, zeros.clone()

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None, c: torch.Tensor | None = None) -> State:
        """One step.

        Args:
            x: input ``(B, C, H, W)``.
            h, c: previous state, each ``(B, hidden, H, W)``; zeros when None.

        Returns:
            ``(h, c)``, the new state, each ``(B, hidden, H, W)``.
        """
        if x.dim() != 4 or x.shape[1] != self.input_channels:
            raise ValueError(f"ConvLSTMCell expects x of shape (B, {self.input_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        dtype = fast.compute_dtype(self.conv.weight, self.fast_path)
        if dtype is not None:  # no grad: the optimised step (equal within float tolerance)
            return self._fast_step(x, h, c, dtype)
        if h is None or c is None:
            h0, c0 = self.init_hidden(x.shape[0], x.shape[-2:])
            h = h0 if h is None else h
            c = c0 if c is None else c
        gates = self.conv(torch.cat([x, h], dim=1))
        i, f, g, o = gates.chunk(4, dim=1)
        if self.peephole:
            # input and forget gates look at the old cell, the output gate at the new one
            i = i + self.w_ci * c
            f = f + self.w_cf * c
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        if self.peephole:
            o = o + self.w_co * c_next
        h_next = torch.sigmoid(o) * torch.tanh(c_next)
        return h_next, c_next

    def _fast_step(self, x: torch.Tensor, h: torch.Tensor | None, c: torch.Tensor | None,
                   dtype: torch.dtype) -> State:
        """:meth:`forward` without grad (:mod:`pyanomaly.networks.fast`). A fresh state (``h``
        None) does not enter the gate convolution: only the input's part of it runs (switch ``zero_skip``)."""
        switches = self.fast_path
        layout = switches.memory_format
        # without peepholes every gate (g doubled) goes through a sigmoid, fused into the conv
        fused = not self.peephole and fast.folded("sigmoid", "tanh", switches) == ("sigmoid", "tanh")
        weights = fast.gate_weights(self.conv, self.hidden_channels, dtype, "sigmoid", "tanh", switches)
        x = fast.to_fast(x, dtype, switches)
        if h is None and switches.zero_skip:
            w, b = weights
            weights = fast.cached(self.conv, f"input-gates-{dtype}-{layout}",
                                  lambda: (w[:, :self.input_channels].contiguous(memory_format=layout), b), w)
            inputs = x
        else:
            if h is None:
                h = torch.zeros(x.shape[0], self.hidden_channels, *x.shape[2:], dtype=dtype, device=x.device)
            inputs = torch.cat([x, fast.to_fast(h, dtype, switches)], dim=1)
        gates = fast.conv(inputs, weights, self.conv, switches, post="sigmoid" if fused else None)
        if c is None:
            c = torch.zeros(x.shape[0], self.hidden_channels, *x.shape[2:], dtype=self.conv.weight.dtype,
                            device=x.device).contiguous(memory_format=layout)
        peephole = (self.w_ci, self.w_cf, self.w_co) if self.peephole else None
        return lstm_update(gates, fast.to_fast(c, self.conv.weight.dtype, switches), self.hidden_channels, "sigmoid",
                           "tanh", torch.sigmoid, torch.tanh, dtype, switches, peephole, activated=fused)


@NETWORKS.register_module()
class ConvLSTM(nn.Module):
    """Stacked ConvLSTM layers, run over a sequence or over one repeated input.

    Args:
        input_channels: channels ``C`` of the input.
        hidden_channels: channels of each stacked layer, bottom first (an int: one layer).
        kernel_size: odd int or ``(kh, kw)`` for every layer, or a list with one entry per
            layer (a sequence whose length is the number of layers is read per layer).
        step: 4-D input only: how many steps the same input is fed.
        effective_step: 4-D input only: steps whose last-layer ``h`` is returned, counted
            from 1 to ``step`` (the defaults return the single step's output).
        batch_first: 5-D input is ``(B, T, C, H, W)``; else ``(T, B, C, H, W)`` (outputs follow).
        return_all_layers: return every layer's outputs and states, not only the last's.
        bias, peephole: see :class:`ConvLSTMCell`.

    Call ``forward(x, hidden_state=None)``:

    * 5-D ``x``: returns ``(layer_outputs, last_states)``. With ``return_all_layers=False``,
      ``layer_outputs`` is the last layer's ``h`` at every step ``(B, T, hidden[-1], H, W)``
      and ``last_states`` its final ``(h, c)``; with True, a list of such outputs and a list of
      ``(h, c)``, one per layer.
    * 4-D ``x`` ``(B, C, H, W)``: fed ``step`` times; returns ``(outputs, last_states)``,
      ``outputs`` a list (in step order) of the last layer's ``h`` ``(B, hidden[-1], H, W)``
      at each of ``effective_step``, ``last_states`` as for 5-D input.

    ``hidden_state`` is a list of ``(h, c)``, one per layer (for one layer a bare ``(h, c)``
    also works). To continue a stream chunk by chunk, pass back the ``last_states`` of a call
    with ``return_all_layers=True`` (or of a one-layer ConvLSTM): the result equals one pass.
    """

    state_names: tuple[str, ...] = ("h", "c")  # a layer's state, as its cell takes and returns it

    def __init__(self, input_channels: int, hidden_channels: int | Sequence[int],
                 kernel_size: int | Sequence, step: int = 1, effective_step: Sequence[int] = (1,),
                 batch_first: bool = True, return_all_layers: bool = False, bias: bool = True,
                 peephole: bool = False):
        super().__init__()
        self._init_stack(input_channels, hidden_channels, kernel_size, step, effective_step, batch_first,
                         return_all_layers, lambda i, h, k: ConvLSTMCell(i, h, k, bias=bias, peephole=peephole))

    def _init_stack(self, input_channels, hidden_channels, kernel_size, step, effective_step, batch_first,
                    return_all_layers, make_cell) -> None:
        """Check the arguments and build one cell per layer with ``make_cell(in, hidden, kernel)``
        (shared with stacks of other cells, e.g. :class:`~.sa_convlstm.SAConvLSTM`)."""
        name = type(self).__name__
        hidden = [int(hidden_channels)] if isinstance(hidden_channels, int) else [int(h) for h in hidden_channels]
        if not hidden or min(hidden) < 1:
            raise ValueError(f"{name} hidden_channels must be a positive int or a non-empty list, got {hidden_channels!r}")
        n = len(hidden)
        if isinstance(kernel_size, int):
            kernels = [kernel_size] * n
        elif len(kernel_size) == n:
            kernels = list(kernel_size)
        else:  # one (kh, kw) pair for every layer
            kernels = [tuple(kernel_size)] * n
        self.input_channels = int(input_channels)
        self.hidden_channels = hidden
        self.num_layers = n
        self.step = int(step)
        self.effective_step = sorted(int(s) for s in effective_step)
        if self.step < 1 or any(s < 1 or s > self.step for s in self.effective_step):
            raise ValueError(f"{name}: effective_step entries must lie in 1..step={self.step}, "
                             f"got {list(effective_step)}")
        self.batch_first = bool(batch_first)
        self.return_all_layers = bool(return_all_layers)
        inputs = [self.input_channels] + hidden[:-1]
        self.cells = nn.ModuleList(make_cell(i, h, k) for i, h, k in zip(inputs, hidden, kernels))

    def init_hidden(self, batch: int, spatial: Sequence[int]) -> list[State]:
        """Zero states, one per layer (``(h, c)``, each ``(batch, hidden[l], H, W)``)."""
        return [cell.init_hidden(batch, spatial) for cell in self.cells]

    def _check_state(self, hidden_state, batch: int, spatial: Sequence[int]) -> list[State]:
        k = len(self.state_names)
        if hidden_state is None:  # the cells start from zeros (their fast path skips them)
            return [(None,) * k] * self.num_layers
        if self.num_layers == 1 and len(hidden_state) == k and isinstance(hidden_state[0], torch.Tensor):
            hidden_state = [hidden_state]

        def is_state(s) -> bool:
            return isinstance(s, (tuple, list)) and len(s) == k and all(isinstance(t, torch.Tensor) for t in s)

        if len(hidden_state) != self.num_layers or not all(is_state(s) for s in hidden_state):
            raise ValueError(
                f"{type(self).__name__} hidden_state must be a list of {self.num_layers} "
                f"({', '.join(self.state_names)}) {'pairs' if k == 2 else 'triples' if k == 3 else 'tuples'}, "
                "one per layer; the last layer's state alone cannot resume the layers below it: pass back the "
                "last_states of a call with return_all_layers=True")
        return [tuple(s) for s in hidden_state]

    def _run(self, seq: torch.Tensor, states: list[State]) -> tuple[list[torch.Tensor], list[State]]:
        """``seq`` ``(B, T, C, H, W)`` -> per-layer outputs ``(B, T, hidden, H, W)`` and final states."""
        outputs, finals = [], []
        layer_inputs = seq.unbind(1)
        for cell, state in zip(self.cells, states):
            hs = []
            for x in layer_inputs:
                state = cell(x, *state)
                hs.append(state[0])
            layer_inputs = hs  # the next layer reads these steps as they are (no slicing of a stack)
            outputs.append(torch.stack(hs, dim=1))
            finals.append(tuple(state))
        return outputs, finals

    def forward(self, x: torch.Tensor, hidden_state: list[State] | State | None = None):
        """See the class docstring for shapes and return values."""
        if x.dim() == 4:
            states = self._check_state(hidden_state, x.shape[0], x.shape[-2:])
            seq = x.unsqueeze(1).expand(-1, self.step, -1, -1, -1)
            outputs, finals = self._run(seq, states)
            picked = [outputs[-1][:, s - 1] for s in self.effective_step]
            return picked, (finals if self.return_all_layers else finals[-1])
        if x.dim() != 5:
            raise ValueError(f"{type(self).__name__} expects a 4-D (B, C, H, W) or 5-D sequence input, got shape "
                             f"{tuple(x.shape)}")
        if not self.batch_first:
            x = x.transpose(0, 1)
        states = self._check_state(hidden_state, x.shape[0], x.shape[-2:])
        outputs, finals = self._run(x, states)
        if not self.batch_first:
            outputs = [o.transpose(0, 1) for o in outputs]
        if self.return_all_layers:
            return outputs, finals
        return outputs[-1], finals[-1]
