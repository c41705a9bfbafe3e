"""The inference fast path's operations, shared by the recurrent networks and the U-Net.

Under ``torch.no_grad`` or ``torch.inference_mode`` PredNet, the ConvLSTM cell, the
encoders and decoders built on them, and the U-Net (in eval mode: its batch norms are folded
into the convolutions' cached weights) run an optimised step that equals their plain step
within float tolerance (with grad enabled they run the plain step, so training and its
gradients are unchanged). Which parts run is said by the module's own ``fast_path``
(:class:`~pyanomaly.networks.fast.FastPath`), passed to every function here as ``switches``:

* tensors are kept ``channels_last`` (oneDNN's native layout on CPU: max-pooling and nearest
  upsampling are 3-25x faster in it, and the convolutions are no slower);
* the weights of every convolution are cast and laid out once and cached (refreshed when a
  parameter changes), not converted at every call;
* the LSTM gate activations' affine parts are folded into the cached gate weights:
  ``hard_sigmoid(x) = clamp(0.2 x + 0.5, 0, 1)`` becomes one in-place ``clamp_`` and
  ``tanh(x) = 2 sigmoid(2 x) - 1`` (torch's CPU ``tanh`` is scalar code, several times slower
  than its ``sigmoid``); the gates are reordered ``(i, f, o, g)`` so one op activates i, f, o;
* opt-in (switch ``fused``, ``TEST.FUSED_UPDATE``): the LSTM state update (:mod:`.lstm`) runs
  as one ``torch.compile``-generated pass reading the gates and ``c`` and writing ``c`` and
  ``h``, instead of about nine element-wise torch ops, each a pass over the state;
* under ``torch.autocast(..., dtype=torch.bfloat16)`` (opt-in) convolutions run in bfloat16
  with weights cast once, and the ``R``/``E``/``h`` states stay bfloat16; cell states ``c``
  stay in the parameters' dtype (float32).

What each part gains is measured in ``docs/benchmarks.md``.

Example:
    >>> dtype = compute_dtype(conv.weight, switches)        # None: run the plain code
    >>> y = conv(to_fast(x, dtype, switches), conv_weights(conv, dtype, switches), conv, switches, post="relu")
"""
from __future__ import annotations

import weakref
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .switches import FastPath

# Activations that commute with max-pooling (monotone non-decreasing).
MONOTONE = frozenset({"relu", "tanh", "sigmoid", "hard_sigmoid", "linear", "elu", "leaky_relu"})


def compute_dtype(param: torch.Tensor, switches: FastPath) -> torch.dtype | None:
    """dtype of the fast path's convolutions, or None where the plain step must run (grad
    enabled, or ``switches.enabled`` off)."""
    if torch.is_grad_enabled() or not switches.enabled:
        return None
    kind = param.device.type
    if kind in ("cpu", "cuda") and torch.is_autocast_enabled(kind):
        dtype = torch.get_autocast_dtype(kind)
        if dtype in (torch.bfloat16, torch.float16) and param.dtype == torch.float32:
            return dtype
    return param.dtype


def inference_layout(x: torch.Tensor, switches: FastPath) -> torch.Tensor:
    """``x`` (4-D) in the fast path's memory format where it runs (no grad), else unchanged:
    the full-resolution convolutions of the encoders and decoders are 2-3x faster channels_last."""
    if torch.is_grad_enabled() or not switches.enabled:
        return x
    return x.contiguous(memory_format=switches.memory_format)


def to_fast(x: torch.Tensor, dtype: torch.dtype, switches: FastPath) -> torch.Tensor:
    """``x`` as ``dtype`` in the fast path's memory format (no copy when it already is)."""
    return x.to(dtype=dtype, memory_format=switches.memory_format)


def _key(*tensors: torch.Tensor | None):
    try:  # inference tensors have no version counter: then nothing is cached
        return tuple((weakref.ref(t), t.data_ptr(), t._version) for t in tensors if t is not None)
    except RuntimeError:
        return None


def _same(a, b) -> bool:
    return a is not None and b is not None and len(a) == len(b) and all(
        x[0]() is not None and x[0]() is y[0]() and x[1:] == y[1:] for x, y in zip(a, b))


class _Cache(dict):
    """Derived tensors of a module: never copied or pickled with it (a copy rebuilds its own;
    prepacked oneDNN weights cannot be copied at all)."""

    def __deepcopy__(self, memo) -> "_Cache":
        return _Cache()

    def __reduce__(self):
        return _Cache, ()


def cached(module: nn.Module, name: str, build: Callable[[], object], *tensors: torch.Tensor | None):
    """``build()``, cached on ``module`` under ``name`` until one of ``tensors`` changes."""
    cache = module.__dict__.get("_fast_cache")
    if cache is None:
        cache = module.__dict__["_fast_cache"] = _Cache()
    key = _key(*tensors)
    hit = cache.get(name)
    if hit is not None and _same(hit[0], key):
        return hit[1]
    with torch.inference_mode(False), torch.no_grad():  # plain tensors: usable in any mode
        value = build()
    if key is not None:
        cache[name] = (key, value)
    return value


def conv_weights(conv: nn.Conv2d, dtype: torch.dtype, switches: FastPath) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``conv``'s weight and bias as ``dtype``, the weight in the fast path's memory format; cached."""
    def build():
        b = conv.bias.to(dtype) if conv.bias is not None else None
        return to_fast(conv.weight, dtype, switches), b
    return cached(conv, f"plain-{dtype}-{switches.memory_format}", build, conv.weight, conv.bias)


def conv_bn_weights(conv: nn.Conv2d, bn: nn.BatchNorm2d, dtype: torch.dtype,
                    switches: FastPath) -> tuple[torch.Tensor, torch.Tensor]:
    """``bn(conv(x))`` with ``bn``'s running statistics (eval mode) as one convolution's
    ``(weight, bias)``, the weight channels_last, both ``dtype``: ``w s`` and
    ``(b - mean) s + beta`` with ``s = gamma / sqrt(var + eps)``; cached until a parameter or
    a running statistic changes."""
    def build():
        gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
        beta = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
        scale = gamma / torch.sqrt(bn.running_var + bn.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        return (to_fast(conv.weight * scale.view(-1, 1, 1, 1), dtype, switches),
                ((bias - bn.running_mean) * scale + beta).to(dtype))
    return cached(conv, f"bn-folded-{dtype}-{switches.memory_format}", build, conv.weight, conv.bias, bn.weight,
                  bn.bias, bn.running_mean, bn.running_var)


def gate_weights(conv: nn.Conv2d, hidden: int, dtype: torch.dtype, inner: str, outer: str,
                 switches: FastPath) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fused LSTM gate conv's weights reordered ``(i, f, o, g)`` with activations folded.

    ``inner`` (gate activation) ``'hard_sigmoid'``: rows i, f, o scaled by 0.2 and their
    bias by 0.2 plus 0.5, so that ``clamp(., 0, 1)`` finishes it. ``outer`` (candidate
    activation) ``'tanh'``: row g scaled by 2, so that ``2 sigmoid(.) - 1`` finishes it.
    The source conv's output order is ``(i, f, g, o)``. Nothing is folded with ``switches.fold`` off.
    """
    inner, outer = folded(inner, outer, switches)

    def build():
        h = hidden
        order = torch.cat([torch.arange(0, 2 * h), torch.arange(3 * h, 4 * h), torch.arange(2 * h, 3 * h)])
        order = order.to(conv.weight.device)
        scale = torch.ones(4 * h, dtype=conv.weight.dtype, device=conv.weight.device)
        shift = torch.zeros_like(scale)
        if inner == "hard_sigmoid":
            scale[:3 * h], shift[:3 * h] = 0.2, 0.5
        if outer == "tanh":
            scale[3 * h:] = 2.0
        w = conv.weight[order] * scale.view(-1, 1, 1, 1)
        b = conv.bias[order] * scale + shift if conv.bias is not None else (shift if inner == "hard_sigmoid" else None)
        return to_fast(w, dtype, switches), (b.to(dtype) if b is not None else None)
    return cached(conv, f"gates-{dtype}-{hidden}-{inner}-{outer}-{switches.memory_format}", build, conv.weight,
                  conv.bias)


def folded(inner: str, outer: str, switches: FastPath) -> tuple[str, str]:
    """The activation names whose affine parts are folded into the gate weights (``"-"``: none)."""
    if not switches.fold:
        return ("sigmoid" if inner == "sigmoid" else "-"), "-"
    return inner, outer


# Whether this torch offers oneDNN's prepacked convolution (a fact about the build, not a switch),
# and the dtypes it refused at run time (bf16 on a CPU without native bf16): those use the public
# op from then on, while the others keep the packed one, so a bf16 run leaves fp32 numerics alone.
_PACKED = hasattr(torch.ops, "mkldnn") and hasattr(torch.ops.mkldnn, "_convolution_pointwise") \
    and torch.backends.mkldnn.is_available()
_PACKED_REFUSED: set[torch.dtype] = set()


def _packed(ref: nn.Conv2d, w: torch.Tensor, padding: list[int], x: torch.Tensor):
    """``w`` reordered once into oneDNN's blocked layout (F.conv2d reorders it at every call,
    which costs ~25% of a convolution with a large weight on small maps); cached on ``ref``."""
    return cached(ref, f"packed-{w.dtype}-{tuple(w.shape)}", lambda: torch.ops.mkldnn._reorder_convolution_weight(
        w, padding, list(ref.stride), list(ref.dilation), ref.groups, list(x.shape)), w)


def _post_op_(y: torch.Tensor, post: str | None, scalars: tuple) -> torch.Tensor:
    if post == "relu":
        return y.relu_()
    if post == "hardtanh":
        return y.clamp_(*scalars)
    if post == "sigmoid":
        return y.sigmoid_()
    return y


def conv(x: torch.Tensor, weights: tuple[torch.Tensor, torch.Tensor | None], ref: nn.Conv2d, switches: FastPath,
         padding: tuple[int, int] | None = None, post: str | None = None, scalars: tuple = ()) -> torch.Tensor:
    """``ref``'s convolution (stride, dilation, groups; ``padding`` unless given) of ``x`` with
    (cached) ``weights``, then ``post`` (``"relu"``, ``"sigmoid"``, ``"hardtanh"`` = clamp to
    ``scalars``): oneDNN with prepacked weights and the activation fused on CPU where torch
    offers it (and ``switches.packed``), else ``F.conv2d`` and the activation in place."""
    pad = list(padding if padding is not None else ref.padding)
    if (_PACKED and x.dtype not in _PACKED_REFUSED and switches.packed and x.device.type == "cpu"
            and ref.padding_mode == "zeros" and not isinstance(ref.padding, str)):
        try:
            return torch.ops.mkldnn._convolution_pointwise(
                x, _packed(ref, weights[0], pad, x), weights[1], pad, list(ref.stride), list(ref.dilation),
                ref.groups, post or "none", list(scalars), "")
        except (RuntimeError, TypeError):  # an op this torch lacks or refuses: the public one from now on
            _PACKED_REFUSED.add(x.dtype)
    return _post_op_(F.conv2d(x, weights[0], weights[1], ref.stride, pad, ref.dilation, ref.groups), post, scalars)


# Nearest 2x upsampling then a 3x3 convolution = four 2x2 convolutions of the small map, one
# per output parity (p, q): output row 2i + p reads upsampled rows 2i + p - 1 .. 2i + p + 1,
# which are small rows i - 1, i, i (p = 0) or i, i, i + 1 (p = 1). _PARITY[p] sums the kernel
# rows that land on the same small row: 16 instead of 36 multiply-adds per 2x2 block.
_PARITY = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])


def parity_weights(w: torch.Tensor) -> torch.Tensor:
    """``(O, I, 3, 3)`` -> ``(4 O, I, 2, 2)``: the 2x2 kernels of parities (0,0), (0,1), (1,0), (1,1)."""
    m = _PARITY.to(w)
    return torch.cat([torch.einsum("ay,bx,oiyx->oiab", m[p], m[q], w) for p in (0, 1) for q in (0, 1)])


def add_upsampled_conv_(out: torch.Tensor, small: torch.Tensor, weights: torch.Tensor, ref: nn.Conv2d,
                        switches: FastPath) -> torch.Tensor:
    """``out += conv3x3(upsample_nearest_2x(small))`` (padding 1, no bias), computed on ``small``
    with :func:`parity_weights` ``weights``; ``out`` ``(B, O, 2h, 2w)``, ``small`` ``(B, I, h, w)``."""
    h, w, o = small.shape[2], small.shape[3], out.shape[1]
    parts = conv(small, (weights, None), ref, switches, padding=(1, 1))  # 2x2 kernels: (B, 4 O, h + 1, w + 1)
    for k, (p, q) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[:, :, p::2, q::2] += parts[:, k * o:(k + 1) * o, p:p + h, q:q + w]
    return out


def sequential(seq: nn.Sequential, x: torch.Tensor, dtype: torch.dtype, switches: FastPath) -> torch.Tensor:
    """``seq(x)`` without grad: its ``Conv2d`` through :func:`conv` (``x`` made ``dtype`` in the
    fast path's memory format first), ``LeakyReLU``/``ReLU`` in place; other modules called as they are."""
    x = to_fast(x, dtype, switches)
    for m in seq:
        if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros":
            x = conv(x, conv_weights(m, dtype, switches), m, switches)
        elif isinstance(m, nn.LeakyReLU):
            x = F.leaky_relu_(x, m.negative_slope)
        elif isinstance(m, nn.ReLU):
            x = x.relu_()
        else:
            x = m(x)
    return x
