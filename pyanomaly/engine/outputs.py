"""Where ``tools/test.py`` writes: never over the run it reads a checkpoint or scores from.

A test or re-scoring run writes ``config.yaml``, ``log.txt``, ``metrics.json``, ``scores/``,
``plots/`` and ``report.html``. Its output folder is chosen here:

* ``SYSTEM.OUTPUT_DIR`` not given on the command line (the YAML's value names the training
  run): a new folder beside the run read from,
  ``<run>/../<run-name>_test_<config-stem>_<YYYYmmdd-HHMMSS>`` (``_rescore_`` for ``--scores``);
  for a checkpoint outside a run directory (a published one) ``<run>`` is the config's
  ``SYSTEM.OUTPUT_DIR``.
* ``SYSTEM.OUTPUT_DIR`` given: used if it is missing or empty, or with ``--overwrite``;
  the run read from is refused even then.

Example:
    >>> source_run("outputs/prednet/checkpoints/best.pth")  # doctest: +SKIP
    PosixPath('outputs/prednet')
"""
from __future__ import annotations

import time
from pathlib import Path

from pyanomaly.errors import ConfigError

__all__ = ["source_run", "scores_run", "choose_output_dir"]


def source_run(checkpoint: str | Path) -> Path | None:
    """The run directory holding ``checkpoint`` (``<run>/checkpoints/x.pth`` with a
    ``config.yaml`` or ``log.txt`` in ``<run>``), else None (a published checkpoint)."""
    parent = Path(checkpoint).parent
    run = parent.parent
    if parent.name == "checkpoints" and ((run / "config.yaml").is_file() or (run / "log.txt").is_file()):
        return run
    return None


def scores_run(scores: str | Path) -> Path:
    """The folder whose exported scores are read: ``<run>`` for ``<run>/scores/...`` or
    ``<run>/scores/npy``, else the folder holding the file."""
    p = Path(scores)
    p = p if p.is_dir() else p.parent
    while p.name in ("scores", "npy") and p.parent != p:
        p = p.parent
    return p


def choose_output_dir(given: str | Path, source: Path | None, kind: str, config_path: str | None,
                    new: bool, overwrite: bool = False) -> Path:
    """The output folder of a ``kind`` (``"test"`` or ``"rescore"``) run reading ``source``.

    ``new``: make a fresh folder beside ``source`` (or beside ``given`` when there is no
    source) named for the config and the time. Otherwise ``given`` is used, refused (one
    line naming it) when it is ``source`` or, without ``overwrite``, not empty.
    """
    if new:
        base = source if source is not None else Path(given)
        stem = Path(config_path).stem if config_path else "config"
        name = f"{base.name or 'run'}_{kind}_{stem}_{time.strftime('%Y%m%d-%H%M%S')}"
        out, n = base.parent / name, 2
        while out.exists():  # two tests in the same second
            out, n = base.parent / f"{name}_{n}", n + 1
        return out
    out = Path(given)
    reads = "scores from" if kind == "rescore" else "the checkpoint from"
    if source is not None and out.resolve() == source.resolve():
        raise ConfigError(f"SYSTEM.OUTPUT_DIR {out} is the run this {kind} reads {reads}: it is never written over; "
                          "name another folder, or leave SYSTEM.OUTPUT_DIR out for a new one beside the run")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"SYSTEM.OUTPUT_DIR {out} exists and is not empty; pass --overwrite to write over it, "
                          "or name another folder")
    return out
