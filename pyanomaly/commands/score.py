"""Score your own video as a stream with a trained checkpoint: per-frame scores, alarms, an annotated video.

    pyanomaly score --cfg configs/prednet.yaml --checkpoint outputs/prednet/checkpoints/best.pth \\
        --video my_clip.avi --out outputs/my_clip [--render] [KEY VALUE ...]
    python tools/score_video.py (the same options)

--video takes a video file OpenCV can read, a folder of frame images, or a folder of video files.
Frames are resized to DATASET.IMAGE_SIZE / DATASET.CHANNELS and predicted chunk by chunk
(TEST.CHUNK) with the model's state carried; scores follow the live protocol of the STREAM
section (a causal normaliser, STREAM.NORMALIZE; STREAM.SMOOTH_SIGMA > 0 smooths one-sided),
so every score uses earlier frames only. An alarm is >= STREAM.ALARM_MIN_FRAMES consecutive
frames scoring above STREAM.ALARM_THRESHOLD. Writes to --out: frame_scores.csv (video, frame,
time_s, error, score), alarms.json, plots/<video>.png and, with --render, annotated/<video>.mp4.
"""
from __future__ import annotations

import argparse
from typing import Sequence

from .common import config_parser, run_cli


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = config_parser(__doc__, prog)
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint (.pth) to load")
    parser.add_argument("--video", required=True, metavar="PATH_OR_FOLDER",
                        help="video file, frame folder, or folder of video files")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                        help="what runs the network: torch (default) or its ONNX export in onnxruntime (docs/export.md)")
    parser.add_argument("--render", action="store_true", help="also write an annotated video (score bar, alarms)")
    return parser


def run(args: argparse.Namespace) -> None:
    from pyanomaly.config import load_cfg
    from pyanomaly.engine.streaming import score_video
    cfg = load_cfg(args.cfg, args.opts)
    score_video(cfg, args.checkpoint, args.video, args.out, render=args.render, config_path=args.cfg,
                backend=args.backend)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    run_cli(lambda: run(build_parser(prog).parse_args(argv)))
