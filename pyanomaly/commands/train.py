"""Train a method from a config; writes the run directory (see README).

    pyanomaly train --cfg configs/prednet.yaml [--resume] [KEY VALUE ...]
    python tools/train.py --cfg configs/prednet.yaml [--resume] [KEY VALUE ...]
    torchrun --nproc_per_node 2 tools/train.py --cfg configs/prednet.yaml
"""
from __future__ import annotations

import argparse
from typing import Sequence

from .common import config_parser, run_cli


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = config_parser(__doc__, prog)
    parser.add_argument("--resume", action="store_true", help="continue the run in SYSTEM.OUTPUT_DIR exactly")
    return parser


def run(args: argparse.Namespace) -> None:
    from pyanomaly.config import load_cfg
    from pyanomaly.engine.launch import train
    cfg = load_cfg(args.cfg, args.opts)
    train(cfg, resume=args.resume, config_path=args.cfg)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    run_cli(lambda: run(build_parser(prog).parse_args(argv)))
