"""A cue: a method and the scorer that turns its output into one error per frame.

A method that combines or re-reads other methods (:class:`~pyanomaly.models.fusion.Fusion`)
names each of them by a spec ``{name, method: {type, <arguments>}, error: {type, <arguments>},
checkpoint, weight, size}``: the method (a baseline, or a learned method whose weights are read from
``checkpoint``), the scorer of its output (``PSNR``/``AREA`` for a predicted frame,
``CELL_TOP``/``CELL_MAX`` for an anomaly map), a weight, and the frame size ``[H, W]`` the
cue works at (default: the frames as they come). With ``size`` the cue sees every frame, and
its scorer every target, resized as the dataset pipeline makes frames of that
``DATASET.IMAGE_SIZE`` (:func:`resize_frames`): a network trained at a small size runs there,
beside a flow computed at full size. A list of checkpoints (several trainings of the method,
other seeds) makes the cue an :class:`~pyanomaly.models.ensemble.Ensemble`: the members'
errors of each frame are combined by the spec's ``ensemble`` rule (``mean``, the default, or
``min``). A learned cue may also name ``train``: the recipe (a config file, or ``{config: PATH,
opts: [KEY, VALUE, ...]}``) that trains its method (each member of an ensemble with its own
seed), run on the fusion's own dataset when ``checkpoint`` is missing or was trained on another
one (:mod:`pyanomaly.engine.cue_training`).
:func:`build_cue` checks a spec
and builds its parts, every error naming the key (``Fusion cues[1].error: ...``). The
checkpoint is only named here and read by :func:`load_cue_weights` when the combining method
is fitted on the training videos: once fitted, the cue's weights are part of the combining
method's own checkpoint, which is then all a test or a stream needs.

Example:
    >>> cue = build_cue(0, dict(method=dict(type="CopyLast"), error=dict(type="AREA")), clip_length=5)
    >>> cue.method, cue.scorer, cue.name, cue.weight, cue.checkpoint
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from pyanomaly.registry import MODELS, SCORERS, build

from .ensemble import DEFAULT_RULE, Ensemble, EnsembleScorer

CUE_KEYS = ("name", "method", "error", "checkpoint", "ensemble", "weight", "size", "train")
_WHAT = {"frame": "a predicted frame", "anomaly_map": "an anomaly map"}


@dataclass
class Cue:
    """A built cue: its method (an :class:`~pyanomaly.models.ensemble.Ensemble` when the spec
    names several checkpoints), scorer, name, weight, the checkpoint of its weights (None; a path;
    one path per ensemble member), the frame size ``(H, W)`` it works at (None: the frames as
    they come) and the recipe that trains it (None, or ``(config path, overrides)``)."""

    method: nn.Module
    scorer: Any
    name: str
    weight: float
    checkpoint: str | tuple[str, ...] | None
    size: tuple[int, int] | None = None
    train: tuple[str, tuple] | None = None


def build_cue(i: int, spec, clip_length: int | None, owner: str = "Fusion", where: str | None = None) -> Cue:
    """Cue ``i`` of ``owner``'s ``cues`` from its spec; errors name the key ``<owner> cues[i].<key>``
    (or ``<where>.<key>`` for a cue held elsewhere: ``ObjectCue cue``)."""
    where = where or f"{owner} cues[{i}]"
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected {{{', '.join(CUE_KEYS)}}}, got {spec!r}")
    unknown = sorted(set(spec) - set(CUE_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; a cue takes {', '.join(CUE_KEYS)}")
    for key in ("method", "error"):
        if not isinstance(spec.get(key), dict) or not isinstance(spec[key].get("type"), str):
            raise ValueError(f"{where}.{key}: expected {{type: NAME, <arguments>}}, got {spec.get(key)!r}")
    try:
        method = build(MODELS, dict(spec["method"]), clip_length=clip_length)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{where}.method: {exc}") from None
    if method.output not in _WHAT or getattr(method, "task", "anomaly_detection") != "anomaly_detection":
        raise ValueError(f"{where}.method: {spec['method']['type']} is not a cue (it predicts no frame and no "
                         "anomaly map)")
    try:
        scorer = build(SCORERS, dict(spec["error"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{where}.error: {exc}") from None
    reads = getattr(scorer, "reads", "frame")
    if reads != method.output:
        raise ValueError(f"{where}.error: {spec['error']['type']} reads {_WHAT.get(reads, reads)}, but "
                         f"{spec['method']['type']} gives {_WHAT[method.output]}")
    train = _train_recipe(spec.get("train"), spec, method, f"{where}.train")
    checkpoint = spec.get("checkpoint") or None
    if checkpoint is None and getattr(method, "has_weights", True) and train is None:
        raise ValueError(f"{where}.checkpoint: {spec['method']['type']} has learned weights; give the checkpoint "
                         "that holds them (or a train recipe that makes it)")
    if isinstance(checkpoint, (list, tuple)):  # several trainings of the method: an ensemble
        if len(checkpoint) < 2 or not all(isinstance(p, str) and p for p in checkpoint):
            raise ValueError(f"{where}.checkpoint: an ensemble takes a list of at least 2 checkpoint paths, got "
                             f"{list(checkpoint)!r}")
        if not getattr(method, "has_weights", True):
            raise ValueError(f"{where}.checkpoint: {spec['method']['type']} learns no weights; a list of "
                             "checkpoints makes an ensemble of a learned method")
        try:
            scorer = EnsembleScorer(scorer, spec.get("ensemble", DEFAULT_RULE))
        except ValueError as exc:
            raise ValueError(f"{where}.ensemble: {exc} (how the members' errors of a frame combine)") from None
        members = [method] + [build(MODELS, dict(spec["method"]), clip_length=clip_length)
                              for _ in checkpoint[1:]]
        method, checkpoint = Ensemble(members), tuple(str(p) for p in checkpoint)
    elif checkpoint is not None and not isinstance(checkpoint, str):
        raise ValueError(f"{where}.checkpoint: expected a path, or a list of paths (an ensemble), got "
                         f"{checkpoint!r}")
    elif "ensemble" in spec:
        raise ValueError(f"{where}.ensemble: only for a cue whose checkpoint is a list of paths (an ensemble)")
    weight = spec.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
        raise ValueError(f"{where}.weight: expected a number > 0, got {weight!r}")
    size = spec.get("size")
    if size is not None:
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
            raise ValueError(f"{where}.size: expected [height, width] in pixels (two integers > 0), got {size!r}")
        size = (int(size[0]), int(size[1]))
    name = str(spec.get("name") or f"{spec['method']['type']}/{spec['error']['type']}")
    return Cue(method, scorer, name, float(weight), checkpoint, size, train)


def _train_recipe(value, spec: dict, method: nn.Module, where: str) -> tuple[str, tuple] | None:
    """A spec's ``train``: ``(config path, overrides)``, or None where it names none."""
    if value is None:
        return None
    if not getattr(method, "has_weights", True):
        raise ValueError(f"{where}: {spec['method']['type']} learns no weights; there is nothing to train")
    if isinstance(value, str):
        value = {"config": value}
    if not isinstance(value, dict) or not isinstance(value.get("config"), str) or not value["config"]:
        raise ValueError(f"{where}: expected a config file path, or {{config: PATH, opts: [KEY, VALUE, ...]}}, "
                         f"got {value!r}")
    unknown = sorted(set(value) - {"config", "opts"})
    opts = value.get("opts", [])
    if unknown or not isinstance(opts, (list, tuple)) or len(opts) % 2:
        raise ValueError(f"{where}: expected {{config: PATH, opts: [KEY, VALUE, ...]}} (overrides in pairs), got "
                         f"{value!r}")
    return value["config"], tuple(opts)


def resize_frames(frames: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Frames ``(N, C, H, W)`` in [0, 1] -> ``(N, C, h, w)`` at ``size = (h, w)`` (unchanged when
    ``size`` is None or already theirs): rounded to 8 bits and resized with area interpolation,
    as the dataset pipeline makes frames of ``DATASET.IMAGE_SIZE`` from decoded ones, so that a
    network trained at that size sees the same pixels here."""
    if size is None or tuple(frames.shape[-2:]) == tuple(size):
        return frames
    h, w = size
    pixels = frames.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    small = np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, -1) for p in pixels])
    return torch.from_numpy(small).permute(0, 3, 1, 2).to(device=frames.device, dtype=torch.float32).div_(255.0)


class ResizedVideos:
    """A split's videos as a cue of ``size`` sees them: :meth:`video_frames` resized
    (:func:`resize_frames`); every other attribute is the split's own."""

    def __init__(self, videos, size: tuple[int, int]):
        self._videos, self._size = videos, size

    def video_frames(self, *args, **kwargs) -> torch.Tensor:
        return resize_frames(self._videos.video_frames(*args, **kwargs), self._size)

    def __getattr__(self, name: str):
        return getattr(self._videos, name)


def load_cue_weights(method: nn.Module, path: str | Path | Sequence[str], where: str) -> None:
    """A cue's weights from the ``model`` entry of a checkpoint (tensors and plain types only),
    or, for an :class:`~pyanomaly.models.ensemble.Ensemble`, each member's from its own path;
    ``where`` names the cue in errors (``Fusion cues[1]``)."""
    if isinstance(method, Ensemble):
        for j, (member, p) in enumerate(zip(method.members, path)):
            _load_weights(member, p, f"{where}.checkpoint[{j}]")
        method.eval()
    else:
        _load_weights(method, path, f"{where}.checkpoint")


def _load_weights(method: nn.Module, path: str | Path, where: str) -> None:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{where}: not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        method.load_state_dict(ckpt["model"])
    except Exception as exc:  # not a checkpoint, another model's, unsafe: say which file and why
        raise ValueError(f"{where} {path}: cannot load the method's weights ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200]})") from None
    method.eval()
