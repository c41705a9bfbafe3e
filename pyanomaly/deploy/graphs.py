"""What of each method becomes an ONNX graph, and the network that runs that graph in its place.

A method's pre- and post-processing (its windows of history, residual output, validity, the
state it carries between chunks) stays the method's own code; only the network it calls is
exported. Running the graph means putting a stand-in network, backed by an onnxruntime
session, where the torch network was: the method's ``predict_stream`` is then unchanged.

Three kinds of graph:

* :class:`WindowGraph`: a window of history frames ``(B, T, C, H, W)`` -> the next frame
  ``(B, C, H, W)``, for methods that predict every frame from a fresh window
  (``FramePredictor`` with any network, the U-Net or the ConvLSTM encoder-forecaster, whose
  recurrence restarts at every window and is unrolled over the ``T`` steps in the graph;
  ``Forecaster``'s first forecast step). Its explicit state is the window itself.
* :class:`PredNetStepGraph`: PredNet's single step with explicit state, frame ``(B, C, H, W)``
  and ``R``, ``c``, ``E`` of every layer -> the prediction (made before reading the frame)
  and the new ``R``, ``c``, ``E``; the method runs it over its windows or carries the state
  along a whole video (``test_window=0``).
* :class:`AnoPCNGraph`: AnoPCN's two networks side by side in one graph, each run on its own
  (:class:`Part`): the PCM's step with explicit state (frame, the pending prediction, the
  previous frame and ``(h, c)`` per layer -> the next prediction and state) and the ERM
  (coarse prediction and context -> refined prediction).

The batch axis of every input is dynamic; frame size and channels are those of the export.
A graph says which inputs and outputs each stand-in uses (:meth:`parts`) and how its outputs
are compared with PyTorch's (:meth:`compare`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from pyanomaly.errors import ExportError
from pyanomaly.models.anopcn import AnoPCN
from pyanomaly.models.forecaster import Forecaster
from pyanomaly.models.frame_predictor import FramePredictor
from pyanomaly.models.prednet_predictor import PredNetPredictor
from pyanomaly.networks.meta.pcn import PredictiveCodingModule
from pyanomaly.networks.meta.prednet import PredNet, PredNetState

#: steps a step graph is checked for, its state carried
CHECK_STEPS = 4

#: why an online method (``online = True``, STREAMER) is not exported
ONLINE = ("it learns while it streams (an online method: its state, and with learning at test time its weights, "
          "change as it reads), which a fixed ONNX graph cannot do")


def run_session(session, feeds: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Run ``session`` on float32 CPU copies of ``feeds``; outputs as torch tensors (CPU)."""
    arrays = {k: np.ascontiguousarray(v.detach().to("cpu", torch.float32).numpy()) for k, v in feeds.items()}
    return [torch.from_numpy(o) for o in session.run(None, arrays)]


@dataclass
class Part:
    """One stand-in network of a graph: the method's attribute ``attr`` it replaces, the graph
    inputs and outputs it runs (a sub-graph when they are not all of them), and ``build``,
    which makes it from an onnxruntime session of that (sub-)graph."""

    attr: str
    inputs: list[str]
    outputs: list[str]
    build: Callable[[object], nn.Module]


def _worst(pairs) -> float:
    """Largest |a - b| over pairs of tensors."""
    return max(float((a.float() - b.float()).abs().max()) for a, b in pairs)


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

    def parts(self) -> list[Part]:
        return [Part(self.attr, self.input_names(), self.outputs(), lambda s: WindowNetwork(s, self.future_axis))]

    def compare(self, stand_ins: dict, batch: int, channels: int, size, g) -> tuple[float, str]:
        """The stand-in against the network on ``batch`` random windows."""
        history = self.inputs(batch, channels, size, g)["history"]
        want = self.module(history, **({"future": 1} if self.future_axis else {}))
        return _worst([(stand_ins[self.attr](history), want)]), f"{batch} random windows"


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

    def parts(self) -> list[Part]:
        return [Part(self.attr, self.input_names(), self.outputs(), lambda s: PredNetNetwork(s, self.module))]

    def compare(self, stand_ins: dict, batch: int, channels: int, size, g) -> tuple[float, str]:
        """:data:`CHECK_STEPS` steps from a random state, the state carried on both sides: the
        prediction and every ``R``, ``c``, ``E``."""
        ours_net, n = stand_ins[self.attr], self.layers
        states = list(self.inputs(batch, channels, size, g).values())[1:]
        ref = self.module.get_initial_states((batch, 1, channels, *size))
        ref = ref._replace(R=tuple(states[:n]), c=tuple(states[n:2 * n]), E=tuple(states[2 * n:]))
        ours, worst = ref, 0.0
        for _ in range(CHECK_STEPS):
            frame = torch.rand(batch, channels, *size, generator=g)
            units_ref, ref = self.module.step(frame, ref)
            units, ours = ours_net.step(frame, ours)
            worst = max(worst, _worst([(units["prediction"], units_ref["prediction"]), *zip(ours.R, ref.R),
                                       *zip(ours.c, ref.c), *zip(ours.E, ref.E)]))
        return worst, f"{CHECK_STEPS} steps of {batch} random frames from a random state, carried"


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


@dataclass
class AnoPCNGraph:
    """AnoPCN's PCM step and ERM in one graph (see the module docstring); ``context``: the ERM
    reads the previous frame and error (``erm_context``)."""

    pcm: PredictiveCodingModule
    erm: nn.Module
    context: bool
    kind = "anopcn"

    @property
    def module(self) -> nn.Module:
        return self.pcm

    def rnn_names(self) -> list[str]:
        return [f"{name}{l}" for l in range(self.pcm.rnn.num_layers) for name in self.pcm.rnn.state_names]

    def pcm_inputs(self) -> list[str]:
        # without the motion input the previous frame is not read, and the exporter leaves it out
        return ["frame", "pending"] + (["previous"] if self.pcm.motion else []) + self.rnn_names()

    def pcm_outputs(self) -> list[str]:
        return ["next_prediction"] + [f"{n}_next" for n in self.rnn_names()]

    def erm_inputs(self) -> list[str]:
        return ["coarse"] + (["context"] if self.context else [])

    def input_names(self) -> list[str]:
        return self.pcm_inputs() + self.erm_inputs()

    def outputs(self) -> list[str]:
        return self.pcm_outputs() + ["refined"]

    def traced(self) -> nn.Module:
        return _AnoPCNParts(self.pcm, self.erm, len(self.rnn_names()))

    def inputs(self, batch: int, channels: int, size: tuple[int, int], generator: torch.Generator):
        def rand(*shape):
            return torch.rand(*shape, generator=generator)
        rnn = [rand(*t.shape) for layer in self.pcm.init_state(batch, size)["rnn"] for t in layer]
        frames = {n: rand(batch, channels, *size) for n in ("frame", "pending", "previous", "coarse")}
        out = {**{n: frames[n] for n in ("frame", "pending", "previous")}, **dict(zip(self.rnn_names(), rnn)),
               "coarse": frames["coarse"]}
        if not self.pcm.motion:
            del out["previous"]
        if self.context:
            out["context"] = rand(batch, 2 * channels, *size)
        return out

    def parts(self) -> list[Part]:
        return [Part("pcm", self.pcm_inputs(), self.pcm_outputs(), lambda s: PCMNetwork(s, self.pcm)),
                Part("erm", self.erm_inputs(), ["refined"], ERMNetwork)]

    def compare(self, stand_ins: dict, batch: int, channels: int, size, g) -> tuple[float, str]:
        """The PCM for :data:`CHECK_STEPS` steps from its first (no history) with the state
        carried on both sides (prediction and every ``h``, ``c``); the ERM on random input."""
        pcm = stand_ins["pcm"]
        ref = ours = self.pcm.init_state(batch, size)
        worst = 0.0
        for _ in range(CHECK_STEPS):
            frame = torch.rand(batch, channels, *size, generator=g)
            want, ref = self.pcm.step(frame, ref)
            got, ours = pcm.step(frame, ours)
            worst = max(worst, _worst([(got, want)] + [(a, b) for la, lb in zip(ours["rnn"], ref["rnn"])
                                                       for a, b in zip(la, lb)]))
        feeds = self.inputs(batch, channels, size, g)
        erm_args = [feeds[n] for n in self.erm_inputs()]
        worst = max(worst, _worst([(stand_ins["erm"](*erm_args), self.erm(*erm_args))]))
        return worst, (f"the PCM for {CHECK_STEPS} steps of {batch} random frames from a fresh state, carried; the "
                       f"ERM on {batch} random frames")


class _AnoPCNParts(nn.Module):
    """``(frame, pending, previous, h/c..., coarse[, context]) -> (next prediction, h/c..., refined)``:
    the PCM's plain step (always with a pending prediction and a previous frame: see
    :class:`PCMNetwork`) beside the ERM, which reads none of its outputs."""

    def __init__(self, pcm: PredictiveCodingModule, erm: nn.Module, states: int):
        super().__init__()
        self.pcm, self.erm, self.states = pcm, erm, states

    def forward(self, frame, pending, *rest):
        previous, rest = (rest[0], rest[1:]) if self.pcm.motion else (None, rest)
        flat, erm_args = rest[:self.states], rest[self.states:]
        k = len(self.pcm.rnn.state_names)
        rnn = [tuple(flat[i:i + k]) for i in range(0, len(flat), k)]
        nxt, state = self.pcm.step(frame, {"rnn": rnn, "frame": previous, "prediction": pending})
        return (nxt, *[t for layer in state["rnn"] for t in layer], self.erm(*erm_args))


class PCMNetwork(nn.Module):
    """The PCM's step run by onnxruntime, with the PCM's ``init_state``, ``step`` and ``forward``.

    At a stream's first step the PCM has no pending prediction and no previous frame, and uses
    zeros for the error and motion inputs; the graph always takes both, so the frame itself
    stands in for them there (``relu(x - x)`` and ``x - x`` are exactly those zeros).
    ``pcm``: the PCM it was exported from, kept for its state shapes.
    """

    forward = PredictiveCodingModule.forward  # the same loop over a sequence, calling this step

    def __init__(self, session, pcm: PredictiveCodingModule):
        super().__init__()
        self.session, self.pcm, self.in_channels = session, pcm, pcm.in_channels
        self.names = AnoPCNGraph(pcm, nn.Identity(), False).rnn_names()
        self.per_layer = len(pcm.rnn.state_names)
        self.inputs = {i.name for i in session.get_inputs()}

    def init_state(self, batch: int, spatial) -> dict:
        return self.pcm.init_state(batch, spatial)

    def step(self, frame: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        pending = frame if state["prediction"] is None else state["prediction"]
        previous = frame if state["frame"] is None else state["frame"]
        flat = [t for layer in state["rnn"] for t in layer]
        feeds = {"frame": frame, "pending": pending, "previous": previous, **dict(zip(self.names, flat))}
        out = [o.to(frame.device) for o in run_session(self.session, {k: v for k, v in feeds.items()
                                                                      if k in self.inputs})]
        k = self.per_layer
        rnn = [tuple(out[1 + i:1 + i + k]) for i in range(0, len(flat), k)]
        return out[0], {"rnn": rnn, "frame": frame, "prediction": out[0]}


class ERMNetwork(nn.Module):
    """The ERM run by onnxruntime: ``(coarse, context) -> refined``."""

    def __init__(self, session):
        super().__init__()
        self.session = session
        self.names = [i.name for i in session.get_inputs()]

    def forward(self, coarse: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        feeds = dict(zip(self.names, [coarse] if context is None else [coarse, context]))
        return run_session(self.session, feeds)[0].to(coarse.device)


def graph_of(model: nn.Module) -> WindowGraph | PredNetStepGraph | AnoPCNGraph:
    """The graph that exports ``model`` (a method, see the module docstring), or an
    :class:`~pyanomaly.errors.ExportError` naming the method and why it cannot be exported."""
    name = type(model).__name__
    if getattr(model, "online", False):
        raise ExportError(f"method {name} cannot be exported to ONNX: {ONLINE}")
    if getattr(model, "needs_flow", False):
        raise ExportError(f"method {name} cannot be exported to ONNX: it reads optical flow, which OpenCV computes "
                          "outside the network")
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
    if isinstance(model, AnoPCN):
        if not isinstance(model.pcm, PredictiveCodingModule):
            raise ExportError(f"method {name} cannot be exported to ONNX: its PCM is a {type(model.pcm).__name__}; "
                              "only the PredictiveCodingModule's step is exported")
        return AnoPCNGraph(model.pcm, model.erm, model.erm_context)
    exportable = ", ".join(c.__name__ for c in (FramePredictor, Forecaster, PredNetPredictor, AnoPCN))
    raise ExportError(f"method {name} cannot be exported to ONNX: it is not a frame predictor this export knows "
                      f"(exported: {exportable})")
