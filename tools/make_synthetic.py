#!/usr/bin/env python
"""Write the generated surveillance scene (labelled anomalies) in the frame-folder layout.

    python tools/make_synthetic.py --out data/synthetic [--seed 0] [--size 128] ...
"""
import argparse

from pyanomaly.cli import run_cli


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="destination folder (must not exist or be empty)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=int, default=128, help="frame side in pixels (default 128)")
    p.add_argument("--train-videos", type=int, default=8, help="training videos (default 8)")
    p.add_argument("--test-videos", type=int, default=6, help="test videos (default 6)")
    p.add_argument("--frames", type=int, default=150, help="frames per video (default 150)")
    p.add_argument("--density", type=float, default=1.0, help="pedestrian density (default 1.0)")
    args = p.parse_args()
    from pyanomaly.datasets.synthetic import make_synthetic
    out = make_synthetic(args.out, seed=args.seed, size=args.size, num_train=args.train_videos,
                         num_test=args.test_videos, frames_per_video=args.frames, density=args.density)
    print(f"wrote {out} (training/, testing/, testing/labels.csv)")


if __name__ == "__main__":
    run_cli(main)
