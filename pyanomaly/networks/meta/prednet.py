"""PredNet: a deep predictive coding network for next-frame prediction.

Lotter, Kreiman and Cox, "Deep Predictive Coding Networks for Video Prediction and
Unsupervised Learning", ICLR 2017. Each layer ``l`` holds a representation ``R_l``
(a ConvLSTM), a prediction ``Ahat_l = conv(R_l)``, a target ``A_l`` (the frame at layer 0,
else ``pool(conv(E_{l-1}))``) and an error ``E_l = [act(A_l - Ahat_l), act(Ahat_l - A_l)]``.
At every step the representations are updated top-down from the previous errors, then
predictions and errors are computed bottom-up. The prediction at step ``t`` is made before
frame ``t`` is seen, so it is a next-frame prediction.

Example:
    >>> net = PredNet(stack_sizes=(1, 16, 32), R_stack_sizes=(16, 16, 32),
    ...               A_filter_sizes=(3, 3), Ahat_filter_sizes=(3, 3, 3), R_filter_sizes=(3, 3, 3),
    ...               output_mode="prediction", data_format="channels_first", return_sequences=True)
    >>> pred = net(torch.rand(2, 10, 1, 64, 64))   # (2, 10, 1, 64, 64); pred[:, t] predicts frame t
    >>> out, state = net(torch.rand(2, 4, 1, 64, 64), return_states=True)   # state.t == 4
"""
from __future__ import annotations

import re
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pyanomaly.networks.fast import FastPath
from pyanomaly.networks.fast import ops as fast
from pyanomaly.networks.fast.prednet import fast_step, fast_top_down, frame_prediction
from pyanomaly.registry import NETWORKS

from .activations import batch_flatten, get_activation

_UNITS = ("R", "Ahat", "A", "E")


class PredNetState(NamedTuple):
    """PredNet's recurrent state between two steps; per-layer tuples, bottom layer first.

    Attributes:
        R: representations, layer ``l`` ``(B, R_stack_sizes[l], H / 2**l, W / 2**l)``.
        c: ConvLSTM cell states, the shapes of ``R`` (in the parameters' dtype, also under
            bf16 autocast).
        E: errors, layer ``l`` ``(B, 2 * stack_sizes[l], H / 2**l, W / 2**l)``.
        prediction: the last frame prediction ``(B, stack_sizes[0], H, W)``; from
            ``extrap_start_time`` on it replaces the input.
        t: steps taken (0: a fresh state).
    """

    R: tuple[torch.Tensor, ...]
    c: tuple[torch.Tensor, ...]
    E: tuple[torch.Tensor, ...]
    prediction: torch.Tensor
    t: int

    def advanced(self, R: Sequence[torch.Tensor], c: Sequence[torch.Tensor], E: Sequence[torch.Tensor],
                 prediction: torch.Tensor) -> "PredNetState":
        """The state one step later, holding the given units."""
        return PredNetState(tuple(R), tuple(c), tuple(E), prediction, self.t + 1)


@NETWORKS.register_module()
class PredNet(nn.Module):
    """PredNet with the Keras reference API.

    Args:
        stack_sizes: channels of ``A``/``Ahat`` per layer; ``stack_sizes[0]`` is the input's.
        R_stack_sizes: channels of the representation ``R`` per layer (same length).
        A_filter_sizes: kernel of the target convs of layers 1.. (length ``nb_layers - 1``).
        Ahat_filter_sizes: kernel of the prediction convs (length ``nb_layers``).
        R_filter_sizes: kernel of the ConvLSTM convs (length ``nb_layers``).
        pixel_max: the layer-0 prediction is clipped to ``[.., pixel_max]``.
        error_activation: activation of the error units.
        A_activation: activation of the target and prediction units.
        LSTM_activation: activation of the cell input and output.
        LSTM_inner_activation: activation of the gates (``'hard_sigmoid'`` as in Keras).
        output_mode: ``'error'`` -> ``(B, nb_layers)`` mean error per layer;
            ``'prediction'`` -> the frame prediction; ``'all'`` -> flattened prediction
            concatenated with the layer errors, ``(B, C*H*W + nb_layers)``; or a unit and a
            layer, e.g. ``'R0'``, ``'E1'``, ``'A2'``, ``'Ahat0'`` -> that unit's activations.
        extrap_start_time: from this step on, the previous prediction replaces the input.
        data_format: ``'channels_first'`` for ``(B, T, C, H, W)`` input (and image outputs),
            ``'channels_last'`` for ``(B, T, H, W, C)``.
        return_sequences: output every step ``(B, T, ...)`` instead of the last one ``(B, ...)``.

    ``fast_path``: which parts of the inference fast path run without grad (see
    :func:`pyanomaly.networks.fast.set_fast_path`).
    """

    fast_path: FastPath = FastPath()

    def __init__(self, stack_sizes: Sequence[int], R_stack_sizes: Sequence[int],
                 A_filter_sizes: Sequence[int], Ahat_filter_sizes: Sequence[int],
                 R_filter_sizes: Sequence[int], pixel_max: float = 1.0, error_activation: str = "relu",
                 A_activation: str = "relu", LSTM_activation: str = "tanh",
                 LSTM_inner_activation: str = "hard_sigmoid", output_mode: str = "error",
                 extrap_start_time: int | None = None, data_format: str = "channels_last",
                 return_sequences: bool = False):
        super().__init__()
        self.stack_sizes = tuple(int(s) for s in stack_sizes)
        self.R_stack_sizes = tuple(int(s) for s in R_stack_sizes)
        self.A_filter_sizes = tuple(int(s) for s in A_filter_sizes)
        self.Ahat_filter_sizes = tuple(int(s) for s in Ahat_filter_sizes)
        self.R_filter_sizes = tuple(int(s) for s in R_filter_sizes)
        self.nb_layers = n = len(self.stack_sizes)
        for name, value, want in (("R_stack_sizes", self.R_stack_sizes, n), ("A_filter_sizes", self.A_filter_sizes, n - 1),
                                  ("Ahat_filter_sizes", self.Ahat_filter_sizes, n), ("R_filter_sizes", self.R_filter_sizes, n)):
            if len(value) != want:
                raise ValueError(f"PredNet: {name} must have length {want} (stack_sizes has {n} layers), got {value}")
        self.pixel_max = pixel_max
        self.error_activation = get_activation(error_activation)
        self.A_activation = get_activation(A_activation)
        self.LSTM_activation = get_activation(LSTM_activation)
        self.LSTM_inner_activation = get_activation(LSTM_inner_activation)
        self.activation_names = (error_activation, A_activation, LSTM_activation, LSTM_inner_activation)
        if data_format not in ("channels_first", "channels_last"):
            raise ValueError(f"PredNet: data_format must be 'channels_first' or 'channels_last', got {data_format!r}")
        self.data_format = data_format
        self.output_mode = output_mode
        self.output_unit, self.output_layer = self._parse_output_mode(output_mode)
        self.extrap_start_time = extrap_start_time
        self.return_sequences = return_sequences
        self.make_layers()

    def _parse_output_mode(self, mode: str) -> tuple[str | None, int | None]:
        if mode in ("error", "prediction", "all"):
            return None, None
        m = re.fullmatch(r"(Ahat|A|R|E)(\d+)", str(mode))
        if not m or int(m.group(2)) >= self.nb_layers:
            raise ValueError(
                f"PredNet: output_mode must be 'error', 'prediction', 'all' or a unit {_UNITS} followed "
                f"by a layer index < {self.nb_layers} (e.g. 'R0', 'E1'), got {mode!r}")
        return m.group(1), int(m.group(2))

    def make_layers(self) -> None:
        """Create the convolutions of every layer (the Keras ``build``)."""
        self.conv_r = nn.ModuleList()  # one fused conv per layer for the 4 LSTM gates (i, f, c, o)
        self.conv_ahat = nn.ModuleList()
        self.conv_a = nn.ModuleList()
        for l in range(self.nb_layers):
            in_ch = self.R_stack_sizes[l] + 2 * self.stack_sizes[l]
            if self.isNotTopestLayer(l):
                in_ch += self.R_stack_sizes[l + 1]
            k = self.R_filter_sizes[l]
            self.conv_r.append(nn.Conv2d(in_ch, 4 * self.R_stack_sizes[l], k, padding=k // 2))
            k = self.Ahat_filter_sizes[l]
            self.conv_ahat.append(nn.Conv2d(self.R_stack_sizes[l], self.stack_sizes[l], k, padding=k // 2))
            if self.isNotTopestLayer(l):
                k = self.A_filter_sizes[l]
                self.conv_a.append(nn.Conv2d(2 * self.stack_sizes[l], self.stack_sizes[l + 1], k, padding=k // 2))
        # Start the frame prediction at mid-range so its ReLU is active: with a negative start
        # the few output channels of layer 0 can die and training stalls at the trivial loss.
        nn.init.constant_(self.conv_ahat[0].bias, 0.5 * self.pixel_max)

    def isNotTopestLayer(self, layerIndex: int) -> bool:
        """Whether ``layerIndex`` has a layer above it."""
        return layerIndex < self.nb_layers - 1

    # -- states ---------------------------------------------------------------------------
    def check_input_size(self, height: int, width: int) -> None:
        """Raise if ``(height, width)`` cannot be halved ``nb_layers - 1`` times evenly."""
        f = 2 ** (self.nb_layers - 1)
        if height % f or width % f:
            raise ValueError(
                f"PredNet with {self.nb_layers} layers pools {self.nb_layers - 1} times, so input height and "
                f"width must be multiples of {f}; got {height}x{width} (e.g. use "
                f"{max(f, height // f * f)}x{max(f, width // f * f)})")

    def get_initial_states(self, input_shape: Sequence[int]) -> PredNetState:
        """The zero state (``t = 0``) for an input of shape ``(B, T, C, H, W)`` or ``(B, T, H, W, C)``."""
        if self.data_format == "channels_first":
            b, _, c, h, w = input_shape
        else:
            b, _, h, w, c = input_shape
        if c != self.stack_sizes[0]:
            layout = "(B, T, C, H, W)" if self.data_format == "channels_first" else "(B, T, H, W, C)"
            raise ValueError(f"PredNet expects {self.stack_sizes[0]} input channel(s) (stack_sizes[0]), got an input "
                             f"{layout} of shape {tuple(input_shape)} with {c}; make stack_sizes[0] (and "
                             "DATASET.CHANNELS) the frames' channels")
        self.check_input_size(h, w)
        p = next(self.parameters())
        def zeros(c, s):
            return torch.zeros(b, c, h // s, w // s, device=p.device, dtype=p.dtype)
        r = tuple(zeros(self.R_stack_sizes[l], 2 ** l) for l in range(self.nb_layers))
        c = tuple(zeros(self.R_stack_sizes[l], 2 ** l) for l in range(self.nb_layers))
        e = tuple(zeros(2 * self.stack_sizes[l], 2 ** l) for l in range(self.nb_layers))
        return PredNetState(r, c, e, zeros(self.stack_sizes[0], 1), 0)

    # -- one time step --------------------------------------------------------------------
    def step(self, A: torch.Tensor, states: PredNetState) -> tuple[dict, PredNetState]:
        """Advance one step with frame ``A`` ``(B, C, H, W)``.

        Returns ``(units, new_states)`` where ``units`` maps ``'prediction'`` to the frame
        prediction (made before seeing ``A``) and ``'R'``, ``'Ahat'``, ``'A'``, ``'E'`` to
        per-layer lists. With grad enabled (or ``fast_path.enabled`` off) this is
        :meth:`reference_step`; under ``torch.no_grad``/``torch.inference_mode`` an optimised
        step gives the same values within float tolerance (channels_last tensors, cached and
        folded weights; bfloat16 convolutions under bfloat16 autocast; see
        :mod:`pyanomaly.networks.fast`).
        """
        dtype = fast.compute_dtype(self.conv_ahat[0].weight, self.fast_path)
        if dtype is None:
            return self.reference_step(A, states)
        return fast_step(self, A, states, dtype, self.fast_path)

    def next_prediction(self, states: PredNetState) -> torch.Tensor:
        """The frame prediction ``(B, C, H, W)`` that the next :meth:`step` from ``states`` will
        make (before it reads its frame), without the rest of that step."""
        dtype = fast.compute_dtype(self.conv_ahat[0].weight, self.fast_path)
        if dtype is None:
            units, _ = self.reference_step(torch.zeros_like(states.prediction), states)
            return units["prediction"]
        r_list, _ = fast_top_down(self, states, dtype, self.fast_path)
        return frame_prediction(self, r_list[0], dtype, self.fast_path)

    def reference_step(self, A: torch.Tensor, states: PredNetState) -> tuple[dict, PredNetState]:
        """The plain step, written as the equations read: :meth:`step`'s numerical reference."""
        n = self.nb_layers
        r_tm1, c_tm1, e_tm1 = states.R, states.c, states.E
        if self.extrap_start_time is not None and states.t >= self.extrap_start_time:
            A = states.prediction
        r_list: list = [None] * n
        c_list: list = [None] * n
        r_up = None
        for l in reversed(range(n)):
            inputs = [r_tm1[l], e_tm1[l]]
            if r_up is not None:
                inputs.append(r_up)
            gates = self.conv_r[l](torch.cat(inputs, dim=1))
            i, f, g, o = gates.chunk(4, dim=1)
            i = self.LSTM_inner_activation(i)
            f = self.LSTM_inner_activation(f)
            o = self.LSTM_inner_activation(o)
            c = f * c_tm1[l] + i * self.LSTM_activation(g)
            r = o * self.LSTM_activation(c)
            r_list[l], c_list[l] = r, c
            if l > 0:
                r_up = F.interpolate(r, scale_factor=2, mode="nearest")
        e_list, ahat_list, a_list = [], [], []
        a = A
        for l in range(n):
            ahat = self.A_activation(self.conv_ahat[l](r_list[l]))
            if l == 0:
                ahat = torch.clamp(ahat, max=self.pixel_max)
                prediction = ahat
            e = torch.cat([self.error_activation(ahat - a), self.error_activation(a - ahat)], dim=1)
            e_list.append(e)
            ahat_list.append(ahat)
            a_list.append(a)
            if self.isNotTopestLayer(l):
                a = F.max_pool2d(self.A_activation(self.conv_a[l](e)), 2)
        units = {"prediction": prediction, "R": r_list, "Ahat": ahat_list, "A": a_list, "E": e_list}
        return units, states.advanced(r_list, c_list, e_list, prediction)

    def _output(self, units: dict) -> torch.Tensor:
        if self.output_unit is not None:
            out = units[self.output_unit][self.output_layer]
            return out.permute(0, 2, 3, 1) if self.data_format == "channels_last" else out
        if self.output_mode == "prediction":
            out = units["prediction"]
            return out.permute(0, 2, 3, 1) if self.data_format == "channels_last" else out
        errors = torch.stack([e.mean(dim=(1, 2, 3)) for e in units["E"]], dim=1)
        if self.output_mode == "error":
            return errors
        return torch.cat([batch_flatten(units["prediction"]), errors], dim=1)  # 'all'

    def forward(self, A0_withTimeStep: torch.Tensor, initial_states: PredNetState | None = None,
                return_states: bool = False):
        """Run over a sequence.

        Args:
            A0_withTimeStep: frames ``(B, T, C, H, W)`` (channels_first) or ``(B, T, H, W, C)``.
            initial_states: states to continue from (from :meth:`get_initial_states` or a
                previous call with ``return_states=True``); zeros when None.
            return_states: also return the final states, so a stream can be fed in chunks.

        Returns:
            the output selected by ``output_mode``, ``(B, T, ...)`` with ``return_sequences``
            else ``(B, ...)`` for the last step; and the final states if ``return_states``.
        """
        x = A0_withTimeStep
        if x.dim() != 5:
            raise ValueError(f"PredNet expects a 5-D input (B, T, ...), got shape {tuple(x.shape)}")
        if self.data_format == "channels_last":
            x = x.permute(0, 1, 4, 2, 3)
        if x.shape[2] != self.stack_sizes[0]:
            raise ValueError(f"PredNet: input has {x.shape[2]} channels, stack_sizes[0] is {self.stack_sizes[0]}")
        if initial_states is not None and not isinstance(initial_states, PredNetState):
            raise TypeError(f"PredNet: initial_states must be a PredNetState (from get_initial_states or a call with "
                            f"return_states=True), got {type(initial_states).__name__}")
        states = initial_states if initial_states is not None else self.get_initial_states(A0_withTimeStep.shape)
        outputs = []
        for t in range(x.shape[1]):
            units, states = self.step(x[:, t], states)
            if self.return_sequences or t == x.shape[1] - 1:
                outputs.append(self._output(units))
        out = torch.stack(outputs, dim=1) if self.return_sequences else outputs[-1]
        return (out, states) if return_states else out
