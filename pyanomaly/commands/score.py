"""Score your own video or a live stream with a trained checkpoint: per-frame scores, alarms, an annotated video.

    pyanomaly score --checkpoint outputs/prednet/checkpoints/best.pth --video my_clip.avi \\
        --out outputs/my_clip [--render] [--maps] [KEY VALUE ...]
    pyanomaly score --checkpoint best.pth --video rtsp://user:pass@camera/stream 0 --out outputs/live \\
        --duration 3600
    python tools/score_video.py (the same options)

--cfg is needed only for a checkpoint that does not carry its config (written before
checkpoints stored theirs); KEY VALUE overrides apply to the carried config too.

--video takes one or more of: a video file OpenCV can read, a folder of frame images, a folder
of video files, a camera index (0, 1, ...) or an rtsp://, rtsps://, http:// or https:// URL
(read through OpenCV's FFmpeg backend). All are scored together through one model, their
frames batched into shared forward passes, each with its own state, normaliser and alarms
(exactly as if scored alone). A live source is read by a
thread into a queue of STREAM.QUEUE_SIZE frames (when scoring falls behind, the oldest frames
are dropped and counted); when it stops, it is reconnected with back-off (STREAM.RECONNECT_*)
and given up after STREAM.RECONNECT_GIVE_UP seconds without a frame. It runs until the stream
ends, --max-frames, --duration or Ctrl-C; outputs are written in every case.

Frames are resized to DATASET.IMAGE_SIZE / DATASET.CHANNELS and predicted chunk by chunk
(TEST.CHUNK) with the model's state carried; scores follow the live protocol of the STREAM
section (a causal normaliser, STREAM.NORMALIZE; STREAM.SMOOTH_SIGMA > 0 smooths one-sided),
so every score uses earlier frames only. An alarm is >= STREAM.ALARM_MIN_FRAMES consecutive
frames scoring above STREAM.ALARM_THRESHOLD. Writes to --out: frame_scores.csv (video, frame,
time_s, error, score), alarms.json (alarms, latency p50/p95/max from capture to score, frames
dropped, reconnects), plots/<video>.png and, with --render, annotated/<video>.mp4.

--maps also writes maps/<video>.npy: each frame's per-pixel error map, (N, h, w) float16, NaN
where the frame has no prediction, averaged over EVAL.MAPS_DOWNSAMPLE x EVAL.MAPS_DOWNSAMPLE
pixel blocks (default 4). The map is the scorer's (SCORE.ERROR): PSNR/MSE the squared error,
AREA the absolute error, CELL_MAX/CELL_TOP the method's anomaly map; FRAME_ERROR has none and
is refused. With --render too, the annotated frames show the map as a heat overlay (JET
colours) where it exceeds twice the stream's reference, the median over the last 300 frames
so far of each frame's 99th-percentile map value (no future frame is read); dark red at four
times the reference or more.
"""
from __future__ import annotations

import argparse
from typing import Sequence

from .common import config_parser, run_cli


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = config_parser(__doc__, prog, cfg_help="YAML config; default: the one the checkpoint carries")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint (.pth) to load")
    parser.add_argument("--video", required=True, nargs="+", action="extend", metavar="PATH_OR_URL",
                        help="one or more: video file, frame folder, folder of video files, camera index, "
                             "rtsp(s):// or http(s):// URL")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                        help="what runs the network: torch (default) or its ONNX export in onnxruntime (docs/export.md)")
    parser.add_argument("--render", action="store_true", help="also write an annotated video (score bar, alarms)")
    parser.add_argument("--maps", action="store_true",
                        help="also write maps/<video>.npy, each frame's per-pixel error map (N, h, w) float16, NaN "
                             "without prediction, EVAL.MAPS_DOWNSAMPLE times smaller; with --render, drawn as a "
                             "heat overlay")
    parser.add_argument("--max-frames", type=_positive(int), metavar="N",
                        help="end each video after N scored frames (a live stream otherwise runs until it ends)")
    parser.add_argument("--duration", type=_positive(float), metavar="SECONDS",
                        help="end each video after SECONDS of scoring")
    return parser


def run(args: argparse.Namespace) -> None:
    from pyanomaly.api import checkpoint_cfg
    from pyanomaly.engine.streaming import score_video
    cfg = checkpoint_cfg(args.checkpoint, args.cfg, args.opts)
    score_video(cfg, args.checkpoint, args.video, args.out, render=args.render, config_path=args.cfg,
                max_frames=args.max_frames, duration=args.duration, backend=args.backend, maps=args.maps)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    run_cli(lambda: run(build_parser(prog).parse_args(argv)))
