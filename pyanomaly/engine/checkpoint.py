"""Checkpoints that survive a kill and load safely.

A checkpoint is a dict of tensors and plain Python types only (loadable with
``torch.load(weights_only=True)``): model, optimizer and scheduler states, the step, every
RNG state, hook states (the best metric so far, ...) and ``meta`` (method name and
arguments, image size and channels), used to refuse a checkpoint made for another model or
input, and ``meta["config"]``: the merged config of the run as a plain nested dict (written
since checkpoints carry their config; older ones lack it), from which ``pyanomaly.load``
rebuilds the model with no YAML. Files are written to a temporary name, fsynced and renamed; a failed write leaves the
previous file.

A published checkpoint (:func:`export_weights`) keeps only the model's weights, ``meta``, the
step and the metrics; a ``SHA256SUMS`` file beside it (``sha256sum`` format) lists its
digest, and :func:`load_checkpoint` refuses a file whose digest differs from that list.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pyanomaly.config import CfgNode, cfg_to_dict
from pyanomaly.errors import CheckpointError
from pyanomaly.models.build import model_meta, with_part_defaults
from pyanomaly.utils import atomic_write, atomic_write_text

SUMS_FILE = "SHA256SUMS"  # beside published checkpoints: "<sha256>  <file name>" per line


def rng_state() -> dict:
    """Every RNG state as tensors and plain types."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "python": [py_version, list(py_internal), py_gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temp file + fsync + rename).

    A failed write (disk full, quota, I/O error; torch reports some of these as a
    ``RuntimeError`` of its zip writer) raises :class:`CheckpointError` naming the file; the
    previous file at ``path`` is left as it was and the temp file is removed.
    """
    try:
        atomic_write(path, lambda tmp: torch.save(state, tmp))
    except (OSError, RuntimeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _first_line(exc)
        raise CheckpointError(f"could not write checkpoint {path}: {reason}; "
                              f"the previous {Path(path).name}, if any, is intact") from exc


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temp files a killed write left in ``folder`` (``.NAME.*.tmp``); returns them.

    They are never read (a checkpoint only becomes visible by its rename), but each may
    be as large as a checkpoint.
    """
    stale = sorted(Path(folder).glob(".*.pth.*.tmp"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def sha256(path: str | Path) -> str:
    """The SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def listed_sums(folder: str | Path) -> dict[str, str]:
    """``{file name: digest}`` of ``folder/SHA256SUMS`` (empty when there is none)."""
    sums = Path(folder) / SUMS_FILE
    if not sums.is_file():
        return {}
    try:
        text = sums.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{sums} is not a text file of '<sha256>  <file name>' lines (binary or damaged); "
                              "remove it or write it again with sha256sum") from None
    listed = {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            fields = line.split(maxsplit=1)
            if len(fields) != 2 or len(fields[0]) != 64 or any(c not in "0123456789abcdefABCDEF" for c in fields[0]):
                raise CheckpointError(f"{sums}, line {number}: expected '<sha256>  <file name>' (64 hex digits), "
                                      f"got {line[:120]!r}")
            listed[fields[1].lstrip("*")] = fields[0].lower()
    return listed


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since 1.6 is a zip archive


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; errors name the file and say what is wrong.

    A file listed in a ``SHA256SUMS`` beside it must have the listed digest. A file that is
    empty, cut short, not a checkpoint at all, or that holds Python objects besides tensors
    and plain types (unsafe to unpickle: refused, never loaded another way) is a
    :class:`CheckpointError`, and so is one that holds something other than a dict.
    """
    path = Path(path)
    require_file(path)
    expected = listed_sums(path.parent).get(path.name)
    if expected is not None and (found := sha256(path)) != expected:
        raise CheckpointError(f"checkpoint {path} is damaged or was replaced: its SHA-256 {found} differs "
                              f"from {expected} listed in {path.parent / SUMS_FILE}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): a write that did not finish?")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unsafe, truncated, damaged or not a checkpoint: torch's messages vary by case
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if isinstance(exc, pickle.UnpicklingError) and found:  # torch's hint to unpickle it anyway is unsafe
            raise CheckpointError(f"checkpoint {path} holds Python objects other than tensors and plain types "
                                  f"({found.group(1)}); it is refused because loading them could run any code; "
                                  "save only state dicts") from None
        with open(path, "rb") as f:
            head = f.read(4)
        if head == _ZIP_MAGIC and not zipfile.is_zipfile(path):
            what = "is truncated or damaged (its zip archive is incomplete): a copy or a write that did not finish?"
        elif head == _ZIP_MAGIC:
            what = f"is damaged ({_torch_reason(exc)})"
        elif head[:1] == b"\x80":  # a pickle's protocol marker: torch.save's old format, or pickle.dump
            what = f"is a Python pickle that does not load as a checkpoint (cut short, or not written by torch.save: " \
                   f"{_torch_reason(exc)})"
        else:
            what = "is not a PyTorch checkpoint (not a torch.save zip archive)"
        raise CheckpointError(f"cannot load checkpoint {path} ({size} bytes): it {what}") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a checkpoint (a dict with "
                              "'model' weights)")
    return ckpt


def _torch_reason(exc: BaseException) -> str:
    """torch's reason for a failed load, short, without its advice to load with ``weights_only=False``
    (which would run whatever code the file holds)."""
    line = _first_line(exc)
    if "weights_only" in line or "Weights only" in line:
        return type(exc).__name__
    return f"{type(exc).__name__}: {line[:160]}"


def require_file(path: Path) -> None:
    """Raise :class:`CheckpointError` unless ``path`` is a file (a folder is named as one)."""
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; give a checkpoint file (e.g. "
                              f"{path / 'checkpoints' / 'best.pth'})")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")


def check_finite(ckpt: dict, path: str | Path) -> None:
    """Refuse a checkpoint whose model weights hold NaN or infinite values, naming them.

    Such weights predict NaN for every frame, which would be scored and reported as if they
    were a model's result.
    """
    bad = [name for name, v in (ckpt.get("model") or {}).items()
           if torch.is_tensor(v) and torch.is_floating_point(v) and not torch.isfinite(v).all()]
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CheckpointError(f"checkpoint {path} holds non-finite weights (NaN or inf) in {len(bad)} of "
                              f"{len(ckpt['model'])} tensors: {shown}; it cannot score anything (a run that "
                              "diverged? use an earlier checkpoint)")


def check_export_destination(src: str | Path, dst: str | Path) -> None:
    """Refuse to export over the source checkpoint or over a training checkpoint.

    A published file keeps only the weights, so writing it over ``src`` (the same path, a
    link to it) or over any checkpoint with optimizer or RNG state (``last.pth``,
    ``best.pth`` of a run) would lose what ``--resume`` needs.
    """
    src, dst = Path(src), Path(dst)
    if not dst.exists():
        return
    if dst.is_dir():
        raise CheckpointError(f"export destination {dst} is a folder; give the file to write, e.g. {dst / src.name}")
    if src.exists() and os.path.samefile(src, dst):
        raise CheckpointError(f"export destination {dst} is the source checkpoint {src}: exporting keeps only the "
                              "weights, so it would destroy the training state; write to another file")
    try:
        held = sorted(set(torch.load(dst, map_location="cpu", weights_only=True)) & {"optimizer", "rng"})
    except Exception:  # not a checkpoint we could read: overwriting it loses no training state we know of
        return
    if held:
        raise CheckpointError(f"export destination {dst} is a training checkpoint (it holds {' and '.join(held)} "
                              "state that --resume needs); write the export to another file")


# meta key -> (the config key it comes from, what a difference means), for messages
_META_KEYS = {"model_name": ("MODEL.NAME", "model"), "model_args": ("MODEL.ARGS", "model"),
              "image_size": ("DATASET.IMAGE_SIZE", "input"), "channels": ("DATASET.CHANNELS", "input")}


def check_compatible(ckpt: dict, meta: dict, path: str | Path) -> None:
    """Refuse a checkpoint made for another method, arguments or input, naming the first difference.

    Keys missing from an older checkpoint's ``meta`` are not compared. A model argument left
    out on one side counts as its default (``meta["model_defaults"]``, the checkpoint's own
    where it stored them), so writing out a default does not make a config incompatible; so
    does an argument of a network part (its registered constructor's default).
    """
    saved = ckpt.get("meta", {})
    for key, (cfg_key, what) in _META_KEYS.items():
        if key in saved:
            there, here = saved[key], meta.get(key)
            if key == "model_args" and isinstance(there, dict) and isinstance(here, dict):
                defaults = meta.get("model_defaults", {})
                there, here = {**saved.get("model_defaults", defaults), **there}, {**defaults, **here}
                there, here = with_part_defaults(there), with_part_defaults(here)
            found = _first_difference(there, here, cfg_key)
            if found is not None:
                name, there, here = found
                raise CheckpointError(f"checkpoint {path} was made for a different {what}: {name} is {there!r} "
                                      f"there but {here!r} in this config")


def trained_dataset(ckpt: dict) -> dict:
    """The ``DATASET`` section of the config a checkpoint was trained (or fitted) with; ``{}`` for
    a checkpoint that does not carry its config."""
    return ckpt.get("meta", {}).get("config", {}).get("DATASET", {})


def _first_difference(a: Any, b: Any, name: str) -> tuple[str, Any, Any] | None:
    """The first (dotted key, a value, b value) where nested dicts ``a`` and ``b`` differ; lists
    of dicts of the same length are compared item by item (``key[i]``), so that a Fusion's cues
    name the one argument that differs (a list of numbers is shown whole)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            found = _first_difference(a.get(k), b.get(k), f"{name}.{k}")
            if found is not None:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        a, b = list(a), list(b)
        if len(a) == len(b) and any(isinstance(x, dict) for x in a + b):
            for i, (x, y) in enumerate(zip(a, b)):
                found = _first_difference(x, y, f"{name}[{i}]")
                if found is not None:
                    return found
            return None
    return None if a == b else (name, a, b)


def load_model_weights(model: torch.nn.Module, ckpt: dict, path: str | Path) -> None:
    """Load the checkpoint's weights into ``model``; refuses non-finite weights and ones made for another model."""
    if "model" not in ckpt:
        raise CheckpointError(f"checkpoint {path} holds no model weights (keys: {', '.join(sorted(map(str, ckpt)))})")
    check_finite(ckpt, path)
    try:
        model.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} does not fit this model: {exc}") from exc


EXPORT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def export_weights(src: str | Path, dst: str | Path, dtype: str = "fp32", cfg: CfgNode | None = None) -> str:
    """Write the publishable part of checkpoint ``src`` to ``dst`` and list it in ``SHA256SUMS``.

    ``dst`` holds the model's weights, ``meta`` (with the config the checkpoint carries, or
    ``cfg`` when given, e.g. for a checkpoint written before checkpoints carried one; it must
    fit the checkpoint's model), ``step`` and, when they were measured on
    these weights, ``metrics`` (no optimizer, RNG or hook state: it can be tested, not
    resumed). ``dtype`` ``"bf16"`` stores the float32 weights as bfloat16, half the
    size; they load into a float32 model as they are (``load_state_dict`` casts), and
    ``weights_dtype`` says so. Tensors a method keeps in float64 on purpose (statistics such
    as a fusion's per-cue mean and std) stay as they are. Metrics measured on the float32 weights are then left out.
    Returns the SHA-256 digest of ``dst``.
    """
    if dtype not in EXPORT_DTYPES:
        raise ValueError(f"export dtype must be one of {sorted(EXPORT_DTYPES)}, got {dtype!r}")
    check_export_destination(src, dst)
    ckpt = load_checkpoint(src)
    if "model" not in ckpt:
        raise CheckpointError(f"checkpoint {src} holds no model weights (keys: {sorted(ckpt)})")
    check_finite(ckpt, src)
    published = {k: ckpt[k] for k in ("model", "meta", "step") if k in ckpt}
    if cfg is not None:
        check_compatible(ckpt, model_meta(cfg), src)
        published["meta"] = {**published.get("meta", {}), "config": cfg_to_dict(cfg)}
    if ckpt.get("metrics") and ckpt.get("metrics_step") == ckpt.get("step") and dtype == "fp32":
        published["metrics"] = ckpt["metrics"]
    if dtype != "fp32":
        cast = EXPORT_DTYPES[dtype]
        published["model"] = {k: v.to(cast) if v.dtype == torch.float32 else v for k, v in ckpt["model"].items()}
        published["weights_dtype"] = str(cast).removeprefix("torch.")
    dst = Path(dst)
    save_checkpoint(dst, published)
    digest = sha256(dst)
    sums = listed_sums(dst.parent)
    sums[dst.name] = digest
    try:
        atomic_write_text(dst.parent / SUMS_FILE, "".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
    except OSError as exc:
        raise CheckpointError(f"wrote {dst} but could not update {dst.parent / SUMS_FILE}: {exc.strerror or exc}; "
                              f"its SHA-256 is {digest} (list it there before loading it)") from exc
    return digest
