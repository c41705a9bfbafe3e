"""Validate a dataset and print a per-split summary (videos, frames, anomalous frames, sizes).

Builds both splits of the configured dataset as ``tools/train.py`` of the config reads them
(the training split under the frame budget its method reads it with), which decodes them once
into the frame cache (``DATASET.CACHE_DIR``) and checks every ground-truth file against its
video; for a fusion whose learned cue is trained on this dataset first, the cue recipe's training
split too (at its frame size). Any problem is one line ``error: ...`` and exit status 1.
Truncated media (a video decoding to fewer frames than its container claims, a cut or empty
frame file) are listed one line each and give exit status 1 unless DATASET.ACCEPT_TRUNCATED is
True; --per-video shows the frames decoded and claimed per video.

Usage:
    pyanomaly prepare --cfg configs/datasets/ped2.yaml
    python tools/prepare_data.py --cfg configs/datasets/avenue.yaml DATASET.ROOT /data/avenue --per-video
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n\n")[0],
        epilog="Truncated media (a video decoding to fewer frames than its container claims, a cut or empty "
               "frame file) are listed and give exit status 1 unless DATASET.ACCEPT_TRUNCATED True is given.")
    parser.add_argument("--cfg", required=True, help="config file (YAML), e.g. configs/datasets/ped2.yaml")
    parser.add_argument("--per-video", action="store_true", help="also list per video the frames decoded, the frames its container claims (or its "
                        "number of frame files), anomalous frames and whether it is truncated")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE", help="config overrides, e.g. DATASET.ROOT /data/ped2")
    return parser


def parse_args(argv: Sequence[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    return build_parser(prog).parse_intermixed_args(argv)


def run(args: argparse.Namespace) -> int:
    """Returns the exit status (errors are reported by the summary itself, as one line)."""
    from pyanomaly.datasets.summary import configure_logging, main as summarise
    from pyanomaly.engine.reads import run_reads
    configure_logging()
    return summarise(args.cfg, args.opts, per_video=args.per_video, debug=args.debug, reads=run_reads)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    sys.exit(run(parse_args(argv, prog)))
