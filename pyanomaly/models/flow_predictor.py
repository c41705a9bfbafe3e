"""Future-flow prediction: the optical flow into frame ``t`` predicted from the frames before it.

A network sees the ``history`` frames ``t-h .. t-1`` and the ``h-1`` optical flows between
them (stacked on channels: :mod:`pyanomaly.models.flow_windows`) and predicts the flow from
frame ``t-1`` to frame ``t``: where each pixel of the last frame will move. Trained on normal
videos it learns how things usually move on from how they have just moved; at test time the
anomaly map of frame ``t`` is the per-pixel endpoint error between the predicted flow and the
flow actually measured into frame ``t`` (OpenCV, causal), ``(N, 1, H, W)`` in pixels: a
walker speeding up, stopping, or an object moving against the usual direction is predicted
wrongly. A cell scorer turns the map into a frame's error (``SCORE.ERROR CELL_TOP`` /
``CELL_MAX``, :mod:`pyanomaly.scoring.cells`), as for
:class:`~pyanomaly.models.flow_speed.FlowSpeed`.

Training reads each clip's frames ``batch["frames"]`` ``(B, T, C, H, W)`` and the flows
between them ``batch["flow"]`` ``(B, T-1, 2, H, W)`` (``DATASET.FLOW``): the last flow is the
target, the ``history`` frames and flows before it the input. The network sees flows divided
by ``flow_scale`` pixels and predicts them so; the loss is the L1 (``norm=1``) or squared
(``norm=2``) error of the scaled flow (``IntensityLoss``). The first ``history`` frames of a
video have no map (``valid`` False, never a zero error).

Example:
    >>> model = FlowPredictor(network=dict(type="UNet", base_channels=32, depth=3), clip_length=5)
    >>> losses = model({"frames": torch.rand(2, 5, 1, 64, 64), "flow": torch.randn(2, 4, 2, 64, 64)})
    >>> error_map, valid, state = model.predict_stream(frames)      # (N, 1, H, W) pixels, (N,)
"""
from __future__ import annotations

import torch

from pyanomaly.registry import LOSSES, MODELS, NETWORKS, build

from .base import VADModel
from .flow_windows import FlowWindows, clip_flow, motion_network_args, stack_inputs, stacked_channels


@MODELS.register_module()
class FlowPredictor(VADModel):
    """Args:
        network: keyword arguments with ``type`` of a network mapping one stacked step
            ``(B, 1, h C + 2 (h-1), H, W)`` to a flow ``(B, 2, H, W)`` (a ``UNet``): the method
            fills in its ``in_channels``, ``history`` (1), ``out_channels`` (2) and
            ``out_activation`` (``"none"``) where it takes them.
        clip_length: ``T``, frames per training clip.
        history: ``h`` >= 2, frames the flow is predicted from; ``None`` = ``clip_length - 1``.
        channels: ``C``, channels of a frame (``DATASET.CHANNELS``).
        flow: the optical flow measured at test time, ``{type, preset}``
            (:class:`~pyanomaly.flow.OpticalFlow`); use ``DATASET.FLOW``'s, which training reads.
        flow_scale: pixels per unit of the network's flows (inputs and output).
        norm: the training loss, ``1`` (L1) or ``2`` (squared error) of the scaled flow.
        batch_windows: test-time windows predicted per forward pass.
    """

    output = "anomaly_map"
    inference_args = ("batch_windows",)

    def __init__(self, network: dict, clip_length: int = 5, history: int | None = None, channels: int = 1,
                 flow: dict | None = None, flow_scale: float = 2.0, norm: int = 1, batch_windows: int = 16):
        super().__init__()
        self.clip_length = int(clip_length)
        self.history = self.clip_length - 1 if history is None else int(history)
        if not 2 <= self.history < self.clip_length:
            raise ValueError(f"FlowPredictor needs 2 <= history < clip_length (DATASET.CLIP_LENGTH): a flow between "
                             f"the frames it sees, and one to predict; got history {self.history} and clip_length "
                             f"{self.clip_length}")
        if float(flow_scale) <= 0:
            raise ValueError(f"FlowPredictor flow_scale must be > 0 pixels, got {flow_scale}")
        if int(norm) not in (1, 2):
            raise ValueError(f"FlowPredictor norm must be 1 (L1) or 2 (squared error), got {norm}")
        self.channels, self.flow_scale, self.batch_windows = int(channels), float(flow_scale), int(batch_windows)
        self.windows = FlowWindows(flow)
        self.net = build(NETWORKS, motion_network_args(
            network, "FlowPredictor", in_channels=stacked_channels(self.channels, self.history), history=1,
            out_channels=2, out_activation="none"))
        self.loss = build(LOSSES, {"type": "IntensityLoss", "p": int(norm)})

    def predict(self, frames: torch.Tensor, flows: torch.Tensor) -> torch.Tensor:
        """The flow into the frame after ``frames`` ``(B, h, C, H, W)``, from them and the flows
        between them ``(B, h-1, 2, H, W)``: ``(B, 2, H, W)`` in pixels."""
        if frames.shape[2] != self.channels:
            raise ValueError(f"FlowPredictor was built for frames of {self.channels} channels (MODEL.ARGS.channels), "
                             f"got {frames.shape[2]} (DATASET.CHANNELS)")
        return self.net(stack_inputs(frames, flows, self.flow_scale)) * self.flow_scale

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        frames, flow = batch["frames"], clip_flow(batch, "FlowPredictor")
        last = frames.shape[1] - 1  # the frame whose flow is predicted
        prediction = self.predict(frames[:, last - self.history:last], flow[:, last - self.history:last - 1])
        return {"loss_flow": self.loss(prediction / self.flow_scale, flow[:, -1] / self.flow_scale)}

    @property
    def training_flow(self):
        return self.windows.flow

    @torch.no_grad()
    def predict_streams(self, frames: list[torch.Tensor], states: list):
        """Per video the endpoint error between the predicted and the measured flow into each frame,
        ``(n, 1, H, W)`` in pixels (NaN where not valid: the first ``history`` frames)."""
        def predict_next(windows: torch.Tensor) -> torch.Tensor:
            return self.predict(*self.windows.unpack(windows, self.channels))

        predicted, valids, states, flows = self.windows.stream(self, frames, states, self.history, predict_next,
                                                               self.batch_windows, channels=2)
        maps = []
        for p, valid, flow in zip(predicted, valids, flows):
            error = torch.linalg.vector_norm(p - flow.to(p.dtype), dim=1, keepdim=True)
            maps.append(error.masked_fill(~valid.to(error.device)[:, None, None, None], float("nan")))
        return maps, valids, states
