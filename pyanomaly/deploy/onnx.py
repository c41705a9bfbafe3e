"""ONNX export of a method's network, checked against PyTorch, and the method run by onnxruntime.

:func:`export_onnx` traces the graph of a method (:mod:`pyanomaly.deploy.graphs`) with the
TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``: it needs no package
besides ``onnx``, traces the networks' Python loops into a fixed graph, and gives a dynamic
batch axis through ``dynamic_axes``), runs the result with onnxruntime on random input next to
PyTorch and refuses it when any output differs by more than ``tolerance`` (a step graph is
run for several steps with its state carried on both sides). The file's metadata says what it
is: ``pyanomaly.method``, ``pyanomaly.graph``, ``pyanomaly.image_size``, ``pyanomaly.channels``,
``pyanomaly.history``, ``pyanomaly.max_abs_error``.

:func:`onnxruntime_method` gives a copy of the method whose network (AnoPCN: networks) runs
in onnxruntime, so ``predict_stream`` (and with it the scoring loop) runs unchanged.

Example:
    >>> det = pyanomaly.load("checkpoints/ped2_convlstm.pth", "configs/ped2_convlstm.yaml", device="cpu")
    >>> report = export_onnx(det.model, "ped2_convlstm.onnx", (128, 128), 1)   # DATASET.IMAGE_SIZE, CHANNELS
    >>> fast = onnxruntime_method(det.model, "ped2_convlstm.onnx")
    >>> prediction, valid, state = fast.predict_stream(frames)   # frames (N, 1, 128, 128)
"""
from __future__ import annotations

import copy
import importlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from pyanomaly.errors import ExportError
from pyanomaly.networks.fast import FastPath, using_fast_path
from pyanomaly.utils import atomic_write

from .graphs import graph_of

#: ONNX operator set of the exported graphs (onnxruntime 1.32 runs up to 23)
OPSET = 17
#: largest |onnxruntime - PyTorch| an export may show on random input
TOLERANCE = 1e-4


def _require(package: str):
    """Import ``package`` (``onnx``, ``onnxruntime``), or say how to install it."""
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as exc:
        raise ExportError(f"{package} is not installed; it comes with `pip install -r requirements.txt` or "
                          "`pip install pyanomaly[export]`") from exc


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote: the file, the method, the kind of graph and the largest
    |onnxruntime - PyTorch| over every output of the check."""

    path: Path
    method: str
    graph: str
    max_abs_error: float
    checked: str

    def __str__(self) -> str:
        return (f"wrote {self.path}: {self.method} ({self.graph} graph); onnxruntime matches PyTorch to "
                f"{self.max_abs_error:.1e} (max |difference|, {self.checked})")


def onnx_bytes(model: nn.Module, image_size: Sequence[int], channels: int, meta: dict | None = None) -> bytes:
    """The serialised ONNX model of ``model``'s graph for frames ``(channels, *image_size)``.

    ``meta``: extra ``{key: value}`` for the file's metadata. Raises
    :class:`~pyanomaly.errors.ExportError` for a method that cannot be exported.
    """
    onnx = _require("onnx")
    graph = graph_of(model)
    size = (int(image_size[0]), int(image_size[1]))
    example = graph.inputs(2, int(channels), size, torch.Generator().manual_seed(0))
    names, outputs = graph.input_names(), graph.outputs()
    buf = io.BytesIO()
    module = graph.traced().eval()
    try:
        # the plain code: the fast path's prepacked oneDNN weights and in-place updates do not trace
        with using_fast_path(module, FastPath.reference()), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes, not the user's concern
            torch.onnx.export(module, tuple(example.values()), buf, input_names=names, output_names=outputs,
                              dynamic_axes={n: {0: "batch"} for n in names + outputs}, opset_version=OPSET,
                              dynamo=False)
    except Exception as exc:  # an operator without an ONNX form, a data-dependent branch, ...
        raise ExportError(f"method {type(model).__name__} could not be traced to ONNX ({graph.kind} graph of its "
                          f"{type(graph.module).__name__}): {type(exc).__name__}: {exc}") from exc
    proto = onnx.load_from_string(buf.getvalue())
    info = {"pyanomaly.method": type(model).__name__, "pyanomaly.graph": graph.kind,
            "pyanomaly.image_size": json.dumps(list(size)), "pyanomaly.channels": str(int(channels)),
            "pyanomaly.history": str(getattr(graph, "history", 0)), **(meta or {})}
    onnx.helper.set_model_props(proto, {k: str(v) for k, v in info.items()})
    return proto.SerializeToString()


def session(source: bytes | str | Path, threads: int | None = None):
    """An onnxruntime CPU session of ``source`` (serialised model or file), ``threads`` intra-op
    threads (default: torch's, so both backends use the same cores)."""
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its graph-optimiser notes are noise to a user
    if isinstance(source, Path):
        source = str(source)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        where = source if isinstance(source, str) else "the exported model"
        raise ExportError(f"onnxruntime cannot load {where}: {type(exc).__name__}: {exc}") from exc


def stand_ins(model: nn.Module, source: bytes | str | Path) -> dict[str, nn.Module]:
    """``{attribute of model: the network that runs its part of the ONNX model in onnxruntime}``.

    A part that runs only some of the graph's inputs and outputs (AnoPCN's PCM and ERM) gets
    a session of that sub-graph (``onnx.utils.Extractor``). A file whose inputs are not those
    of ``model``'s graph is refused.
    """
    graph = graph_of(model)
    onnx = _require("onnx")
    try:
        proto = onnx.load_from_string(source) if isinstance(source, bytes) else onnx.load(str(source))
    except Exception as exc:
        raise ExportError(f"cannot read ONNX model {source if not isinstance(source, bytes) else ''}: "
                          f"{type(exc).__name__}: {exc}") from exc
    found = [i.name for i in proto.graph.input]
    if found != graph.input_names():
        where = f"ONNX model {source}" if not isinstance(source, bytes) else "the ONNX model"
        raise ExportError(f"{where} does not fit method {type(model).__name__}: its inputs are {found}, expected "
                          f"{graph.input_names()}")
    out = {}
    for part in graph.parts():
        whole = part.inputs == graph.input_names() and part.outputs == graph.outputs()
        sub = proto if whole else onnx.utils.Extractor(proto).extract_model(part.inputs, part.outputs)
        out[part.attr] = part.build(session(sub.SerializeToString()))
    return out


def onnxruntime_method(model: nn.Module, source: bytes | str | Path | None = None,
                       image_size: Sequence[int] | None = None, channels: int | None = None) -> nn.Module:
    """A copy of ``model`` (a method) whose network runs in onnxruntime; the rest is ``model``'s code.

    ``source``: the ONNX model (bytes or a file written by :func:`export_onnx` from this
    method); ``None`` exports ``model`` now, for frames ``(channels, *image_size)``. The
    copy is in eval mode; its ``backend`` attribute is ``"onnxruntime"``.
    """
    if source is None:
        if image_size is None or channels is None:
            raise ExportError("onnxruntime_method needs image_size and channels to export the method")
        source = onnx_bytes(model, image_size, channels)
    networks = stand_ins(model, source)
    runner = copy.deepcopy(model).eval()
    for attr, net in networks.items():
        setattr(runner, attr, net)
    runner.backend = "onnxruntime"
    return runner


@torch.no_grad()
def max_difference(model: nn.Module, source: bytes, image_size: Sequence[int], channels: int,
                   batch: int = 3, seed: int = 0) -> tuple[float, str]:
    """Largest |onnxruntime - PyTorch| over every output of ``model``'s graph on random input
    (a step: :data:`~.graphs.CHECK_STEPS` steps, the state carried on both sides), and a
    description of what was run."""
    size = (int(image_size[0]), int(image_size[1]))
    return graph_of(model).compare(stand_ins(model, source), batch, int(channels), size,
                                   torch.Generator().manual_seed(seed))


def _check_writable(path: Path) -> None:
    """Refuse an output ``path`` that is a folder, or whose nearest existing parent is a file or read-only."""
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a folder; give a file name such as {path / 'model.onnx'}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ExportError(f"cannot write {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {path}: folder {parent} is not writable")


def export_onnx(model: nn.Module, path: str | Path, image_size: Sequence[int], channels: int,
                meta: dict | None = None, tolerance: float = TOLERANCE) -> ExportReport:
    """Export ``model``'s graph to ``path`` (written atomically) once onnxruntime matches PyTorch
    to ``tolerance`` on random input; see the module docstring."""
    path = Path(path)
    _check_writable(path)  # before the export's seconds of work
    data = onnx_bytes(model, image_size, channels, meta)
    error, checked = max_difference(model, data, image_size, channels)
    if not error <= tolerance:  # NaN fails too
        raise ExportError(f"the ONNX graph of {type(model).__name__} differs from PyTorch by {error:.3g} (> "
                          f"{tolerance:g}) on random input ({checked}); nothing was written to {path}")
    onnx = _require("onnx")
    proto = onnx.load_from_string(data)
    props = {p.key: p.value for p in proto.metadata_props}
    props["pyanomaly.max_abs_error"] = f"{error:.3g}"
    onnx.helper.set_model_props(proto, props)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(proto.SerializeToString()))
    return ExportReport(path, type(model).__name__, graph_of(model).kind, error, checked)
