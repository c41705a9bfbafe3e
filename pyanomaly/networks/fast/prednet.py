"""PredNet's optimised inference step: :meth:`~pyanomaly.networks.meta.PredNet.reference_step` without grad.

Equal to the reference within float tolerance (``tests/networks/fast/test_fast_path.py``); what
it does and what each part gains is in :mod:`.ops` and ``docs/benchmarks.md``. Beyond the
shared recipe (channels_last, cached/folded/prepacked weights, bfloat16 under autocast):

* error units are written as two halves of one tensor in place (no ``cat``);
* ``relu`` (and the prediction's clip) are fused into the convolutions (oneDNN post-ops);
  another monotone activation is applied after the max-pooling (max commutes with it);
* the nearest-upsampled ``R`` from the layer above is never built: its part of the gate
  convolution is computed on the small map as four 2x2 convolutions, one per output parity
  (:func:`.ops.add_upsampled_conv_`; switch ``subpixel``): 16 instead of 36 multiply-adds per
  2x2 output block;
* on the first step of a stream, from the zero states of ``get_initial_states``, the
  convolutions skip the inputs that are exactly zero (the top layer's gates are its bias;
  the other layers convolve only the ``R`` from above; switch ``zero_skip``).

Every function takes the PredNet ``net`` (its convolutions and activations), its state (a
:class:`~pyanomaly.networks.meta.prednet.PredNetState`), the convolutions' ``dtype`` and the
``switches`` (the net's ``fast_path``).

Example:
    >>> units, state = fast_step(net, frame, state, torch.float32, net.fast_path)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import ops
from .lstm import lstm_update
from .switches import FastPath

# The sub-pixel form saves 10 multiply-adds per input channel of R_{l+1} and output value but
# costs four strided additions per output value: it pays from about this many input channels.
SUBPIXEL_MIN_CHANNELS = 64


def _zero(*tensors: torch.Tensor) -> bool:
    # .any() waits for the device; only asked on a stream's first step, and not on GPUs
    return all(t.device.type == "cpu" and not bool(t.any()) for t in tensors)


def _gates(net: nn.Module, l: int, r_tm1: torch.Tensor, e_tm1: torch.Tensor, r_above: torch.Tensor | None,
           dtype: torch.dtype, zero_past: bool, switches: FastPath) -> torch.Tensor:
    """Raw gates ``(i, f, o, g)`` (activations folded, see :func:`.ops.gate_weights`) of layer
    ``l`` from ``[R_l, E_l, upsample(R_{l+1})]``; ``r_above`` is ``R_{l+1}`` (None at the top)."""
    conv = net.conv_r[l]
    _, _, outer, inner = net.activation_names
    w, b = ops.gate_weights(conv, net.R_stack_sizes[l], dtype, inner, outer, switches)
    k = r_tm1.shape[1] + e_tm1.shape[1]
    layout = switches.memory_format
    subpixel = (r_above is not None and switches.subpixel and r_above.shape[1] >= SUBPIXEL_MIN_CHANNELS
                and tuple(conv.kernel_size) == (3, 3)
                and tuple(conv.padding) == (1, 1) and tuple(conv.stride) == (1, 1) and tuple(conv.dilation) == (1, 1))
    if r_above is not None and not subpixel:
        r_up = F.interpolate(r_above, scale_factor=2, mode="nearest")
        if zero_past:
            w_up = ops.cached(conv, f"gates-up-{dtype}", lambda: w[:, k:].contiguous(memory_format=layout), w)
            return ops.conv(r_up, (w_up, b), conv, switches)
        return ops.conv(torch.cat([r_tm1, e_tm1, r_up], dim=1), (w, b), conv, switches)
    if zero_past:  # the past inputs are zero: their convolution is the bias
        out = torch.empty((r_tm1.shape[0], w.shape[0]) + r_tm1.shape[2:], dtype=dtype, device=r_tm1.device,
                          memory_format=layout)
        out = out.copy_(b.view(1, -1, 1, 1)) if b is not None else out.zero_()
    elif r_above is None:
        out = ops.conv(torch.cat([r_tm1, e_tm1], dim=1), (w, b), conv, switches)
    else:
        w_past = ops.cached(conv, f"gates-past-{dtype}", lambda: w[:, :k].contiguous(memory_format=layout), w)
        out = ops.conv(torch.cat([r_tm1, e_tm1], dim=1), (w_past, b), conv, switches)
    if r_above is not None:
        w_par = ops.cached(conv, f"gates-parity-{dtype}",
                           lambda: ops.parity_weights(w[:, k:].float()).to(w.dtype).contiguous(memory_format=layout), w)
        out = ops.add_upsampled_conv_(out, r_above, w_par, conv, switches)
    return out


def fast_top_down(net: nn.Module, state: tuple, dtype: torch.dtype, switches: FastPath) -> tuple[list, list]:
    """The representation update of a step: new ``R`` and ``c`` per layer, top layer first computed."""
    n = net.nb_layers
    _, _, outer, inner = net.activation_names
    cell_dtype = net.conv_ahat[0].weight.dtype
    r_tm1 = [ops.to_fast(s, dtype, switches) for s in state.R]
    c_tm1 = [ops.to_fast(s, cell_dtype, switches) for s in state.c]
    e_tm1 = [ops.to_fast(s, dtype, switches) for s in state.E]
    first = state.t == 0 and switches.zero_skip
    r_list: list = [None] * n
    c_list: list = [None] * n
    for l in reversed(range(n)):
        zero_past = first and _zero(r_tm1[l], e_tm1[l])
        r_above = r_list[l + 1] if l < n - 1 else None
        gates = _gates(net, l, r_tm1[l], e_tm1[l], r_above, dtype, zero_past, switches)
        r_list[l], c_list[l] = lstm_update(gates, c_tm1[l], net.R_stack_sizes[l], inner, outer,
                                           net.LSTM_inner_activation, net.LSTM_activation, dtype, switches)
    return r_list, c_list


def frame_prediction(net: nn.Module, r0: torch.Tensor, dtype: torch.dtype, switches: FastPath) -> torch.Tensor:
    """``Ahat_0`` from ``R_0``: the frame prediction, clipped at ``pixel_max``."""
    conv = net.conv_ahat[0]
    weights = ops.conv_weights(conv, dtype, switches)
    if net.activation_names[1] == "relu" and net.pixel_max >= 0:  # relu then the clip: one fused clamp
        return ops.conv(r0, weights, conv, switches, post="hardtanh", scalars=(0.0, float(net.pixel_max)))
    return torch.clamp(net.A_activation(ops.conv(r0, weights, conv, switches)), max=net.pixel_max)


def fast_step(net: nn.Module, A: torch.Tensor, state: tuple, dtype: torch.dtype,
              switches: FastPath) -> tuple[dict, tuple]:
    """:meth:`PredNet.reference_step` without grad, convolutions in ``dtype``: ``(units, new state)``."""
    n = net.nb_layers
    err_name, a_name, _, _ = net.activation_names
    if net.extrap_start_time is not None and state.t >= net.extrap_start_time:
        A = state.prediction
    r_list, c_list = fast_top_down(net, state, dtype, switches)
    e_list, ahat_list, a_list = [], [], []
    relu = a_name == "relu"  # then fused into the convolutions
    a = ops.to_fast(A, dtype, switches)  # one conversion instead of one inside every op that reads it
    for l in range(n):
        if l == 0:
            ahat = prediction = frame_prediction(net, r_list[0], dtype, switches)
        else:
            ahat = ops.conv(r_list[l], ops.conv_weights(net.conv_ahat[l], dtype, switches), net.conv_ahat[l],
                            switches, post="relu" if relu else None)
            ahat = ahat if relu else net.A_activation(ahat)
        s = net.stack_sizes[l]
        if err_name == "relu":  # both halves written in place, no concatenation
            e = torch.empty((ahat.shape[0], 2 * s) + ahat.shape[2:], dtype=dtype, device=ahat.device,
                            memory_format=switches.memory_format)
            torch.sub(ahat, a, out=e[:, :s])
            torch.sub(a, ahat, out=e[:, s:])
            e = e.relu_()
        else:
            e = ops.to_fast(torch.cat([net.error_activation(ahat - a), net.error_activation(a - ahat)], 1), dtype,
                            switches)
        e_list.append(e)
        ahat_list.append(ahat)
        a_list.append(A if l == 0 else a)
        if net.isNotTopestLayer(l):
            y = ops.conv(e, ops.conv_weights(net.conv_a[l], dtype, switches), net.conv_a[l], switches,
                         post="relu" if relu else None)
            if relu or a_name not in ops.MONOTONE:
                a = F.max_pool2d(y if relu else net.A_activation(y), 2)
            else:  # max commutes with a monotone activation: pool first, activate a quarter
                a = net.A_activation(F.max_pool2d(y, 2))
    units = {"prediction": prediction, "R": r_list, "Ahat": ahat_list, "A": a_list, "E": e_list}
    return units, state.advanced(r_list, c_list, e_list, prediction)
