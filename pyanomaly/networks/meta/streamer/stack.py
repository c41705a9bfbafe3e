"""A STREAMER stack: layers that grow on the fly and segment a stream into a hierarchy of events.

Mounir, Vijayaraghavan and Sarkar, "STREAMER: Streaming Representation Learning and Event
Segmentation in a Hierarchical Manner", NeurIPS 2023. Frames go in one at a time. For each
input, a layer (see ``layer.py``) predicts it from its buffer and the layers above, measures
the loss, learns from it, and asks its boundary rule (``demarcation.py``) whether the input
starts a new event. If not, the input joins the buffer. If so, the buffer's summary (the
closed event) becomes the next input of the layer above and the buffer restarts with the
surprising input. When the top layer closes an event, has seen ``evolve_every`` inputs and
the stack has fewer than ``max_layers`` layers, a layer is stacked on it and receives that
event as its first input.

The stack records every closed event: base events span frames; an event of layer ``l > 0``
spans the events of layer ``l - 1`` it was made of (``children``, indices into that layer's
list). :meth:`StreamerStack.events` gives the record of each video so far.

Layers are created with their own seeded generator (``seed`` + layer number), so a stack's
weights never depend on the global random state: a stream is reproduced exactly from the
same frames, and a stack restored from ``state_dict()`` (which holds everything: weights,
optimisers, buffers, rule histories, records) continues as if never stopped.

Example:
    >>> stack = StreamerStack(StreamerSettings(feature_dim=32, max_layers=3, evolve_every=5))
    >>> stack.reset_stream()
    >>> for frame in video:                  # (C, H, W) in [0, 1]
    ...     prediction = stack.step(frame)   # (C, H, W) predicted before seeing it, or None
    >>> stack.events()[-1]["layers"][0]      # base events of this video
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .layer import StreamerLayer
from .settings import StreamerSettings


class StreamerStack(nn.Module):
    """The layers of one STREAMER hierarchy and their event records.

    Args:
        settings: a :class:`~.settings.StreamerSettings` (or a dict of its fields).
        seed: seeds each layer's initial weights (layer ``l`` with ``seed + l``).
    """

    def __init__(self, settings: StreamerSettings | dict, seed: int = 0):
        super().__init__()
        self.settings = settings if isinstance(settings, StreamerSettings) else StreamerSettings(**settings)
        self.seed = int(seed)
        self.layers = nn.ModuleList()
        self.frame = 0  # frames seen in the current video
        self.videos: list[dict] = []  # per video: {"frames": n, "layers": [[event, ...], ...]}
        self.last_base_loss: float | None = None  # for progress logs only
        self.add_layer()

    # -- structure ------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def add_layer(self) -> StreamerLayer:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + len(self.layers))
            layer = StreamerLayer(self.settings, len(self.layers))
        self.layers.append(layer)
        for video in self.videos:
            while len(video["layers"]) < len(self.layers):
                video["layers"].append([])
        return layer

    def grow_to(self, n: int) -> None:
        """Add layers until there are ``n`` (before loading a state dict of ``n`` layers)."""
        if n > self.settings.max_layers:
            raise ValueError(f"a stack of {n} layers exceeds max_layers={self.settings.max_layers}")
        while len(self.layers) < n:
            self.add_layer()

    # -- the stream -------------------------------------------------------------------------
    def reset_stream(self) -> None:
        """Start a new video: the open events of the last one are recorded as cut, every layer's stream restarts."""
        if self.videos:
            self.videos[-1] = self._with_open_events(self.videos[-1])
        for layer in self.layers:
            layer.reset_stream()
        self.frame = 0
        self.videos.append({"frames": 0, "layers": [[] for _ in self.layers]})

    def step(self, frame: torch.Tensor, learn: bool = True) -> torch.Tensor | None:
        """Feed one frame ``(C, H, W)``; returns the base layer's prediction of it ``(C, H, W)`` (made from
        earlier frames only), or None when the base buffer was empty (first frame of a video).

        With ``learn`` every layer that receives an input takes an optimisation step.
        """
        if not self.videos:
            self.reset_stream()
        if frame.dim() != 3 or frame.shape[0] != self.settings.channels:
            raise ValueError(f"StreamerStack.step expects one frame ({self.settings.channels}, H, W) "
                             f"(channels={self.settings.channels}), got {tuple(frame.shape)}")
        t = self.frame
        size = tuple(frame.shape[-2:])
        base_prediction = None
        x, child, level = frame, None, 0
        while True:
            layer = self.layers[level]
            prediction, loss = self._predict_and_learn(level, x, size if level == 0 else None, learn)
            if level == 0:
                self.last_base_loss = loss
                if prediction is not None:
                    base_prediction = prediction.detach()[0]
            layer.inputs_seen += 1
            reason = layer.demarcation(loss, len(layer.buffer)) if loss is not None else None
            if reason is None:
                self._join(layer, x, t, child)
                break
            # the input is surprising: close the open event, pass its summary up, start anew with the input
            with torch.no_grad():
                summary = layer.representation()[0].detach()
            closed = self._close(level, t, reason, loss)
            layer.buffer, layer.open_start, layer.open_children = [], None, []
            self._join(layer, x, t, child)
            if level + 1 == len(self.layers):
                if len(self.layers) >= self.settings.max_layers or layer.inputs_seen < self.settings.evolve_every:
                    break
                self.add_layer()
            x, child, level = summary, closed, level + 1
        self.frame += 1
        self.videos[-1]["frames"] = self.frame
        return base_prediction

    def _predict_and_learn(self, level: int, x: torch.Tensor, size, learn: bool):
        """Layer ``level``'s prediction of its input ``x`` and the loss (a float); (None, None) on an empty buffer."""
        layer = self.layers[level]
        if not layer.buffer:
            return None, None
        above = []
        if self.settings.reps_fn == "stack":
            for upper in self.layers[level + 1:]:
                if not upper.buffer:
                    break  # layers fill bottom-up: the ones above an empty layer are empty too
                above.append(upper)
        with torch.set_grad_enabled(learn):
            context = [upper.representation() for upper in above]
            prediction = layer.predict(context, size)
            loss = layer.loss(prediction, x)
        if learn:
            loss.backward()
            layer.count_contribution("temporal", "predictor")
            for upper in above:
                upper.count_contribution("temporal")
            layer.step()
        return prediction, float(loss.detach())

    def _join(self, layer: StreamerLayer, x: torch.Tensor, t: int, child: int | None) -> None:
        layer.push(x)
        if layer.layer_num == 0:
            if layer.open_start is None:
                layer.open_start = t
        else:
            layer.open_children.append(child)

    def _close(self, level: int, t: int, reason: str, loss: float | None) -> int:
        """Record layer ``level``'s open event as closed before frame ``t``; returns its index."""
        layer = self.layers[level]
        record = self.videos[-1]["layers"]
        event = self._event(level, layer, record, t - 1)
        event["closed_by"] = reason
        event["boundary_loss"] = loss
        record[level].append(event)
        return len(record[level]) - 1

    @staticmethod
    def _event(level: int, layer: StreamerLayer, record: list[list[dict]], end: int) -> dict:
        if level == 0:
            return {"start": layer.open_start, "end": end, "children": []}
        children = list(layer.open_children)
        below = record[level - 1]
        return {"start": below[children[0]]["start"], "end": below[children[-1]]["end"], "children": children}

    def _with_open_events(self, video: dict) -> dict:
        """A copy of ``video``'s record with each layer's open event added as cut by the end of the stream."""
        video = copy.deepcopy(video)
        if video["frames"] == 0:
            return video
        pending: int | None = None  # the cut event of the layer below, a child of this layer's open event
        for level, layer in enumerate(self.layers):
            events = video["layers"][level]
            children = list(layer.open_children) + ([pending] if pending is not None else [])
            if level == 0 and layer.open_start is None or level > 0 and not children:
                break
            if level == 0:
                event = {"start": layer.open_start, "end": video["frames"] - 1, "children": []}
            else:
                below = video["layers"][level - 1]
                event = {"start": below[children[0]]["start"], "end": below[children[-1]]["end"],
                         "children": children}
            event.update(closed_by="end_of_stream", boundary_loss=None)
            events.append(event)
            pending = len(events) - 1
        return video

    def events(self) -> list[dict]:
        """The record of every video so far, the current one with its open events cut at its last frame."""
        if not self.videos:
            return []
        return self.videos[:-1] + [self._with_open_events(self.videos[-1])]

    def clear_events(self) -> None:
        """Forget the records of finished videos (the current stream goes on)."""
        self.videos = self.videos[-1:]

    # -- checkpoints ------------------------------------------------------------------------
    def get_extra_state(self) -> dict:
        return {"frame": self.frame, "videos": copy.deepcopy(self.videos), "num_layers": len(self.layers)}

    def set_extra_state(self, state: dict) -> None:
        self.frame = int(state["frame"])
        self.videos = copy.deepcopy(state["videos"])

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self.grow_to(count_layers(state_dict))
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def count_layers(state_dict: dict, prefix: str = "") -> int:
    """Number of layers a stack's ``state_dict`` (keys under ``prefix``) holds."""
    head = f"{prefix}layers."
    found = {int(k[len(head):].split(".", 1)[0]) for k in state_dict if k.startswith(head)}
    return max(found) + 1 if found else 0
