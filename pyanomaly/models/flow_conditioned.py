"""A frame predictor that also sees the motion: frame ``t`` from frames ``t-h .. t-1`` and the flows between them.

A :class:`~pyanomaly.models.frame_predictor.FramePredictor` whose network reads, besides the
``history`` frames, the ``h-1`` optical flows between them (stacked on channels:
:mod:`pyanomaly.models.flow_windows`), so that it need not infer the motion of the scene from
the frames alone: how things moved is given, where they will be is learned. Its output is the
predicted frame, scored like any frame predictor's (``SCORE.ERROR PSNR`` or ``AREA``).

Training reads each clip's frames ``batch["frames"]`` ``(B, T, C, H, W)`` and flows
``batch["flow"]`` ``(B, T-1, 2, H, W)`` (``DATASET.FLOW``); at test time the flows are
computed causally from the frames as they stream (OpenCV, the ``flow`` argument), so the
first ``history`` frames of a video have no prediction, as for the plain predictor. Losses and
``residual`` are the plain predictor's; its sped-up histories and moving patches are not
offered (the flows of such a history are not those of its frames).

Example:
    >>> model = FlowConditionedPredictor(network=dict(type="UNet", base_channels=32, depth=3), clip_length=5)
    >>> losses = model({"frames": torch.rand(2, 5, 1, 64, 64), "flow": torch.randn(2, 4, 2, 64, 64)})
    >>> prediction, valid, state = model.predict_stream(frames)      # (N, C, H, W), (N,)
"""
from __future__ import annotations

import torch

from pyanomaly.registry import MODELS

from .flow_windows import FlowWindows, clip_flow, motion_network_args, stack_inputs, stacked_channels
from .frame_predictor import FramePredictor


@MODELS.register_module()
class FlowConditionedPredictor(FramePredictor):
    """Args:
        network: keyword arguments with ``type`` of a network mapping one stacked step
            ``(B, 1, h C + 2 (h-1), H, W)`` to the next frame ``(B, C, H, W)`` (a ``UNet``): the
            method fills in its ``in_channels``, ``history`` (1) and ``out_channels`` (``C``)
            where it takes them.
        clip_length: ``T``, frames per training clip (history + the predicted frame).
        losses: ``{name: weight}`` of registered losses (``IntensityLoss``, ``GradientLoss``, ...).
        batch_windows: test-time windows predicted per forward pass.
        residual: the network's output in [0, 1] is a change from the last observed frame
            (``0.5`` = none), as :class:`FramePredictor`'s.
        history: ``h`` >= 2, observed frames per prediction; ``None`` = ``clip_length - 1``.
        channels: ``C``, channels of a frame (``DATASET.CHANNELS``).
        flow: the optical flow computed at test time, ``{type, preset}``
            (:class:`~pyanomaly.flow.OpticalFlow`); use ``DATASET.FLOW``'s, which training reads.
        flow_scale: pixels per unit of the flows the network sees.
    """

    def __init__(self, network: dict, clip_length: int = 5, losses: dict | None = None, batch_windows: int = 16,
                 residual: bool = False, history: int | None = None, channels: int = 1, flow: dict | None = None,
                 flow_scale: float = 2.0):
        if float(flow_scale) <= 0:
            raise ValueError(f"FlowConditionedPredictor flow_scale must be > 0 pixels, got {flow_scale}")
        self.channels = int(channels)  # read by _network_args while FramePredictor builds the network
        super().__init__(network, clip_length=clip_length, losses=losses, batch_windows=batch_windows,
                         residual=residual, history=history)
        self.flow_scale = float(flow_scale)
        self.windows = FlowWindows(flow)

    def _network_args(self, network: dict) -> dict:
        if self.history < 2:
            raise ValueError(f"FlowConditionedPredictor needs history >= 2 (a flow between the frames it sees), got "
                             f"{self.history} (DATASET.CLIP_LENGTH - 1, or MODEL.ARGS.history)")
        return motion_network_args(network, "FlowConditionedPredictor",
                                   in_channels=stacked_channels(self.channels, self.history), history=1,
                                   out_channels=self.channels)

    def predict_from(self, frames: torch.Tensor, flows: torch.Tensor) -> torch.Tensor:
        """The frame after ``frames`` ``(B, h, C, H, W)``, from them and the flows between them
        ``(B, h-1, 2, H, W)`` in pixels: ``(B, C, H, W)`` in [0, 1]."""
        if frames.shape[2] != self.channels:
            raise ValueError(f"FlowConditionedPredictor was built for frames of {self.channels} channels "
                             f"(MODEL.ARGS.channels), got {frames.shape[2]} (DATASET.CHANNELS)")
        return self.to_frame(self.net(stack_inputs(frames, flows, self.flow_scale)), frames[:, -1])

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        frames, flow = batch["frames"], clip_flow(batch, "FlowConditionedPredictor")
        last = frames.shape[1] - 1  # the predicted frame
        prediction = self.predict_from(frames[:, last - self.history:last], flow[:, last - self.history:last - 1])
        target = frames[:, -1]
        return {f"loss_{name}": w * self.losses[name](prediction, target) for name, w in self.loss_weights.items()}

    @property
    def training_flow(self):
        return self.windows.flow

    @torch.no_grad()
    def predict_streams(self, frames: list[torch.Tensor], states: list):
        def predict_next(windows: torch.Tensor) -> torch.Tensor:
            return self.predict_from(*self.windows.unpack(windows, self.channels))

        predictions, valids, states, _ = self.windows.stream(self, frames, states, self.history, predict_next,
                                                             self.batch_windows, channels=self.channels)
        return predictions, valids, states

    @staticmethod
    @torch.no_grad()
    def predict_streams_together(members: list["FlowConditionedPredictor"], frames: list[torch.Tensor], states: list):
        """:meth:`predict_streams` of several builds of one spec (an
        :class:`~pyanomaly.models.ensemble.Ensemble`'s members) at once: the flows and windows,
        the same for every member, are computed once. Returns each member's predictions (a list
        per member, one ``(n_i, C, H, W)`` per video), the validities and the shared states."""
        first, k = members[0], len(members)
        c = first.channels

        def predict_next(windows: torch.Tensor) -> torch.Tensor:  # every member's prediction, stacked on channels
            past, flows = first.windows.unpack(windows, c)
            return torch.cat([m.predict_from(past, flows) for m in members], dim=1)

        predictions, valids, states, _ = first.windows.stream(first, frames, states, first.history, predict_next,
                                                              first.batch_windows, channels=c * k)
        return [[p[:, j * c:(j + 1) * c] for p in predictions] for j in range(k)], valids, states
