"""Score the test split with a trained checkpoint, or re-evaluate exported scores without the model.

Writes config.yaml, log.txt, metrics.json, scores/, plots/ and report.html to a new folder
beside the run read from, <run>_test_<config>_<YYYYmmdd-HHMMSS> (<run>_rescore_... with
--scores; <run> is SYSTEM.OUTPUT_DIR for a checkpoint outside a run), or to SYSTEM.OUTPUT_DIR
when it is given on the command line: it must be empty or missing (or pass --overwrite), and
is never the run read from.

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
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a SYSTEM.OUTPUT_DIR given on the command line even if it is not empty "
                             "(never the run read from)")
    return parser


def output_dir_given(opts: Sequence[str]) -> bool:
    """``SYSTEM.OUTPUT_DIR`` is among the ``KEY VALUE`` overrides."""
    return "SYSTEM.OUTPUT_DIR" in list(opts)[0::2]


def run(args: argparse.Namespace) -> None:
    from pyanomaly.config import load_cfg
    cfg = load_cfg(args.cfg, args.opts)
    new = not output_dir_given(args.opts)
    if args.scores:
        from pyanomaly.engine.rescore import rescore
        rescore(cfg, args.scores, config_path=args.cfg, new_output_dir=new, overwrite=args.overwrite)
    else:
        from pyanomaly.engine.launch import test
        test(cfg, args.checkpoint, config_path=args.cfg, new_output_dir=new, overwrite=args.overwrite)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    run_cli(lambda: run(build_parser(prog).parse_args(argv)))
