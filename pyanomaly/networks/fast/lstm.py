"""The LSTM state update of the fast path, from the raw gates of :func:`~.ops.gate_weights`.

Shared by PredNet's representation units and the ConvLSTM cell. In place, the affine parts
of the activations already folded into the gates (:func:`~.ops.folded`); or, with the switch
``fused`` (``TEST.FUSED_UPDATE``), as one ``torch.compile``'d pass reading the gates and ``c``
and writing ``c`` and ``h``.

Example:
    >>> w, b = ops.gate_weights(cell.conv, hidden, dtype, "sigmoid", "tanh", switches)
    >>> h, c = lstm_update(ops.conv(torch.cat([x, h], 1), (w, b), cell.conv, switches), c, hidden,
    ...                    "sigmoid", "tanh", torch.sigmoid, torch.tanh, dtype, switches)
"""
from __future__ import annotations

from typing import Callable

import torch

from .ops import folded
from .switches import FastPath


def lstm_update(gates: torch.Tensor, c_prev: torch.Tensor, hidden: int, inner: str, outer: str,
                inner_fn: Callable, outer_fn: Callable, h_dtype: torch.dtype, switches: FastPath,
                peephole: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
                activated: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM state update from raw gates ``(i, f, o, g)`` as made by :func:`.ops.gate_weights`.

    Returns ``(h, c)``: ``c = f c_prev + i act(g)``, ``h = o act(c)`` (``c`` in ``c_prev``'s
    dtype, ``h`` as ``h_dtype``). ``peephole``: ``(w_ci, w_cf, w_co)`` added to the raw i, f
    (times ``c_prev``) and o (times the new ``c``) before their activation. ``activated``: the
    gates are already through ``sigmoid`` (fused into the convolution; ``inner == "sigmoid"``).
    ``switches.fused``: one ``torch.compile``'d pass (:func:`_fused_update`).
    """
    n = hidden
    inner, outer = folded(inner, outer, switches)
    if switches.fused:
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
    """:func:`lstm_update` out of place (``inner``, ``outer`` already :func:`.ops.folded`): the
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


# The compiled update, built on first use and shared by every cell of the process.
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
