#!/usr/bin/env python
"""Publish a trained checkpoint: keep the weights, meta, step and metrics; list its SHA-256.

    python tools/export_checkpoint.py outputs/ped2_convlstm/checkpoints/last.pth checkpoints/ped2_convlstm.pth
    python tools/export_checkpoint.py outputs/ped2_unet_native/checkpoints/last.pth releases/unet.pth --dtype bf16

The output (no optimizer or RNG state, so a fraction of the size) loads with
`tools/test.py --checkpoint`, which checks it against the SHA256SUMS file written beside it
(`sha256sum -c SHA256SUMS` checks it too).
"""
import argparse

from pyanomaly.cli import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="checkpoint written by tools/train.py")
    parser.add_argument("dst", help="file to write; its digest goes to SHA256SUMS in the same folder")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: store the weights as bfloat16, half the size (default fp32)")
    args = parser.parse_args()
    from pyanomaly.engine.checkpoint import export_weights
    digest = export_weights(args.src, args.dst, args.dtype)
    print(f"{digest}  {args.dst}")


if __name__ == "__main__":
    run_cli(main)
