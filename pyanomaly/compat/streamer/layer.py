"""STREAMER's ``streamer.models.layer``: ``StreamerLayerArguments`` and the recursive ``StreamerLayer``.

Mounir, Vijayaraghavan and Sarkar, "STREAMER: Streaming Representation Learning and Event
Segmentation in a Hierarchical Manner", NeurIPS 2023. A layer predicts each input from its
buffer (and the layers above), keeps the loss, and at an event boundary passes the closed
event's summary to the layer above, which it creates once it has seen ``evolve_every``
inputs. ``optimize_layer()`` learns from the kept losses, layer by layer up the stack.
The modules, losses and boundary rules are those of :mod:`pyanomaly.networks.meta.streamer`;
:class:`~pyanomaly.networks.meta.streamer.StreamerStack` is our own driver of them.

Example:
    >>> args = StreamerLayerArguments(max_layers=3, feature_dim=64, evolve_every=50, buffer_size=10,
    ...                               loss_threshold=0.25, lr=1e-3, reps_fn=None, snippet_size=0.5)
    >>> layer = StreamerLayer(args, 0, 1, encoder=CNNEncoder, decoder=CNNDecoder)
    >>> for t, frame in enumerate(video):          # frame (1, 3, 64, 64)
    ...     layer(frame, t)
    ...     layer.optimize_layer()
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import torch
from torch import nn

from pyanomaly.networks.meta.streamer.demarcation import build_demarcation
from pyanomaly.networks.meta.streamer.layer import prediction_loss
from pyanomaly.networks.meta.streamer.settings import StreamerSettings

from .networks import HierarchicalPrediction, TemporalEncoding

__all__ = ["StreamerLayerArguments", "StreamerLayer"]


@dataclass
class StreamerLayerArguments:
    """The arguments every layer of a stack receives (meanings as in :class:`StreamerSettings`).

    ``reps_fn`` is kept as given (a function, or our setting's name ``"stack"``/``"self"``);
    a layer's prediction always reads the representations of the layers above it
    (``"self"`` restricts it to the layer's own).
    """

    max_layers: int
    feature_dim: int
    evolve_every: int
    buffer_size: int
    loss_threshold: float
    lr: float
    reps_fn: Callable | str | None
    snippet_size: float
    demarcation_mode: str = "average"
    distance_mode: str = "similarity"
    force_base_dist: bool = False
    window_size: int = 50
    modifier_type: str = "multiply"
    modifier: float = 1.0
    force_fixed_buffer: bool = False

    def __post_init__(self):
        self.to_settings()  # checks every value, naming a wrong one

    def to_settings(self, **extra) -> StreamerSettings:
        """Our :class:`StreamerSettings` with these values (``extra``: settings without a documented argument)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if not isinstance(values["reps_fn"], str):
            values["reps_fn"] = "stack"
        return StreamerSettings(**values, **extra)


class StreamerLayer(nn.Module):
    """Layer ``layer_num`` of a STREAMER stack; it creates and calls the layer above (``parent``).

    Args:
        args: the :class:`StreamerLayerArguments` shared by every layer.
        layer_num: index in the stack, 0 at the bottom.
        init_count: layers to create at once (a stack of ``init_count`` layers, e.g. to load
            pretrained weights); 1 to grow from a single layer.
        encoder, decoder: image encoder and decoder classes of the base layer (see
            :class:`~.networks.TemporalEncoding`); the layers above read feature vectors.
        logger: a TensorBoard-style writer; each loss is written with ``add_scalar``.

    State: ``buffer`` (inputs of the current event), ``losses`` (losses kept for
    :meth:`optimize_layer`), ``last_loss`` (a float), ``boundaries`` (``(base_counter, reason)``
    of each event this layer closed), ``parent`` (the layer above, or None).
    """

    def __init__(self, args: StreamerLayerArguments, layer_num: int, init_count: int, encoder=None, decoder=None,
                 logger=None):
        super().__init__()
        self.args, self.layer_num, self.init_count, self.logger = args, int(layer_num), int(init_count), logger
        self.settings = s = args.to_settings()
        base = self.layer_num == 0
        self.temporal_encoding = TemporalEncoding(s.feature_dim, s.buffer_size, s.lr, s.n_heads, s.num_layers,
                                                  encoder=encoder if base else None)
        self.hierarchical_prediction = HierarchicalPrediction(s.feature_dim, s.max_layers, s.lr, self.layer_num,
                                                              s.n_heads, s.num_layers, decoder=decoder if base else None)
        self.demarcation = build_demarcation(s)
        self.distance = s.distance_of_layer(self.layer_num)
        self.parent: StreamerLayer | None = None
        self.buffer: list[torch.Tensor] = []
        self.losses: list[torch.Tensor] = []
        self.last_loss: float | None = None
        self.boundaries: list[tuple[int, str]] = []
        self.inputs_seen = 0
        self.create_parent(self.layer_num + 1 < self.init_count)

    # -- structure ----------------------------------------------------------------------
    def get_num_layers(self, num: int) -> int:
        """``num`` plus the number of layers from this one up."""
        return num + 1 if self.parent is None else self.parent.get_num_layers(num + 1)

    def create_parent(self, create: bool) -> None:
        """Stack a layer on this one if ``create``, there is none yet and ``max_layers`` allows it."""
        if create and self.parent is None and self.layer_num + 1 < self.settings.max_layers:
            parent = StreamerLayer(self.args, self.layer_num + 1, self.init_count, logger=self.logger)
            self.parent = parent.to(self.temporal_encoding.position.device)

    def reset_layer(self) -> None:
        """Start a new video: empty buffers, no kept losses, no boundary history; weights kept."""
        self.buffer, self.losses, self.last_loss = [], [], None
        self.demarcation.reset()
        if self.parent is not None:
            self.parent.reset_layer()

    # -- prediction ---------------------------------------------------------------------
    def representation(self) -> torch.Tensor:
        """Summary ``[1, feature_dim]`` of the buffer."""
        return self.temporal_encoding(torch.stack(self.buffer))[0]

    def predict(self) -> torch.Tensor:
        """The next input predicted from this layer's buffer and the representations of the layers above."""
        reps = [self.representation()]
        upper = self.parent if self.settings.reps_fn == "stack" else None
        while upper is not None and upper.buffer:  # layers fill bottom-up
            reps.append(upper.representation())
            upper = upper.parent
        return self.hierarchical_prediction(torch.cat(reps))

    def forward(self, x: torch.Tensor, base_counter: int) -> None:
        """Take input ``x`` (``[1, feature_dim]``, or an image ``[1, 3, H, W]`` at the base) at frame ``base_counter``.

        With a non-empty buffer the prediction of ``x`` is made and its loss kept; a boundary
        closes the event: its summary goes up to the parent and the buffer restarts with ``x``.
        """
        self.inputs_seen += 1
        reason = None
        if self.buffer:
            prediction = self.predict()
            if prediction.numel() != x.numel():
                raise ValueError(f"StreamerLayer {self.layer_num}: prediction {tuple(prediction.shape)} and input "
                                 f"{tuple(x.shape)} differ in size (the decoder draws images of the first size)")
            loss = prediction_loss(prediction, x, self.distance)
            self.losses.append(loss)
            self.last_loss = float(loss.detach())
            if self.logger is not None:
                self.logger.add_scalar(f"loss/layer{self.layer_num}", self.last_loss, base_counter)
            reason = self.demarcation(self.last_loss, len(self.buffer))
        if reason is None:
            self.buffer.append(x[0].detach())
            if len(self.buffer) > self.settings.buffer_size:
                self.buffer.pop(0)
            return
        with torch.no_grad():
            summary = self.representation()
        self.boundaries.append((int(base_counter), reason))
        self.buffer = [x[0].detach()]
        self.create_parent(self.inputs_seen >= self.settings.evolve_every)
        if self.parent is not None:
            self.parent(summary, base_counter)

    # -- learning -----------------------------------------------------------------------
    def optimize_layer(self) -> None:
        """Backpropagate the kept losses, step and zero both modules; then the same for the layers above."""
        if self.losses:
            torch.stack(self.losses).sum().backward()
            self.losses = []
        for module in (self.temporal_encoding, self.hierarchical_prediction):
            module.step_params()
            module.zero_params()
        if self.parent is not None:
            self.parent.optimize_layer()
