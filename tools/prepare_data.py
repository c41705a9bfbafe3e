"""Validate a dataset and print a per-split summary (videos, frames, anomalous frames, sizes).

Builds both splits of the configured dataset, which decodes every video once into the frame
cache (``DATASET.CACHE_DIR``) and checks every ground-truth file against its video. Any
problem is one line ``error: ...`` and exit status 1.

Usage:
    python tools/prepare_data.py --cfg configs/datasets/ped2.yaml
    python tools/prepare_data.py --cfg configs/datasets/avenue.yaml DATASET.ROOT /data/avenue --per-video
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pyanomaly.datasets.summary import configure_logging, main  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cfg", required=True, help="config file (YAML), e.g. configs/datasets/ped2.yaml")
    parser.add_argument("--per-video", action="store_true", help="also list frames and anomalous frames per video")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE", help="config overrides, e.g. DATASET.ROOT /data/ped2")
    return parser.parse_intermixed_args(argv)


if __name__ == "__main__":
    args = parse_args()
    configure_logging()
    sys.exit(main(args.cfg, args.opts, per_video=args.per_video, debug=args.debug))
