"""Write the generated surveillance scene (labelled anomalies) in the frame-folder layout.

    pyanomaly synth --out data/synthetic [--seed 0] [--size 128] [--kinds fast ... fall] ...
    python tools/make_synthetic.py --out data/synthetic [--seed 0] [--size 128] ...
"""
from __future__ import annotations

import argparse
from typing import Sequence

from .common import plain_parser, run_cli


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from pyanomaly.datasets.synthetic import ANOMALY_KINDS, DEFAULT_KINDS
    p = plain_parser(__doc__, prog)
    p.add_argument("--out", required=True, help="destination folder (must not exist or be empty)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=int, default=128, help="frame side in pixels (default 128)")
    p.add_argument("--train-videos", type=int, default=8, help="training videos (default 8)")
    p.add_argument("--test-videos", type=int, default=6, help="test videos (default 6)")
    p.add_argument("--frames", type=int, default=150, help="frames per video (default 150)")
    p.add_argument("--density", type=float, default=1.0, help="pedestrian density (default 1.0)")
    p.add_argument("--kinds", nargs="+", default=list(DEFAULT_KINDS), choices=ANOMALY_KINDS, metavar="KIND",
                   help=f"anomaly kinds, cycled over the test videos (default: {' '.join(DEFAULT_KINDS)}; "
                        f"all: {' '.join(ANOMALY_KINDS)}; left_behind and fall are static)")
    return p


def run(args: argparse.Namespace) -> None:
    from pyanomaly.datasets.synthetic import make_synthetic
    out = make_synthetic(args.out, seed=args.seed, size=args.size, num_train=args.train_videos,
                         num_test=args.test_videos, frames_per_video=args.frames, density=args.density,
                         kinds=tuple(args.kinds))
    print(f"wrote {out} (training/, testing/, testing/labels.csv, testing/events.csv)")


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    run_cli(lambda: run(build_parser(prog).parse_args(argv)))
