"""What of each method becomes an ONNX graph, and the network that runs that graph in its place.

A method's pre- and post-processing (its windows of history, residual output, validity, the
state it carries between chunks) stays the method's own code; only the network it calls is
exported. Running the graph means putting a stand-in network, backed by an onnxruntime
session, where the torch network was: the method's ``predict_stream`` is then unchanged.

Two kinds of graph:

* :class:`WindowGraph`: a window of history frames ``(B, T, C, H, W)`` -> the next frame
  ``(B, C, H, W)``, for methods that predict every frame from a fresh window
  (``FramePredictor`` with any network, the U-Net or the ConvLSTM encoder-forecaster, whose
  recurrence restarts at every window and is unrolled over the ``T`` steps in the graph;
  ``Forecaster``'s first forecast step). Its explicit state is the window itself.
* :class:`PredNetStepGraph`: PredNet's single step with explicit state, frame ``(B, C, H, W)``
  and ``R``, ``c``, ``E`` of every layer -> the prediction (made before reading the frame)
  and the new ``R``, ``c``, ``E``; the method runs it over its windows or carries the state
  along a whole video (``test_window=0``).

The batch axis of every input is dynamic; frame size and channels are those of the export.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pyanomaly.errors import ExportError
from pyanomaly.models.anopcn import AnoPCN
from pyanomaly.models.forecaster import Forecaster
from pyanomaly.models.frame_predictor import FramePredictor
from pyanomaly.models.prednet_predictor import PredNetPredictor
from pyanomaly.models.streamer import Streamer
from pyanomaly.networks.meta.prednet import PredNet, PredNetState

#: why a method of the package is not exported (a method of a user's plugin gets a generic reason)
REFUSED = {
    Streamer: "it learns while it streams (its stack of layers grows and, with learn_at_test, its weights change), "
              "which a fixed ONNX graph cannot do",
    AnoPCN: "its two networks run at different rates (the PCM frame by frame, the ERM over batches of frames) "
            "and its first step branches on the missing history; only one-network frame predictors are exported",
}


def run_session(session, feeds: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Run ``session`` on float32 CPU copies of ``feeds``; outputs as torch tensors (CPU)."""
    arrays = {k: np.ascontiguousarray(v.detach().to("cpu", torch.float32).numpy()) for k, v in feeds.items()}
    return [torch.from_numpy(o) for o in session.run(None, arrays)]


@dataclass
class WindowGraph:
    """History ``(B, history, C, H, W)`` -> next frame ``(B, C, H, W)``: the network ``module``
    of the method's attribute ``attr``; ``future_axis``: the network is called as
    ``net(history, future=1)`` and answers ``(B, 1, C, H, W)`` (``Forecaster``)."""

    attr: str
    module: nn.Module
    history: int
    future_axis: bool = False
    kind = "window"

    def traced(self) -> nn.Module:
        """The module that ``torch.onnx.export`` traces."""
        return _FirstForecast(self.module) if self.future_axis else self.module

    def inputs(self, batch: int, channels: int, size: tuple[int, int], generator: torch.Generator):
        """Random example inputs ``{name: tensor}`` in [0, 1]."""
        return {"history": torch.rand(batch, self.history, channels, *size, generator=generator)}

    def input_names(self) -> list[str]:
        return ["history"]

    def outputs(self) -> list[str]:
        return ["prediction"]

    def stand_in(self, session) -> nn.Module:
        return WindowNetwork(session, self.future_axis)


class _FirstForecast(nn.Module):
    """``net(history, future=1)[:, 0]``: a forecaster's first step as a next-frame predictor."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        return self.net(history, future=1)[:, 0]


class WindowNetwork(nn.Module):
    """A :class:`WindowGraph` run by onnxruntime, called as the network was."""

    def __init__(self, session, future_axis: bool):
        super().__init__()
        self.session, self.future_axis = session, future_axis

    def forward(self, history: torch.Tensor, future: int | None = None) -> torch.Tensor:
        if self.future_axis and future not in (None, 1):
            raise ExportError(f"the exported forecaster predicts one frame ahead; {future} were asked for")
        y = run_session(self.session, {"history": history})[0].to(history.device)
        return y[:, None] if self.future_axis else y


@dataclass
class PredNetStepGraph:
    """PredNet's step with explicit state (see the module docstring); ``attr``: the method's
    attribute holding the PredNet."""

    attr: str
    module: PredNet
    kind = "prednet_step"

    @property
    def layers(self) -> int:
        return self.module.nb_layers

    def state_names(self) -> list[str]:
        return [f"{unit}{l}" for unit in ("R", "c", "E") for l in range(self.layers)]

    def traced(self) -> nn.Module:
        return _PredNetStep(self.module)

    def inputs(self, batch: int, channels: int, size: tuple[int, int], generator: torch.Generator):
        """A random frame and a random state of the shapes of :meth:`PredNet.get_initial_states`."""
        zero = self.module.get_initial_states((batch, 1, channels, *size))
        state = [torch.rand(t.shape, generator=generator) for t in (*zero.R, *zero.c, *zero.E)]
        return {"frame": torch.rand(batch, channels, *size, generator=generator),
                **dict(zip(self.state_names(), state))}

    def input_names(self) -> list[str]:
        return ["frame"] + self.state_names()

    def outputs(self) -> list[str]:
        return ["prediction"] + [f"{name}_next" for name in self.state_names()]

    def stand_in(self, session) -> nn.Module:
        return PredNetNetwork(session, self.module)


class _PredNetStep(nn.Module):
    """``(frame, R..., c..., E...) -> (prediction, R'..., c'..., E'...)`` by PredNet's plain step."""

    def __init__(self, net: PredNet):
        super().__init__()
        self.net = net

    def forward(self, frame: torch.Tensor, *state: torch.Tensor):
        n = self.net.nb_layers
        # t only matters from extrap_start_time on, which is refused before export
        units, new = self.net.reference_step(frame, PredNetState(state[:n], state[n:2 * n], state[2 * n:], frame, 1))
        return (units["prediction"], *new.R, *new.c, *new.E)


class PredNetNetwork(nn.Module):
    """A :class:`PredNetStepGraph` run by onnxruntime, with PredNet's ``get_initial_states`` /
    ``step`` / ``next_prediction``; ``step``'s units hold only ``"prediction"``.

    ``net``: the PredNet it was exported from, kept for its state shapes.
    """

    def __init__(self, session, net: PredNet):
        super().__init__()
        self.session, self.net = session, net
        self.nb_layers = net.nb_layers
        self.names = PredNetStepGraph("net", net).state_names()

    def get_initial_states(self, input_shape) -> PredNetState:
        return self.net.get_initial_states(input_shape)

    def step(self, A: torch.Tensor, states: PredNetState) -> tuple[dict, PredNetState]:
        n = self.nb_layers
        out = run_session(self.session, {"frame": A, **dict(zip(self.names, (*states.R, *states.c, *states.E)))})
        out = [o.to(A.device) for o in out]
        prediction = out[0]
        return {"prediction": prediction}, states.advanced(out[1:1 + n], out[1 + n:1 + 2 * n], out[1 + 2 * n:],
                                                           prediction)

    def next_prediction(self, states: PredNetState) -> torch.Tensor:
        units, _ = self.step(torch.zeros_like(states.prediction), states)  # made before its frame is read
        return units["prediction"]


def graph_of(model: nn.Module) -> WindowGraph | PredNetStepGraph:
    """The graph that exports ``model`` (a method, see the module docstring), or an
    :class:`~pyanomaly.errors.ExportError` naming the method and why it cannot be exported."""
    name = type(model).__name__
    for cls, why in REFUSED.items():
        if isinstance(model, cls):
            raise ExportError(f"method {name} cannot be exported to ONNX: {why}")
    if isinstance(model, FramePredictor):
        return WindowGraph("net", model.net, model.history)
    if isinstance(model, Forecaster):
        return WindowGraph("net", model.net, model.input_frames, future_axis=True)
    if isinstance(model, PredNetPredictor):
        if not isinstance(model.net, PredNet):
            raise ExportError(f"method {name} cannot be exported to ONNX: its network is a "
                              f"{type(model.net).__name__}; only the PredNet step is exported")
        if model.net.extrap_start_time is not None:
            raise ExportError(f"method {name} cannot be exported to ONNX: its PredNet has extrap_start_time="
                              f"{model.net.extrap_start_time} (its step depends on the step count); leave it unset")
        return PredNetStepGraph("net", model.net)
    exportable = ", ".join(c.__name__ for c in (FramePredictor, Forecaster, PredNetPredictor))
    raise ExportError(f"method {name} cannot be exported to ONNX: it is not a frame predictor this export knows "
                      f"(exported: {exportable})")
