#!/usr/bin/env python
"""Train a method from a config; writes the run directory (see README).

    python tools/train.py --cfg configs/prednet.yaml [--resume] [KEY VALUE ...]
    torchrun --nproc_per_node 2 tools/train.py --cfg configs/prednet.yaml
"""
from pyanomaly.cli import config_parser, run_cli


def main() -> None:
    parser = config_parser(__doc__)
    parser.add_argument("--resume", action="store_true", help="continue the run in SYSTEM.OUTPUT_DIR exactly")
    args = parser.parse_args()
    from pyanomaly.config import load_cfg
    from pyanomaly.engine.launch import train
    cfg = load_cfg(args.cfg, args.opts)
    train(cfg, resume=args.resume, config_path=args.cfg)


if __name__ == "__main__":
    run_cli(main)
