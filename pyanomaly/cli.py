"""The ``pyanomaly`` console command: ``pyanomaly <command> [options]``.

Each command is the same code as its ``tools/`` script (``pyanomaly.commands.<command>``),
with the same options:

    pyanomaly train --cfg configs/prednet.yaml [--resume] [KEY VALUE ...]       tools/train.py
    pyanomaly test --cfg FILE --checkpoint CKPT [KEY VALUE ...]                  tools/test.py
    pyanomaly score --cfg FILE --checkpoint CKPT --video PATH --out DIR          tools/score_video.py
    pyanomaly export SRC DST [--dtype bf16] [--cfg FILE]                         tools/export_checkpoint.py
    pyanomaly prepare --cfg FILE [--per-video]                                   tools/prepare_data.py
    pyanomaly benchmark [--quick] [--json FILE]                                  tools/benchmark.py
    pyanomaly synth --out DIR [--seed N]                                         tools/make_synthetic.py

``python -m pyanomaly`` is the same command.
"""
from __future__ import annotations

import difflib
import sys
from typing import Sequence

from pyanomaly.commands import benchmark, export, prepare, score, synth, test, train
from pyanomaly.commands.common import ConfigArgumentParser, config_parser, run_cli

__all__ = ["COMMANDS", "main", "ConfigArgumentParser", "config_parser", "run_cli"]

# name -> (module, its tools/ script, one line for the overview); in the order of a user's work
COMMANDS = {
    "synth": (synth, "make_synthetic.py", "write the generated surveillance scene (labelled anomalies)"),
    "prepare": (prepare, "prepare_data.py", "validate a dataset and print a per-split summary"),
    "train": (train, "train.py", "train a method from a config; writes the run directory"),
    "test": (test, "test.py", "score the test split with a checkpoint, or re-evaluate exported scores"),
    "score": (score, "score_video.py", "score your own video as a stream: per-frame scores, alarms"),
    "export": (export, "export_checkpoint.py", "publish a checkpoint: weights, meta, config, SHA-256"),
    "benchmark": (benchmark, "benchmark.py", "measure speed against the machine's limit"),
}


def usage() -> str:
    from pyanomaly import __version__
    width = max(map(len, COMMANDS))
    lines = [f"usage: pyanomaly <command> [options]   (pyanomaly {__version__})", "",
             "Video anomaly detection by frame prediction. Commands (each prints its options with --help):", ""]
    lines += [f"  {name:<{width}}  {line}  (tools/{script})" for name, (_, script, line) in COMMANDS.items()]
    lines += ["", "Python API: import pyanomaly; pyanomaly.load(CKPT).score(VIDEO)  (docs/api.md)"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``pyanomaly <command> ...`` (``argv`` without the program name; default ``sys.argv[1:]``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(usage())
        sys.exit(0 if argv else 2)
    if argv[0] == "--version":
        from pyanomaly import __version__
        print(f"pyanomaly {__version__}")
        sys.exit(0)
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        print(f"pyanomaly: error: unknown command '{name}'{hint}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        sys.exit(2)
    COMMANDS[name][0].main(rest, prog=f"pyanomaly {name}")
