"""Several videos streamed through one method at once: their states stacked into one batch and split again.

A recurrent method's stream state is a tree of tensors with the batch on dim 0 (tuples,
lists, named tuples, dicts; ``None`` where a part does not exist yet). Streams whose chunks
have the same length and whose states have the same structure go through the network as one
batch: :func:`group_streams` finds them, :func:`stack_states` concatenates their states and
:func:`unstack_states` gives each stream its own part back. The network treats every batch
row on its own, so each stream's predictions are those it would get alone (to float
rounding).

Example:
    >>> for idx in group_streams(frames, states, lambda f, s: (f.shape[0], s is None)):
    ...     batched = stack_states([states[i] for i in idx])      # batch len(idx)
    ...     parts = unstack_states(batched, len(idx))              # one state per stream
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Sequence

import torch

__all__ = ["group_streams", "stack_states", "unstack_states"]


def group_streams(frames: Sequence[torch.Tensor], states: Sequence[Any],
                  key: Callable[[torch.Tensor, Any], Hashable]) -> list[list[int]]:
    """Indices of the streams that can share a forward pass, grouped by ``key(frames[i], states[i])``
    (groups in order of their first stream, streams in order within a group)."""
    groups: dict[Hashable, list[int]] = {}
    for i, (f, s) in enumerate(zip(frames, states)):
        groups.setdefault(key(f, s), []).append(i)
    return list(groups.values())


def stack_states(states: Sequence[Any]) -> Any:
    """One state for the streams of ``states``: tensors concatenated on dim 0, the same containers.

    ``None`` parts must be ``None`` in every state and other leaves (ints, strings) equal;
    anything else raises ``ValueError`` (such streams belong in different groups).
    """
    first = states[0]
    if isinstance(first, torch.Tensor):
        if not all(isinstance(s, torch.Tensor) for s in states):
            raise ValueError("stream states differ in structure: a tensor in one, not in another")
        return torch.cat(list(states), dim=0)
    if isinstance(first, dict):
        if any(not isinstance(s, dict) or s.keys() != first.keys() for s in states):
            raise ValueError("stream states differ in structure: dicts with different keys")
        return {k: stack_states([s[k] for s in states]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(type(s) is not type(first) or len(s) != len(first) for s in states):
            raise ValueError("stream states differ in structure: sequences of different types or lengths")
        parts = [stack_states([s[j] for s in states]) for j in range(len(first))]
        if isinstance(first, list):
            return parts
        return type(first)(*parts) if hasattr(first, "_fields") else tuple(parts)
    if any(s != first for s in states):  # None, ints, ...: one value for the whole batch
        raise ValueError(f"stream states differ in a value that is not batched: {[s for s in states]}")
    return first


def unstack_states(state: Any, count: int) -> list[Any]:
    """``count`` states from one stacked by :func:`stack_states` (each tensor split evenly on dim 0)."""
    if isinstance(state, torch.Tensor):
        if state.shape[0] % count:
            raise ValueError(f"cannot split a batch of {state.shape[0]} into {count} streams")
        return list(state.chunk(count, dim=0)) if count > 1 else [state]
    if isinstance(state, dict):
        parts = {k: unstack_states(v, count) for k, v in state.items()}
        return [{k: parts[k][i] for k in state} for i in range(count)]
    if isinstance(state, (tuple, list)):
        parts = [unstack_states(v, count) for v in state]
        if isinstance(state, list):
            return [[p[i] for p in parts] for i in range(count)]
        make = (lambda items: type(state)(*items)) if hasattr(state, "_fields") else tuple
        return [make([p[i] for p in parts]) for i in range(count)]
    return [state] * count
