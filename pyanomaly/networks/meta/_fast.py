"""Inference fast path shared by the recurrent networks (internal; see docs/benchmarks.md).

Under ``torch.no_grad`` or ``torch.inference_mode`` PredNet, the ConvLSTM cell, the
encoders and decoders built on them, and the U-Net (in eval mode: its batch norms are folded
into the convolutions' cached weights) run an optimised step that equals their plain step
within float tolerance (with grad enabled they run the plain step, so training and its
gradients are unchanged):

* tensors are kept ``channels_last`` (oneDNN's native layout on CPU: max-pooling and nearest
  upsampling are 3-25x faster in it, and the convolutions are no slower);
* the weights of every convolution are cast and laid out once and cached (refreshed when a
  parameter changes), not converted at every call;
* the LSTM gate activations' affine parts are folded into the cached gate weights:
  ``hard_sigmoid(x) = clamp(0.2 x + 0.5, 0, 1)`` becomes one in-place ``clamp_`` and
  ``tanh(x) = 2 sigmoid(2 x) - 1`` (torch's CPU ``tanh`` is scalar code, several times slower
  than its ``sigmoid``); the gates are reordered ``(i, f, o, g)`` so one op activates i, f, o;
* opt-in (switch ``fused``, ``TEST.FUSED_UPDATE``): the LSTM state update runs as one
  ``torch.compile``-generated pass reading the gates and ``c`` and writing ``c`` and ``h``,
  instead of about nine element-wise torch ops, each a pass over the state;
* under ``torch.autocast(..., dtype=torch.bfloat16)`` (opt-in) convolutions run in bfloat16
  with weights cast once, and the ``R``/``E``/``h`` states stay bfloat16; cell states ``c``
  stay in the parameters' dtype (float32).
"""
from __future__ import annotations

import contextlib
import weakref
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS_LAST = torch.channels_last
# Activations that commute with max-pooling (monotone non-decreasing).
MONOTONE = frozenset({"relu", "tanh", "sigmoid", "hard_sigmoid", "linear", "elu", "leaky_relu"})


# Switches of the fast path, all but "fused" (opt-in: it needs torch.compile) on by default;
# the benchmark turns them off one at a time.
_STATE = {"enabled": True, "channels_last": True, "fold": True, "packed": True, "zero_skip": True,
          "subpixel": True, "fused": False}


@contextlib.contextmanager
def options(**switches: bool):
    """Within it the named switches of ``_STATE`` take the given values (then are restored)."""
    unknown = set(switches) - set(_STATE)
    if unknown:
        raise ValueError(f"unknown fast-path switch(es) {sorted(unknown)}; known: {sorted(_STATE)}")
    before = dict(_STATE)
    _STATE.update(switches)
    try:
        yield
    finally:
        _STATE.update(before)


def fused_update(on: bool = True):
    """Within it (``on``) the LSTM update of PredNet and every ConvLSTM cell runs as one
    ``torch.compile``'d pass (``TEST.FUSED_UPDATE``); compiled on first use."""
    return options(fused=bool(on))


def reference_mode():
    """Within it the plain (reference) steps run even without grad: the before/after baseline."""
    return options(enabled=False)


def enabled(name: str) -> bool:
    return _STATE[name]


def layout() -> torch.memory_format:
    """The memory format of the fast path's tensors."""
    return CHANNELS_LAST if _STATE["channels_last"] else torch.contiguous_format


def compute_dtype(param: torch.Tensor) -> torch.dtype | None:
    """dtype of the fast path's convolutions, or None where the plain step must run (grad
    enabled, or within :func:`reference_mode`)."""
    if torch.is_grad_enabled() or not _STATE["enabled"]:
        return None
    kind = param.device.type
    if kind in ("cpu", "cuda") and torch.is_autocast_enabled(kind):
        dtype = torch.get_autocast_dtype(kind)
        if dtype in (torch.bfloat16, torch.float16) and param.dtype == torch.float32:
            return dtype
    return param.dtype


def inference_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` (4-D) channels_last where the fast path runs (no grad), else unchanged: the
    full-resolution convolutions of the encoders and decoders are 2-3x faster in it."""
    return x.contiguous(memory_format=layout()) if not torch.is_grad_enabled() and _STATE["enabled"] else x


def to_fast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` as ``dtype`` and channels_last (no copy when it already is)."""
    return x.to(dtype=dtype, memory_format=layout())


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


def conv_weights(conv: nn.Conv2d, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``conv``'s weight and bias as ``dtype``, the weight channels_last; cached."""
    def build():
        b = conv.bias.to(dtype) if conv.bias is not None else None
        return to_fast(conv.weight, dtype), b
    return cached(conv, f"plain-{dtype}-{layout()}", build, conv.weight, conv.bias)


def conv_bn_weights(conv: nn.Conv2d, bn: nn.BatchNorm2d, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``bn(conv(x))`` with ``bn``'s running statistics (eval mode) as one convolution's
    ``(weight, bias)``, the weight channels_last, both ``dtype``: ``w s`` and
    ``(b - mean) s + beta`` with ``s = gamma / sqrt(var + eps)``; cached until a parameter or
    a running statistic changes."""
    def build():
        gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
        beta = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
        scale = gamma / torch.sqrt(bn.running_var + bn.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        return to_fast(conv.weight * scale.view(-1, 1, 1, 1), dtype), ((bias - bn.running_mean) * scale + beta).to(dtype)
    return cached(conv, f"bn-folded-{dtype}-{layout()}", build, conv.weight, conv.bias, bn.weight, bn.bias,
                  bn.running_mean, bn.running_var)


def gate_weights(conv: nn.Conv2d, hidden: int, dtype: torch.dtype, inner: str,
                 outer: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fused LSTM gate conv's weights reordered ``(i, f, o, g)`` with activations folded.

    ``inner`` (gate activation) ``'hard_sigmoid'``: rows i, f, o scaled by 0.2 and their
    bias by 0.2 plus 0.5, so that ``clamp(., 0, 1)`` finishes it. ``outer`` (candidate
    activation) ``'tanh'``: row g scaled by 2, so that ``2 sigmoid(.) - 1`` finishes it.
    The source conv's output order is ``(i, f, g, o)``.
    """
    inner, outer = folded(inner, outer)

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
        return to_fast(w, dtype), (b.to(dtype) if b is not None else None)
    return cached(conv, f"gates-{dtype}-{hidden}-{inner}-{outer}-{layout()}", build, conv.weight, conv.bias)


def folded(inner: str, outer: str) -> tuple[str, str]:
    """The activation names whose affine parts are folded into the gate weights (``"-"``: none)."""
    if not _STATE["fold"]:
        return ("sigmoid" if inner == "sigmoid" else "-"), "-"
    return inner, outer


_PACKED = {"ok": hasattr(torch.ops, "mkldnn") and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
           and torch.backends.mkldnn.is_available()}


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


def conv(x: torch.Tensor, weights: tuple[torch.Tensor, torch.Tensor | None], ref: nn.Conv2d,
         padding: tuple[int, int] | None = None, post: str | None = None, scalars: tuple = ()) -> torch.Tensor:
    """``ref``'s convolution (stride, dilation, groups; ``padding`` unless given) of ``x`` with
    (cached) ``weights``, then ``post`` (``"relu"``, ``"sigmoid"``, ``"hardtanh"`` = clamp to
    ``scalars``): oneDNN with prepacked weights and the activation fused on CPU where torch
    offers it, else ``F.conv2d`` and the activation in place."""
    pad = list(padding if padding is not None else ref.padding)
    if (_PACKED["ok"] and _STATE["packed"] and x.device.type == "cpu" and ref.padding_mode == "zeros"
            and not isinstance(ref.padding, str)):
        try:
            return torch.ops.mkldnn._convolution_pointwise(
                x, _packed(ref, weights[0], pad, x), weights[1], pad, list(ref.stride), list(ref.dilation),
                ref.groups, post or "none", list(scalars), "")
        except (RuntimeError, TypeError):  # an op this torch lacks or refuses: use the public one from now on
            _PACKED["ok"] = False
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


def add_upsampled_conv_(out: torch.Tensor, small: torch.Tensor, weights: torch.Tensor, ref: nn.Conv2d) -> torch.Tensor:
    """``out += conv3x3(upsample_nearest_2x(small))`` (padding 1, no bias), computed on ``small``
    with :func:`parity_weights` ``weights``; ``out`` ``(B, O, 2h, 2w)``, ``small`` ``(B, I, h, w)``."""
    h, w, o = small.shape[2], small.shape[3], out.shape[1]
    parts = conv(small, (weights, None), ref, padding=(1, 1))  # 2x2 kernels: (B, 4 O, h + 1, w + 1)
    for k, (p, q) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[:, :, p::2, q::2] += parts[:, k * o:(k + 1) * o, p:p + h, q:q + w]
    return out


def sequential(seq: nn.Sequential, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``seq(x)`` without grad: its ``Conv2d`` through :func:`conv` (``x`` made channels_last
    ``dtype`` first), ``LeakyReLU``/``ReLU`` in place; other modules called as they are."""
    x = to_fast(x, dtype)
    for m in seq:
        if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros":
            x = conv(x, conv_weights(m, dtype), m)
        elif isinstance(m, nn.LeakyReLU):
            x = F.leaky_relu_(x, m.negative_slope)
        elif isinstance(m, nn.ReLU):
            x = x.relu_()
        else:
            x = m(x)
    return x


def tanh_from_doubled_(x2: torch.Tensor) -> torch.Tensor:
    """``tanh(x)`` from ``x2 = 2 x``, in place: ``2 sigmoid(2 x) - 1``."""
    return x2.sigmoid_().mul_(2).sub_(1)


def lstm_update(gates: torch.Tensor, c_prev: torch.Tensor, hidden: int, inner: str, outer: str,
                inner_fn: Callable, outer_fn: Callable, h_dtype: torch.dtype,
                peephole: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
                activated: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM state update from raw gates ``(i, f, o, g)`` as made by :func:`gate_weights`.

    Returns ``(h, c)``: ``c = f c_prev + i act(g)``, ``h = o act(c)`` (``c`` in ``c_prev``'s
    dtype, ``h`` as ``h_dtype``). ``peephole``: ``(w_ci, w_cf, w_co)`` added to the raw i, f
    (times ``c_prev``) and o (times the new ``c``) before their activation. ``activated``: the
    gates are already through ``sigmoid`` (fused into the convolution; ``inner == "sigmoid"``).
    """
    n = hidden
    inner, outer = folded(inner, outer)
    if _STATE["fused"]:
        return _fused_update(gates, c_prev, inner, outer, inner_fn, outer_fn, h_dtype, peephole, activated)
    if gates.dtype != c_prev.dtype:  # one cast of the gates beats a hidden cast in every mixed op
        gates = gates.to(c_prev.dtype)
    i, f, o, g = gates[:, :n], gates[:, n:2 * n], gates[:, 2 * n:3 * n], gates[:, 3 * n:]

    def act_(x: torch.Tensor) -> torch.Tensor:  # the gate activation, in place
        if inner == "hard_sigmoid":
            return x.clamp_(0, 1)
        if inner == "sigmoid":
            return x.sigmoid_()
        return x.copy_(inner_fn(x))

    if activated:
        pass
    elif peephole is None:
        act_(gates[:, :3 * n]) if outer != "tanh" or inner != "sigmoid" else gates.sigmoid_()
    else:  # the folded scale applies to the peephole terms as well
        s = 0.2 if inner == "hard_sigmoid" else 1.0
        i.addcmul_(peephole[0], c_prev, value=s)
        f.addcmul_(peephole[1], c_prev, value=s)
        act_(gates[:, :2 * n])
    if outer == "tanh":  # g holds 2 g: i tanh(g) = 2 i sigmoid(2 g) - i
        if not (activated or (peephole is None and inner == "sigmoid")):
            g.sigmoid_()
        c = torch.mul(f, c_prev)
        c.addcmul_(i, g, value=2).sub_(i)
    else:
        c = torch.mul(f, c_prev)
        c.addcmul_(i, outer_fn(g))
    if peephole is not None:
        o.addcmul_(peephole[2], c, value=0.2 if inner == "hard_sigmoid" else 1.0)
        act_(o)
    if outer == "tanh":  # h = o tanh(c) = 2 o sigmoid(2 c) - o
        sc = torch.mul(c, 2).sigmoid_()
        h = torch.addcmul(o, o, sc, value=-2).neg_()
    else:
        h = outer_fn(c).mul_(o)
    return h.to(h_dtype), c  # a dense tensor, not a view that keeps the gates alive


def _update_math(gates: torch.Tensor, c_prev: torch.Tensor, inner: str, outer: str, inner_fn: Callable,
                 outer_fn: Callable, h_dtype: torch.dtype,
                 peephole: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None, activated: bool):
    """:func:`lstm_update` out of place (``inner``, ``outer`` already :func:`folded`): the
    form ``torch.compile`` fuses into one pass over the gates and ``c``."""
    n = c_prev.shape[1]
    gates = gates.to(c_prev.dtype)
    i, f, o, g = gates[:, :n], gates[:, n:2 * n], gates[:, 2 * n:3 * n], gates[:, 3 * n:]

    def act(x: torch.Tensor) -> torch.Tensor:
        if inner == "hard_sigmoid":
            return x.clamp(0, 1)
        if inner == "sigmoid":
            return torch.sigmoid(x)
        return inner_fn(x)
    s = 0.2 if inner == "hard_sigmoid" else 1.0
    if peephole is not None:
        i = i + s * peephole[0] * c_prev
        f = f + s * peephole[1] * c_prev
    if not activated:
        i, f = act(i), act(f)
        if outer == "tanh":
            g = torch.sigmoid(g)
    c = f * c_prev + i * (2 * g - 1 if outer == "tanh" else outer_fn(g))
    if peephole is not None:
        o = o + s * peephole[2] * c
    if not activated:
        o = act(o)
    h = o * (torch.tanh(c) if outer == "tanh" else outer_fn(c))
    return h.to(h_dtype), c


_FUSED: dict[str, Callable] = {}


def _fused_update(*args):
    """:func:`_update_math` through ``torch.compile`` (built on first use; dynamic shapes, so
    one compiled kernel serves every batch and map size of a given set of activations). Raises
    dynamo's recompile limit to at least 64."""
    fn = _FUSED.get("fn")
    if fn is None:
        # one graph per set of activations, dtypes and size-1 dimensions (batch 1 when streaming):
        # past dynamo's recompile limit (8) new ones would silently run eager, out of place
        config = torch._dynamo.config
        limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
        setattr(config, limit, max(getattr(config, limit), 64))
        fn = _FUSED["fn"] = torch.compile(_update_math, dynamic=True)
    try:
        return fn(*args)
    except Exception as exc:  # no C++ compiler, an unsupported backend, ...
        raise RuntimeError("the fused LSTM update (TEST.FUSED_UPDATE, fast-path switch 'fused') could not be "
                           f"compiled by torch.compile: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                           "it needs a working C++ compiler on CPU (Triton on GPU): set TEST.FUSED_UPDATE False") from exc
