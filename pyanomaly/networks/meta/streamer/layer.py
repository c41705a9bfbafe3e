"""One layer of a STREAMER stack: its modules, its optimisers, its buffer and its boundary rule.

Mounir, Vijayaraghavan and Sarkar, "STREAMER: Streaming Representation Learning and Event
Segmentation in a Hierarchical Manner", NeurIPS 2023. A layer receives one input at a time
(a frame at the base, the summary of a closed event of the layer below above it), keeps the
inputs of its current event in a buffer, summarises the buffer with its temporal encoding
and predicts its next input with its hierarchical prediction module. It learns online: each
of its two modules has its own Adam optimiser, stepped when the layer receives an input.

Gradients and timescales: the loss of layer ``l`` reaches its own modules and, through the
context its prediction reads, the temporal encodings of the layers above it. A layer above
receives an input only once every several inputs of the layers below (its timescale), so its
temporal encoding gathers gradients from many losses between two of its own steps; each
module divides its gathered gradient by the number of losses that contributed before it
steps (:meth:`StreamerLayer.step`), so a slow layer is not pushed harder than a fast one.

The stack (``stack.py``) drives the layers; this module holds one layer's state, all of which
(optimiser states, gathered gradients, buffer, boundary-rule history, event bookkeeping) goes
into ``state_dict()`` as tensors and plain Python types, for exact resume.

Example:
    >>> layer = StreamerLayer(StreamerSettings(feature_dim=32, max_layers=2), layer_num=0)
    >>> layer.push(torch.rand(1, 32, 32)); layer.representation().shape
    torch.Size([1, 32])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .demarcation import build_demarcation
from .predictor import StreamerHierarchicalPrediction
from .settings import StreamerSettings
from .temporal import StreamerTemporalEncoding

MODULES = ("temporal", "predictor")


def prediction_loss(prediction: torch.Tensor, target: torch.Tensor, mode: str) -> torch.Tensor:
    """Scalar loss of ``prediction`` against ``target`` (same number of elements).

    ``"distance"``: mean squared error; ``"similarity"``: 1 - cosine similarity of the
    flattened tensors (0 when they point the same way, up to 2).
    """
    p, t = prediction.reshape(-1), target.reshape(-1).to(prediction.dtype)
    if mode == "distance":
        return F.mse_loss(p, t)
    if mode == "similarity":
        return 1.0 - F.cosine_similarity(p, t, dim=0, eps=1e-8)
    raise ValueError(f"distance_mode: unknown value {mode!r}; expected 'similarity' or 'distance'")


class StreamerLayer(nn.Module):
    """Layer ``layer_num`` of a stack; the base layer (0) reads images, the others vectors.

    Args:
        settings: the stack's :class:`~.settings.StreamerSettings`.
        layer_num: position in the stack, 0 at the bottom.
    """

    def __init__(self, settings: StreamerSettings, layer_num: int):
        super().__init__()
        s = settings
        self.settings, self.layer_num = s, layer_num
        base = layer_num == 0
        cnn = dict(feature_dim=s.feature_dim, channels=s.channels, width=s.cnn_width, grid=s.cnn_grid)
        enc, dec = dict(type="StreamerCNNEncoder", **cnn), dict(type="StreamerCNNDecoder", **cnn)
        self.temporal = StreamerTemporalEncoding(s.feature_dim, s.buffer_size, s.n_heads, s.num_layers,
                                                 encoder=enc if base else None)
        self.predictor = StreamerHierarchicalPrediction(s.feature_dim, s.max_layers, layer_num, s.n_heads,
                                                        s.num_layers, decoder=dec if base else None)
        self.optimizers = {name: torch.optim.Adam(getattr(self, name).parameters(), lr=s.lr) for name in MODULES}
        self.contributions = {name: 0 for name in MODULES}  # losses gathered in .grad since the last step
        self.demarcation = build_demarcation(s)
        self.distance = s.distance_of_layer(layer_num)
        self.inputs_seen = 0  # since the layer was created (not reset per video): when to stack a new one
        self.buffer: list[torch.Tensor] = []
        # the open event: first base frame (base layer) or indices of child events (layers above)
        self.open_start: int | None = None
        self.open_children: list[int] = []

    # -- the stream ---------------------------------------------------------------------
    def reset_stream(self) -> None:
        """Start a new video: empty buffer, no open event, no loss history (weights and optimisers kept)."""
        self.buffer = []
        self.open_start, self.open_children = None, []
        self.demarcation.reset()

    def push(self, x: torch.Tensor) -> None:
        """Append an input to the buffer; past ``buffer_size`` the oldest input is dropped."""
        self.buffer.append(x.detach())
        if len(self.buffer) > self.settings.buffer_size:
            self.buffer.pop(0)

    def representation(self) -> torch.Tensor | None:
        """Summary ``(1, D)`` of the buffer (the layer's representation), or None when it is empty."""
        if not self.buffer:
            return None
        return self.temporal(torch.stack(self.buffer))

    def predict(self, context: list[torch.Tensor], size: tuple[int, int] | None = None) -> torch.Tensor:
        """Next input predicted from the buffer and the representations ``context`` ``[(1, D)]`` of the layers above."""
        reps = torch.cat([self.representation(), *context]) if context else self.representation()
        return self.predictor(reps, size=size)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return prediction_loss(prediction, target, self.distance)

    # -- learning -------------------------------------------------------------------------
    def count_contribution(self, *names: str) -> None:
        """One more loss has put gradient into the named modules."""
        for name in names:
            self.contributions[name] += 1

    @torch.no_grad()
    def step(self) -> None:
        """Step both modules on their gathered gradients, each divided by its number of contributing losses."""
        for name in MODULES:
            n = self.contributions[name]
            if n == 0:
                continue
            params = [p for p in getattr(self, name).parameters() if p.grad is not None]
            if n > 1:
                for p in params:
                    p.grad.div_(n)
            self.optimizers[name].step()
            self.optimizers[name].zero_grad(set_to_none=True)
            self.contributions[name] = 0

    # -- checkpoints ----------------------------------------------------------------------
    def get_extra_state(self) -> dict:
        grads = {n: p.grad.clone() for n, p in self.named_parameters() if p.grad is not None}
        return {
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "contributions": dict(self.contributions),
            "grads": grads,
            "demarcation": self.demarcation.state_dict(),
            "inputs_seen": self.inputs_seen,
            "buffer": torch.stack(self.buffer) if self.buffer else None,
            "open_start": self.open_start,
            "open_children": list(self.open_children),
        }

    def set_extra_state(self, state: dict) -> None:
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.contributions = {name: int(state["contributions"][name]) for name in MODULES}
        params = dict(self.named_parameters())
        for p in params.values():
            p.grad = None
        for n, g in state["grads"].items():
            params[n].grad = g.clone().to(params[n])
        self.demarcation.load_state_dict(state["demarcation"])
        self.inputs_seen = int(state["inputs_seen"])
        buf = state["buffer"]
        device = next(self.parameters()).device  # checkpoints load on the CPU
        self.buffer = [] if buf is None else [b.to(device) for b in buf.clone().unbind(0)]
        self.open_start = state["open_start"]
        self.open_children = [int(i) for i in state["open_children"]]
