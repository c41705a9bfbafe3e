"""The common PyTorch ConvLSTM API: ``ConvLSTM(input_dim, hidden_dim, kernel_size, num_layers, ...)``.

Shi, Chen, Wang, Yeung, Wong and Woo, "Convolutional LSTM Network: A Machine Learning
Approach for Precipitation Nowcasting", NeurIPS 2015. This is the calling convention of the
widely copied PyTorch implementation (positional ``input_dim, hidden_dim, kernel_size,
num_layers, batch_first, bias, return_all_layers``; outputs and states returned as lists,
``(h, c)`` pairs as ``[h, c]``), computed by our
:class:`~pyanomaly.networks.meta.convlstm.ConvLSTM` and its cells.

Its state dicts are those of that implementation: keys ``cell_list.{l}.conv.weight`` /
``.bias``, the four gate blocks in its order (i, f, o, g; ours is i, f, g, o, converted on
save and load), so its checkpoints load unchanged.

Example:
    >>> x = torch.rand(4, 10, 8, 32, 32)
    >>> convlstm = ConvLSTM(8, 16, (3, 3), 1, True, True, False)
    >>> layer_outputs, last_states = convlstm(x)
    >>> layer_outputs[0].shape, last_states[0][0].shape   # lists of length 1
    (torch.Size([4, 10, 16, 32, 32]), torch.Size([4, 16, 32, 32]))
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from pyanomaly.networks.meta.convlstm import ConvLSTM as _ConvLSTM
from pyanomaly.networks.meta.convlstm import ConvLSTMCell as _ConvLSTMCell

__all__ = ["ConvLSTM", "ConvLSTMCell"]

# Gate block k of our convolution is block _THEIRS[k] of theirs (ours i, f, g, o; theirs i, f, o, g).
_THEIRS = (0, 1, 3, 2)


def _reorder(t: torch.Tensor, order: Sequence[int]) -> torch.Tensor:
    """``t``'s four gate blocks along dim 0, taken in ``order`` (the permutation is its own inverse)."""
    return torch.cat([t.chunk(4, dim=0)[k] for k in order], dim=0)


def _save_in_their_order(module, state_dict, prefix, local_metadata) -> None:
    for key in (prefix + "conv.weight", prefix + "conv.bias"):
        if key in state_dict:
            state_dict[key] = _reorder(state_dict[key], _THEIRS)


def _load_from_their_order(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                           error_msgs) -> None:
    for key in (prefix + "conv.weight", prefix + "conv.bias"):
        value = state_dict.get(key)
        if isinstance(value, torch.Tensor) and value.shape[0] == 4 * module.hidden_dim:
            state_dict[key] = _reorder(value, _THEIRS)


class ConvLSTMCell(_ConvLSTMCell):
    """One ConvLSTM layer, one time step per call.

    Args:
        input_dim: channels of the input.
        hidden_dim: channels of ``h`` and ``c``.
        kernel_size: ``(kh, kw)`` (an int is read as ``(k, k)``); odd, "same" padding.
        bias: learn gate biases.

    ``forward(input_tensor, cur_state)``: ``input_tensor`` ``(B, input_dim, H, W)``,
    ``cur_state`` ``(h, c)`` each ``(B, hidden_dim, H, W)``; returns ``(h_next, c_next)``.
    (Also callable as our cells are, ``forward(x, h, c)``.)
    """

    def __init__(self, input_dim: int, hidden_dim: int, kernel_size: int | Sequence[int], bias: bool):
        super().__init__(input_dim, hidden_dim, kernel_size, bias=bias)
        self.input_dim, self.hidden_dim = self.input_channels, self.hidden_channels
        self.padding = (self.kernel_size[0] // 2, self.kernel_size[1] // 2)
        self.bias = bool(bias)
        self.register_state_dict_post_hook(_save_in_their_order)
        self.register_load_state_dict_pre_hook(_load_from_their_order)

    def forward(self, input_tensor: torch.Tensor, cur_state, c_cur: torch.Tensor | None = None):
        # the stack calls every cell as cell(x, h, c), with None for a fresh state
        h_cur, c_cur = cur_state if isinstance(cur_state, (tuple, list)) else (cur_state, c_cur)
        return super().forward(input_tensor, h_cur, c_cur)

    def init_hidden(self, batch_size: int, image_size: Sequence[int]):
        """Zero ``(h, c)``, each ``(batch_size, hidden_dim, *image_size)``."""
        return super().init_hidden(batch_size, image_size)


class ConvLSTM(_ConvLSTM):
    """Stacked ConvLSTM layers over a sequence, with outputs and states as lists.

    Args:
        input_dim: channels of the input.
        hidden_dim: hidden channels, one int for every layer or a list with one per layer.
        kernel_size: ``(kh, kw)`` (or an int) for every layer, or a list with one per layer.
        num_layers: stacked layers.
        batch_first: the input is ``(B, T, C, H, W)``; else ``(T, B, C, H, W)``.
        bias: learn gate biases.
        return_all_layers: return every layer's outputs and states, else the last layer's only.

    ``forward(input_tensor, hidden_state=None)`` returns ``(layer_output_list, last_state_list)``,
    lists of length ``num_layers`` (length 1 without ``return_all_layers``):
    ``layer_output_list[l]`` is layer ``l``'s ``h`` at every step, ``(B, T, hidden, H, W)``
    whatever ``batch_first`` (as in the reference implementation), and ``last_state_list[l]``
    its final ``[h, c]``, each ``(B, hidden, H, W)``. ``hidden_state`` (one ``(h, c)`` per
    layer) continues from a previous call's ``last_state_list`` taken with ``return_all_layers``.
    """

    def __init__(self, input_dim: int, hidden_dim: int | Sequence[int], kernel_size, num_layers: int,
                 batch_first: bool = False, bias: bool = True, return_all_layers: bool = False):
        nn.Module.__init__(self)
        kernels = self._extend_for_multilayer(kernel_size, num_layers)
        hidden = self._extend_for_multilayer(hidden_dim, num_layers)
        if not len(kernels) == len(hidden) == num_layers:
            raise ValueError(f"ConvLSTM: kernel_size ({len(kernels)}) and hidden_dim ({len(hidden)}) lists must "
                             f"have num_layers={num_layers} entries")
        self._init_stack(input_dim, hidden, kernels, 1, (1,), batch_first, return_all_layers,
                         lambda i, h, k: ConvLSTMCell(i, h, k, bias))
        self.cell_list = self._modules.pop("cells")  # the reference implementation's name (state-dict keys)
        self.input_dim, self.hidden_dim = self.input_channels, hidden
        self.kernel_size = [cell.kernel_size for cell in self.cell_list]
        self.bias = bool(bias)

    @property
    def cells(self) -> nn.ModuleList:
        return self.cell_list

    @staticmethod
    def _extend_for_multilayer(param, num_layers: int) -> list:
        return param if isinstance(param, list) else [param] * num_layers

    def _init_hidden(self, batch_size: int, image_size: Sequence[int]) -> list:
        return self.init_hidden(batch_size, image_size)

    def forward(self, input_tensor: torch.Tensor, hidden_state=None):
        if input_tensor.dim() != 5:
            raise ValueError(f"ConvLSTM expects a 5-D input ({'B, T' if self.batch_first else 'T, B'}, C, H, W), "
                             f"got shape {tuple(input_tensor.shape)}")
        if not self.batch_first:
            input_tensor = input_tensor.transpose(0, 1)
        states = self._check_state(hidden_state, input_tensor.shape[0], input_tensor.shape[-2:])
        layer_output_list, finals = self._run(input_tensor, states)
        last_state_list = [[h, c] for h, c in finals]
        if not self.return_all_layers:
            return layer_output_list[-1:], last_state_list[-1:]
        return layer_output_list, last_state_list
