"""A generic next-frame predictor around any network ``(B, T-1, C, H, W) -> (B, C, H, W)``.

The network sees the ``history`` frames before frame ``t`` (``clip_length - 1`` unless given)
and predicts frame ``t`` (the FFP convention, Liu et al. 2018: 4 observed frames predict the
5th). The loss is a weighted sum of registered losses; at test time frame ``t`` is scored from
frames ``t-history .. t-1``, so the first ``history`` frames of a video have no prediction.

With ``residual`` the network predicts the change from the last observed frame instead of
the frame: an output ``y`` in [0, 1] gives ``clamp(last + 2 y - 1, 0, 1)``, so ``y = 0.5``
everywhere is "nothing moves" (the copy-last-frame baseline) and training only has to learn
the motion of normal scenes.

With ``fast_history`` some training clips show the network a sped-up history (every
``skip``-th frame, ending at the last observed one) while the target stays the real next
frame: the network learns to continue motion at normal speed whatever speed it sees, so at
test time whatever moves faster than in training is predicted too slow and its error grows.
The skipped frames are the temporal pseudo-anomalies of Astrid et al. ("Learning Not to
Reconstruct Anomalies", BMVC 2021), here a training input paired with a normal target.
With ``pseudo_patch`` some training histories get a moving patch cut from another clip while
the target stays the real next frame (their patch pseudo-anomalies; see
:mod:`pyanomaly.models.pseudo_patch`).

Example:
    >>> model = FramePredictor(network=dict(type="MyNet"), clip_length=5)
    >>> losses = model({"frames": torch.rand(2, 5, 1, 64, 64)})
"""
from __future__ import annotations

import torch

from pyanomaly.registry import LOSSES, MODELS, NETWORKS, accepted_arguments, build

from .base import VADModel
from .pseudo_patch import MovingPatch


@MODELS.register_module()
class FramePredictor(VADModel):
    """Args:
        network: keyword arguments with ``type`` of a network mapping the history
            ``(B, T-1, C, H, W)`` to the next frame ``(B, C, H, W)``.
        clip_length: ``T``, frames per clip (history + the predicted frame).
        losses: ``{name: weight}`` of registered losses (``IntensityLoss``, ``GradientLoss``, ...).
        batch_windows: test-time windows predicted per forward pass.
        residual: the network's output in [0, 1] is a change from the last observed frame
            (``0.5`` = none), not the frame itself (see the module docstring).
        history: observed frames per prediction; ``None`` = ``clip_length - 1``. Fewer than
            that when training clips are longer than a prediction needs (``fast_history``).
        fast_history: ``{"prob": p, "skips": [s, ...]}``: each training clip's history is,
            with probability ``p``, every ``s``-th frame (``s`` drawn from ``skips``) up to the
            last observed one, its target the frame after that; ``clip_length`` must be at
            least ``(history - 1) * max(skips) + 2``. ``None`` = off. Test-time prediction is
            unchanged.
        pseudo_patch: ``{"prob", "size", "speed", "alpha"}``: in training, blend a patch cut
            from another clip into some histories, sliding in a straight line, while the
            target stays the real next frame (:class:`~pyanomaly.models.pseudo_patch.MovingPatch`).
            ``None`` = off. Test-time prediction is unchanged.
    """

    inference_args = ("batch_windows",)

    def __init__(self, network: dict, clip_length: int = 5, losses: dict | None = None,
                 batch_windows: int = 16, residual: bool = False, history: int | None = None,
                 fast_history: dict | None = None, pseudo_patch: dict | None = None):
        super().__init__()
        self.clip_length = int(clip_length)
        self.history = self.clip_length - 1 if history is None else int(history)
        if not 1 <= self.history < self.clip_length:
            raise ValueError(f"FramePredictor needs 1 <= history < clip_length (DATASET.CLIP_LENGTH), got history "
                             f"{self.history} and clip_length {self.clip_length}")
        self.net = build(NETWORKS, self._network_args(network))
        self.fast_prob, self.fast_skips = self._check_fast_history(fast_history)
        self.pseudo_patch = MovingPatch.from_config(pseudo_patch)
        losses = losses if losses is not None else {"IntensityLoss": 1.0}
        self.loss_weights = {name: float(w) for name, w in losses.items()}
        self.losses = torch.nn.ModuleDict({name: build(LOSSES, {"type": name}) for name in self.loss_weights})
        self.batch_windows = batch_windows
        self.residual = bool(residual)

    def _network_args(self, network: dict) -> dict:
        """The network's arguments, with ``history`` (frames it reads) filled in when it takes one:
        the history length is stated once, by ``clip_length`` (or ``history``) of the method."""
        kind = network.get("type")
        cls = kind if isinstance(kind, type) else NETWORKS.get(kind) if isinstance(kind, str) else None
        accepted = (accepted_arguments(cls) or ()) if cls is not None else ()
        if "history" not in accepted:
            return network
        if "history" in network and int(network["history"]) != self.history:
            raise ValueError(f"MODEL.ARGS.network.history {network['history']} differs from the frames the method "
                             f"predicts from ({self.history}: DATASET.CLIP_LENGTH - 1, or MODEL.ARGS.history); "
                             "leave the network's history out")
        return {**network, "history": self.history}

    def _check_fast_history(self, fast_history: dict | None) -> tuple[float, list[int]]:
        if not fast_history:
            return 0.0, []
        unknown = set(fast_history) - {"prob", "skips"}
        prob, skips = float(fast_history.get("prob", 0.5)), [int(s) for s in fast_history.get("skips", [2])]
        if unknown or not 0.0 <= prob <= 1.0 or not skips or min(skips) < 2:
            raise ValueError(f"MODEL.ARGS.fast_history must be {{prob: p in [0, 1], skips: [ints >= 2]}}, "
                             f"got {dict(fast_history)}")
        need = (self.history - 1) * max(skips) + 2
        if self.clip_length < need:
            raise ValueError(f"MODEL.ARGS.fast_history with skips {skips} and history {self.history} needs "
                             f"DATASET.CLIP_LENGTH >= {need}, got {self.clip_length}")
        return prob, skips

    def training_history(self, frames: torch.Tensor) -> torch.Tensor:
        """The history that predicts a clip's last frame: ``(B, L, C, H, W)`` -> ``(B, history,
        C, H, W)``, the ``history`` frames before it, or, in training with ``fast_history``,
        for some clips every ``skip``-th frame up to the one before it."""
        b, last = frames.shape[0], frames.shape[1] - 1
        if not (self.training and self.fast_prob > 0):
            return frames[:, last - self.history:last]
        fast = torch.rand(b) < self.fast_prob  # CPU draws: the generator checkpoints hold
        drawn = torch.tensor(self.fast_skips)[torch.randint(len(self.fast_skips), (b,))]
        skip = torch.where(fast, drawn, torch.ones_like(drawn))
        offsets = torch.arange(self.history - 1, -1, -1)  # oldest first
        index = (last - 1) - skip[:, None] * offsets[None, :]  # (B, history)
        rows = torch.arange(b)[:, None].expand_as(index)
        return frames[rows.to(frames.device), index.to(frames.device)]

    def predict(self, history: torch.Tensor) -> torch.Tensor:
        """The frame after ``history`` ``(B, T-1, C, H, W)``: ``(B, C, H, W)`` in [0, 1]."""
        return self.to_frame(self.net(history), history[:, -1])

    def to_frame(self, y: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """The predicted frame ``(B, C, H, W)`` from the network's output ``y`` and the last observed
        frame ``last``: ``y`` itself, or with ``residual`` the change ``2 y - 1`` from ``last``."""
        if not self.residual:
            return y
        return (last.to(y.dtype) + (2 * y - 1)).clamp(0, 1)  # the change first: exact when none

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        frames = batch["frames"]
        history = self.training_history(frames)
        if self.training and self.pseudo_patch is not None:
            history = self.pseudo_patch(history, frames[:, 0])
        prediction = self.predict(history)
        target = frames[:, -1]
        return {f"loss_{name}": w * self.losses[name](prediction, target) for name, w in self.loss_weights.items()}

    @torch.no_grad()
    def predict_streams(self, frames: list[torch.Tensor], states: list):
        return self.stream_windows(frames, states, self.history, self.predict, self.batch_windows)
