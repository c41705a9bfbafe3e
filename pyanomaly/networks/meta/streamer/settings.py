"""``StreamerSettings``: every setting a STREAMER layer needs, in one checked object.

Mounir, Vijayaraghavan and Sarkar, "STREAMER: Streaming Representation Learning and Event
Segmentation in a Hierarchical Manner", NeurIPS 2023. The fields follow the paper's
``StreamerLayerArguments``; ``reps_fn`` is a name here (not a function) so that it can be
written in a YAML file, and the transformer sizes (``n_heads``, ``num_layers``) and the CNN
width sit beside the rest.

Example:
    >>> s = StreamerSettings(feature_dim=64, buffer_size=8, max_layers=3, evolve_every=50)
    >>> s.distance_of_layer(0)
    'similarity'
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

DISTANCE_MODES = ("similarity", "distance")
MODIFIER_TYPES = ("multiply", "add")
REPS_FNS = ("stack", "self")
WINDOW_SCOPES = ("event", "stream")


@dataclass
class StreamerSettings:
    """Settings shared by every layer of a STREAMER stack.

    Attributes:
        max_layers: most layers the stack may grow to.
        feature_dim: size ``D`` of every representation (summary) vector.
        evolve_every: inputs the top layer must have received before a layer may be stacked
            on it (the new layer is created at the top layer's next event boundary).
        buffer_size: most inputs a layer keeps for its current event; also the length of the
            learned positional encoding.
        loss_threshold: boundary threshold of ``demarcation_mode="fixed"``.
        lr: Adam learning rate of every module.
        reps_fn: which representations the hierarchical predictor of layer ``l`` reads:
            ``"stack"`` (layer ``l`` and every layer above it that holds an event) or
            ``"self"`` (layer ``l`` only).
        snippet_size: seconds of video per base input (frame), used for event times.
        demarcation_mode: a rule registered in ``DEMARCATIONS``: ``"average"`` or ``"fixed"``
            (see ``demarcation.py``).
        distance_mode: prediction loss of the layers above the base: ``"similarity"``
            (1 - cosine similarity) or ``"distance"`` (mean squared error).
        force_base_dist: the base layer (images) uses mean squared error whatever
            ``distance_mode`` says.
        window_size: losses averaged by ``"average"`` demarcation.
        modifier_type: ``"multiply"`` (threshold = mean * modifier) or ``"add"``
            (threshold = mean + modifier).
        modifier: factor or offset of ``"average"`` demarcation.
        window_scope: ``"event"``: the ``"average"`` window starts empty after each boundary;
            ``"stream"``: it runs across boundaries. (Not one of
            the paper's arguments; see ``demarcation.py``.)
        force_fixed_buffer: close an event when the buffer is full; otherwise the oldest
            input is dropped and the event goes on.
        n_heads, num_layers: attention heads and transformer layers of the temporal
            encoding and of the hierarchical prediction.
        channels: image channels of the base input.
        cnn_width: channels of the first CNN layer (doubled at each of the 4 layers).
        cnn_grid: side of the CNN's smallest feature map; the decoder draws images of
            ``16 * cnn_grid`` pixels a side, resized to the frame size (4 suits 64x64 frames,
            8 suits 128x128).
    """

    max_layers: int = 3
    feature_dim: int = 64
    evolve_every: int = 50
    buffer_size: int = 10
    loss_threshold: float = 0.1
    lr: float = 1e-3
    reps_fn: str = "stack"
    snippet_size: float = 0.5
    demarcation_mode: str = "average"
    distance_mode: str = "similarity"
    force_base_dist: bool = False
    window_size: int = 50
    modifier_type: str = "multiply"
    modifier: float = 1.0
    window_scope: str = "event"
    force_fixed_buffer: bool = False
    n_heads: int = 4
    num_layers: int = 2
    channels: int = 1
    cnn_width: int = 16
    cnn_grid: int = 4

    def __post_init__(self):
        def positive(name: str, integer: bool = True):
            v = getattr(self, name)
            ok = (isinstance(v, int) and not isinstance(v, bool)) if integer else isinstance(v, (int, float))
            if not ok or v <= 0:
                kind = "a positive integer" if integer else "a positive number"
                raise ValueError(f"STREAMER setting {name}: expected {kind}, got {v!r}")

        for name in ("max_layers", "feature_dim", "evolve_every", "buffer_size", "window_size", "n_heads",
                     "num_layers", "channels", "cnn_width", "cnn_grid"):
            positive(name)
        for name in ("lr", "snippet_size"):
            positive(name, integer=False)
        for name, value, choices in (("distance_mode", self.distance_mode, DISTANCE_MODES),
                                     ("modifier_type", self.modifier_type, MODIFIER_TYPES),
                                     ("reps_fn", self.reps_fn, REPS_FNS),
                                     ("window_scope", self.window_scope, WINDOW_SCOPES)):
            if value not in choices:
                raise ValueError(f"STREAMER setting {name}: unknown value {value!r}; expected one of {list(choices)}")
        if self.feature_dim % self.n_heads:
            raise ValueError(f"STREAMER setting feature_dim ({self.feature_dim}) must be divisible by "
                             f"n_heads ({self.n_heads})")
        if self.buffer_size < 2 and self.force_fixed_buffer:
            raise ValueError("STREAMER setting buffer_size must be >= 2 with force_fixed_buffer (every input would "
                             "close an event)")
        self.loss_threshold, self.lr, self.modifier = float(self.loss_threshold), float(self.lr), float(self.modifier)
        self.snippet_size = float(self.snippet_size)

    def distance_of_layer(self, layer_num: int) -> str:
        """The loss of layer ``layer_num``: ``"similarity"`` or ``"distance"``."""
        if layer_num == 0 and self.force_base_dist:
            return "distance"
        return self.distance_mode

    def to_dict(self) -> dict:
        return asdict(self)
