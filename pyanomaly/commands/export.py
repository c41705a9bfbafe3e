"""Publish a trained checkpoint: keep the weights, meta (with the config), step and metrics; list its SHA-256.

    pyanomaly export outputs/ped2_convlstm/checkpoints/last.pth checkpoints/ped2_convlstm.pth
    python tools/export_checkpoint.py outputs/ped2_unet_native/checkpoints/last.pth releases/unet.pth --dtype bf16
    pyanomaly export old_run/last.pth releases/old.pth --cfg configs/prednet.yaml [KEY VALUE ...]
    pyanomaly export --format onnx outputs/prednet/checkpoints/best.pth prednet.onnx

The output (no optimizer or RNG state, so a fraction of the size) loads with
`tools/test.py --checkpoint` and with `pyanomaly.load(...)`, which checks it against the
SHA256SUMS file written beside it (`sha256sum -c SHA256SUMS` checks it too). It carries the
config it was trained with, so `pyanomaly.load` needs no YAML; for a checkpoint written
before checkpoints carried their config, --cfg (and overrides) gives the config to store,
checked against the checkpoint's model first.

--format onnx writes the method's network as an ONNX graph instead (docs/export.md): the
window of history frames -> the next frame for FramePredictor (U-Net, ConvLSTM forecaster) and
Forecaster; PredNet's single step with its state as explicit inputs and outputs for
PredNetPredictor; the PCM's step (state explicit) beside the ERM for AnoPCN. onnxruntime is
run on random input beside PyTorch first, and the file is written only when every output
agrees to 1e-4. What cannot be exported (STREAMER, which learns as it streams) is refused
with the reason.
"""
from __future__ import annotations

import argparse
from typing import Sequence

from .common import plain_parser, run_cli


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = plain_parser(__doc__, prog)
    parser.add_argument("src", help="checkpoint written by tools/train.py")
    parser.add_argument("dst", help="file to write (--format pth: its digest goes to SHA256SUMS in the same folder)")
    parser.add_argument("--format", choices=("pth", "onnx"), default="pth",
                        help="pth: a published checkpoint (default); onnx: the method's network as an ONNX graph, "
                             "checked against PyTorch with onnxruntime")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: store the weights as bfloat16, half the size (default fp32)")
    parser.add_argument("--cfg", metavar="FILE", default=None,
                        help="config to store in the output, for a checkpoint that carries none (default: the "
                             "checkpoint's own)")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE", help="overrides of --cfg, e.g. DATASET.ROOT data/x")
    return parser


def run(args: argparse.Namespace) -> None:
    from pyanomaly.engine.checkpoint import check_export_destination, export_weights
    check_export_destination(args.src, args.dst)  # before anything is read or written, whatever the format
    cfg = None
    if args.cfg:
        from pyanomaly.config import load_cfg
        cfg = load_cfg(args.cfg, args.opts)
    if args.format == "onnx":
        _export_onnx(args, cfg)
        return
    digest = export_weights(args.src, args.dst, args.dtype, cfg=cfg)
    print(f"{digest}  {args.dst}")


def _export_onnx(args: argparse.Namespace, cfg) -> None:
    from pyanomaly.api import load
    from pyanomaly.deploy.onnx import export_onnx
    from pyanomaly.errors import ExportError
    if args.dtype != "fp32":
        raise ExportError(f"--dtype {args.dtype} is for --format pth; an ONNX export is float32")
    det = load(args.src, cfg, device="cpu")
    print(export_onnx(det.model, args.dst, det.cfg.DATASET.IMAGE_SIZE, det.cfg.DATASET.CHANNELS,
                      meta={"pyanomaly.checkpoint": str(args.src)}))


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    parser = build_parser(prog)
    args = parser.parse_intermixed_args(argv)
    if args.opts and not args.cfg:
        parser.error("KEY VALUE overrides are overrides of --cfg; give --cfg too")
    run_cli(lambda: run(args))
