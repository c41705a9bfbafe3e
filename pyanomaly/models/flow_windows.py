"""Frames and the optical flows between them as one network input, in training and as a stream.

The motion methods (:class:`~pyanomaly.models.flow_predictor.FlowPredictor`,
:class:`~pyanomaly.models.flow_conditioned.FlowConditionedPredictor`) predict what comes at
frame ``t`` from the ``h`` frames ``t-h .. t-1`` ``(B, h, C, H, W)`` and the ``h-1`` flows
between them ``(B, h-1, 2, H, W)`` (divided by ``flow_scale`` pixels, so that the network sees
values near 1), stacked on channels into one step ``(B, 1, h C + 2 (h-1), H, W)``
(:func:`stack_inputs`).

In training the flows are the clip's own (``batch["flow"]``, computed once per video by the
dataset: ``DATASET.FLOW``); at test time they are computed causally from the frames as they
stream (:class:`FlowWindows`, with :meth:`OpticalFlow.stream
<pyanomaly.flow.OpticalFlow.stream>`), so a video fed in chunks gives what it gives whole.
The flow algorithm of the method (its ``flow`` argument) should be the dataset's
(``DATASET.FLOW``), so that the network sees at test time the flows it was trained on.

Example:
    >>> x = stack_inputs(frames[:, :4], flow[:, :3], scale=2.0)     # (B, 1, 4 C + 6, H, W)
    >>> windows = FlowWindows({"type": "dis", "preset": "medium"})
    >>> preds, valids, states, flows = windows.stream(model, frames, states, 4, predict, 16, channels=2)
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from pyanomaly.errors import ConfigError
from pyanomaly.flow import OpticalFlow
from pyanomaly.registry import NETWORKS, accepted_arguments

__all__ = ["FlowWindows", "clip_flow", "motion_network_args", "stack_inputs", "stacked_channels"]


def stacked_channels(channels: int, history: int) -> int:
    """Channels of :func:`stack_inputs`' step: ``history`` frames of ``channels`` and ``history - 1`` flows."""
    return history * channels + 2 * (history - 1)


def stack_inputs(frames: torch.Tensor, flows: torch.Tensor, scale: float) -> torch.Tensor:
    """Frames ``(B, h, C, H, W)`` and the flows between them ``(B, h-1, 2, H, W)`` in pixels ->
    one step ``(B, 1, h C + 2 (h-1), H, W)``: the frames, then the flows divided by ``scale``."""
    b, h, _, height, width = frames.shape
    if flows.shape[:2] != (b, h - 1) or flows.shape[2] != 2 or flows.shape[-2:] != frames.shape[-2:]:
        raise ValueError(f"expected the {h - 1} flows between {h} frames {tuple(frames.shape)}: (B, {h - 1}, 2, "
                         f"{height}, {width}), got {tuple(flows.shape)}")
    stacked = torch.cat([frames.reshape(b, -1, height, width),
                         (flows / scale).to(frames.dtype).reshape(b, -1, height, width)], dim=1)
    return stacked[:, None]


def clip_flow(batch: dict, method: str) -> torch.Tensor:
    """``batch["flow"]`` ``(B, T-1, 2, H, W)``, checked against ``batch["frames"]`` ``(B, T, C, H, W)``;
    a clear :class:`~pyanomaly.errors.ConfigError` when the dataset gives no flow."""
    frames, flow = batch["frames"], batch.get("flow")
    if flow is None:
        raise ConfigError(f"{method} trains on each clip's optical flow (batch['flow']), and the dataset gives "
                          "none: set DATASET.FLOW (e.g. {type: dis, preset: medium}, the method's 'flow' argument)")
    b, t = frames.shape[:2]
    if tuple(flow.shape) != (b, t - 1, 2, *frames.shape[-2:]):
        raise ValueError(f"{method}: batch['flow'] must be (B, T-1, 2, H, W) = {(b, t - 1, 2, *frames.shape[-2:])} "
                         f"for frames {tuple(frames.shape)}, got {tuple(flow.shape)}")
    return flow


def motion_network_args(network: dict, method: str, **fixed: Any) -> dict:
    """``network`` with the arguments the method fixes (``in_channels``, ``history``, ``out_channels``,
    ``out_activation``) filled in where the network takes them; one given with another value is refused."""
    kind = network.get("type")
    cls = kind if isinstance(kind, type) else NETWORKS.get(kind) if isinstance(kind, str) else None
    accepted = accepted_arguments(cls) if cls is not None else None
    args = dict(network)
    for key, value in fixed.items():
        if key in network and network[key] != value:
            raise ValueError(f"MODEL.ARGS.network.{key} {network[key]!r} differs from what {method} gives its network "
                             f"({value!r}: frames and flows stacked into one step); leave it out")
        if accepted is None or key in accepted:
            args[key] = value
    return args


class FlowWindows:
    """Windows of frames and the flows into them, for :meth:`VADModel.stream_windows
    <pyanomaly.models.base.VADModel.stream_windows>`, the flows computed causally as the video streams.

    A video's frames ``(n, C, H, W)`` are packed with the flow into each ``(n, 2, H, W)`` (NaN
    for a video's first frame) as ``(n, C + 2, H, W)``; a window ``(B, h, C + 2, H, W)`` is
    unpacked by :meth:`unpack` into its frames and the ``h-1`` flows between them (the flow
    into the oldest frame, possibly missing, is never read). A video's state is
    ``{"window": the last h packed frames, "last": the last frame as the flow reads it}``.

    Args:
        flow: the optical flow, ``{type, preset}`` (:class:`~pyanomaly.flow.OpticalFlow`).
    """

    def __init__(self, flow: dict | None = None):
        self.flow = OpticalFlow(**(flow or {}))

    @staticmethod
    def unpack(windows: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, h, C + 2, H, W)`` -> frames ``(B, h, C, H, W)`` and the flows between them ``(B, h-1, 2, H, W)``."""
        return windows[:, :, :channels], windows[:, 1:, channels:]

    def stream(self, model, frames: list[torch.Tensor], states: list, history: int,
               predict_next: Callable[[torch.Tensor], torch.Tensor], batch: int, channels: int):
        """``model.stream_windows`` over the packed videos: ``predict_next`` maps packed windows
        ``(B, history, C + 2, H, W)`` to ``(B, channels, H, W)``. Returns predictions, validities,
        states (as ``predict_streams``) and the flows into each video's frames ``(n, 2, H, W)``."""
        packed, windows, lasts, flows = [], [], [], []
        for f, state in zip(frames, states):
            state = state or {"window": None, "last": None}
            flow, _, last = self.flow.stream(f, state["last"])
            packed.append(torch.cat([f, flow.to(f.dtype)], dim=1))
            windows.append(state["window"])
            lasts.append(last)
            flows.append(flow)
        predictions, valids, windows = model.stream_windows(packed, windows, history, predict_next, batch,
                                                            channels=channels)
        states = [{"window": w, "last": last} for w, last in zip(windows, lasts)]
        return predictions, valids, states, flows
