#!/usr/bin/env python
"""Score the test split with a trained checkpoint; writes metrics.json, scores/ and plots/.

    python tools/test.py --cfg configs/prednet.yaml --checkpoint outputs/prednet/checkpoints/best.pth [KEY VALUE ...]
"""
from pyanomaly.cli import config_parser, run_cli


def main() -> None:
    parser = config_parser(__doc__)
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint (.pth) to load")
    args = parser.parse_args()
    from pyanomaly.config import load_cfg
    from pyanomaly.engine.launch import test
    cfg = load_cfg(args.cfg, args.opts)
    test(cfg, args.checkpoint, config_path=args.cfg)


if __name__ == "__main__":
    run_cli(main)
