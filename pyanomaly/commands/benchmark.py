"""Measure the machine's limit, each benchmark model and the data path, in one run; print tables.

    pyanomaly benchmark                                        # everything (~15 min on 2 cores)
    python tools/benchmark.py --models prednet_kitti --variants reference fp32 bf16 --json out.json
    python tools/benchmark.py --quick                          # one repeat, no sweep/ablation/precision/data/stream
    python tools/benchmark.py --models unet_ped2 --multistream-only --streams 1 2 4 8   # the multi-stream table alone
    python tools/benchmark.py --device cuda                    # where a GPU exists
    python tools/benchmark.py --concurrency                    # jobs side by side (~5 min)
    python tools/benchmark.py --scoring checkpoints/ped2_cues.pth --video ../shared/data/ped2/testing/frames/01

Variants: reference (the plain fp32 code: the "before"), fp32 and bf16 (the optimised
inference path; bf16 = bfloat16 autocast, opt-in), fused and fused-bf16 (the same with the
LSTM update as one torch.compile'd pass: TEST.FUSED_UPDATE), compile and compile-bf16
(torch.compile of the plain code); compile times reported. The Ped2 recipes are also timed as
their ONNX export in onnxruntime, beside PyTorch (--no-onnxruntime skips it). See
docs/benchmarks.md for how to read the tables.

OMP_WAIT_POLICY is set to PASSIVE unless already set (it must be set before torch starts):
on a machine shared with other processes, OpenMP threads that spin while waiting make every
parallel region wait for a descheduled thread (10x slower measured here with 2 threads).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from .common import plain_parser, run_cli


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The options; imports torch (the variants' names), so :func:`set_omp_wait_policy` comes first."""
    from pyanomaly.benchmark.models import VARIANTS
    p = plain_parser(__doc__, prog)
    p.add_argument("--models", nargs="+", default=None,
                   help="models to measure (default: all; names in docs/benchmarks.md, MODEL_CONFIGS of "
                        "pyanomaly/benchmark/models.py)")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=["reference", "fp32", "bf16"],
                   help="code paths to measure (default: reference fp32 bf16)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per figure; medians are reported")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--omp-wait-policy", choices=("passive", "active", "keep"), default="passive",
                   help="OMP_WAIT_POLICY unless already set in the environment ('keep': do not set)")
    p.add_argument("--no-train", action="store_true", help="skip the training figures")
    p.add_argument("--no-sweep", action="store_true", help="skip frames/s against the clip length")
    p.add_argument("--no-ablation", action="store_true", help="skip the ablation of the fast path")
    p.add_argument("--no-precision", action="store_true", help="skip bf16 against fp32 on the synthetic set")
    p.add_argument("--no-data", action="store_true", help="skip the data-path figures")
    p.add_argument("--no-stream", action="store_true", help="skip the end-to-end streaming loop (decode to score)")
    p.add_argument("--no-onnxruntime", action="store_true",
                   help="skip onnxruntime beside PyTorch (the Ped2 recipes' ONNX export; docs/export.md)")
    p.add_argument("--no-multistream", action="store_true",
                   help="skip the multi-stream table (N streams batched in one process against one process per "
                        "stream; for unet_ped2 and prednet_ped2 when measured)")
    p.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8], metavar="N",
                   help="numbers of streams of the multi-stream table (default 1 2 4 8)")
    p.add_argument("--stream-seconds", type=float, default=5.0, metavar="S",
                   help="seconds each multi-stream figure is measured for (default 5)")
    p.add_argument("--multistream-only", action="store_true",
                   help="measure the multi-stream table alone (no machine limit, no model rows)")
    p.add_argument("--quick", action="store_true",
                   help="one repeat; no sweep, ablation, precision, data, stream or multi-stream")
    p.add_argument("--concurrency", action="store_true",
                   help="only measure jobs side by side (training + training, training + scoring; ~5 min): "
                        "what each keeps of its speed alone")
    p.add_argument("--scoring", nargs="+", metavar="CKPT",
                   help="only measure these published checkpoints scoring --video end to end: decode, each cue, "
                        "frames/s (pyanomaly/benchmark/scoring_speed.py)")
    p.add_argument("--video", metavar="PATH", help="the video (file or frame folder) --scoring scores")
    p.add_argument("--frames", type=int, default=0, metavar="N",
                   help="--scoring reads only the first N frames of --video (default 0: all)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    return p


def run(args: argparse.Namespace) -> None:
    import torch

    from pyanomaly.benchmark import Options, format_report, run_benchmarks
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.concurrency:
        import tempfile
        from pathlib import Path

        from pyanomaly.benchmark.concurrency import concurrency, format_concurrency
        with tempfile.TemporaryDirectory(prefix="pyanomaly-concurrency-") as tmp:
            rows = concurrency(Path(tmp), log=lambda s: print(s, flush=True))
        print()
        print(format_concurrency(rows))
        if args.json:
            from pyanomaly.utils import atomic_write_text
            atomic_write_text(args.json, json.dumps({"concurrency": rows}, indent=2))
        return
    if args.scoring:
        from pyanomaly.benchmark.scoring_speed import format_scoring_speed, scoring_speed
        from pyanomaly.errors import ConfigError
        if not args.video:
            raise ConfigError("--scoring needs --video PATH: the video (file or frame folder) the checkpoints score")
        rows = [row for c in args.scoring
                for row in scoring_speed(c, args.video, args.device, args.frames, log=lambda s: print(s, flush=True))]
        print()
        print(format_scoring_speed(rows))
        if args.json:
            from pyanomaly.utils import atomic_write_text
            atomic_write_text(args.json, json.dumps({"scoring": rows}, indent=2))
        return
    quick = args.quick
    opts = Options(models=args.models or list(Options().models), variants=args.variants, device=args.device,
                   repeats=1 if quick else args.repeats, train=not args.no_train, sweep=not (args.no_sweep or quick),
                   ablation=not (args.no_ablation or quick), precision=not (args.no_precision or quick),
                   data=not (args.no_data or quick), stream=not (args.no_stream or quick),
                   multistream=not (args.no_multistream or quick), streams=args.streams,
                   stream_seconds=args.stream_seconds, multistream_only=args.multistream_only)
    if args.no_onnxruntime:
        opts.onnxruntime_models = []
    report = run_benchmarks(opts, log=lambda s: print(s, flush=True))
    print()
    print(format_report(report))
    if args.json:
        from pyanomaly.utils import atomic_write_text
        atomic_write_text(args.json, json.dumps(report, indent=2))


def set_omp_wait_policy(argv: Sequence[str]) -> None:
    """OMP_WAIT_POLICY from ``--omp-wait-policy`` (default passive), unless set: read by the
    OpenMP runtime when torch loads, so this runs before anything imports torch."""
    policy = "passive"
    for i, a in enumerate(argv):
        if a == "--omp-wait-policy" and i + 1 < len(argv):
            policy = argv[i + 1]
        elif a.startswith("--omp-wait-policy="):
            policy = a.split("=", 1)[1]
    if policy in ("passive", "active") and "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", policy.upper())


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    set_omp_wait_policy(argv)  # before the parser, which imports torch
    run_cli(lambda: run(build_parser(prog).parse_args(argv)))
