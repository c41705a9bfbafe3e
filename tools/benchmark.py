#!/usr/bin/env python
"""Measure the machine's limit, each benchmark model and the data path; print a table.

    python tools/benchmark.py [--models prednet_kitti convlstm_64] [--bf16] [--json FILE] [--device cuda]
"""
import argparse
import json

from pyanomaly.cli import run_cli


def main() -> None:
    from pyanomaly.benchmark import MODEL_CONFIGS, format_report, run_benchmarks
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", choices=sorted(MODEL_CONFIGS), help="models to measure (default: all)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per figure; medians are reported")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--bf16", action="store_true", help="also measure every model under bfloat16 autocast")
    p.add_argument("--no-data", action="store_true", help="skip the data-path figures")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    args = p.parse_args()
    import torch
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    report = run_benchmarks(args.models, args.device, args.repeats, args.bf16, not args.no_data)
    print(format_report(report))
    if args.json:
        from pyanomaly.utils import atomic_write_text
        atomic_write_text(args.json, json.dumps(report, indent=2))


if __name__ == "__main__":
    run_cli(main)
