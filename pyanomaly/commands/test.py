"""Score the test split with a trained checkpoint, or re-evaluate exported scores without the model.

Writes metrics.json, scores/, plots/ and report.html to SYSTEM.OUTPUT_DIR.

    pyanomaly test --cfg configs/prednet.yaml --checkpoint outputs/prednet/checkpoints/best.pth [KEY VALUE ...]
    python tools/test.py --cfg configs/prednet.yaml --scores outputs/prednet/scores/frame_scores.csv \\
        SYSTEM.OUTPUT_DIR outputs/prednet_sigma3 SCORE.SMOOTH_SIGMA 3.0

--scores re-derives every score from the exported raw `error` column under the config's
SCORE.* / EVAL.* protocol (normalisation, smoothing, missing frames, thresholds); it reads
frame_scores.csv / .json, or a scores/ or scores/npy/ folder.
"""
from __future__ import annotations

import argparse
from typing import Sequence

from .common import config_parser, run_cli


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = config_parser(__doc__, prog)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="CKPT", help="checkpoint (.pth) to load and score the test split with")
    source.add_argument("--scores", metavar="FILE", help="exported scores to re-evaluate (no model, no --checkpoint)")
    return parser


def run(args: argparse.Namespace) -> None:
    from pyanomaly.config import load_cfg
    cfg = load_cfg(args.cfg, args.opts)
    if args.scores:
        from pyanomaly.engine.rescore import rescore
        rescore(cfg, args.scores, config_path=args.cfg)
    else:
        from pyanomaly.engine.launch import test
        test(cfg, args.checkpoint, config_path=args.cfg)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    run_cli(lambda: run(build_parser(prog).parse_args(argv)))
