"""The GPU path, checked end to end in a few minutes: ``tools/gpu_check.sh``.

On a machine with CUDA GPUs it runs, each step a real tool in its own process:

1. ``environment``: torch, CUDA, the GPUs by name, bf16 support;
2. ``train``: a tiny PredNet on a generated scene, deterministic, fp32 (TF32 off), on the GPU
   and on the CPU with the same seed; the loss curves must agree (relative ``LOSS_RTOL``);
3. ``resume``: half the steps, ``--resume`` to the end; the weights must equal those of the
   uninterrupted run (``WEIGHT_ATOL``);
4. ``test``: ``tools/test.py --checkpoint`` in fp32 and in bf16; the AUC within ``AUC_ATOL``
   of the CPU's fp32 one;
5. ``ddp``: ``torchrun`` over the visible GPUs (NCCL), ``B`` clips per process against one
   process with ``n·B``; the loss curves agree (needs 2 or more GPUs, else skipped and said);
6. ``tf32``: the same training with ``SYSTEM.TF32 True`` stays near the fp32 curve;
7. ``benchmark``: ``tools/benchmark.py --device cuda`` for the Ped2 recipes' models (fp32 and
   bf16, per-model frames/s and the end-to-end streaming row).

Writes ``OUT/gpu_check.json`` and ``OUT/gpu_check.md`` (tables to paste into
``docs/benchmarks.md``, the GPU named) and exits non-zero when a check fails.
``--device cpu`` rehearses every step on the CPU (DDP over 2 gloo processes).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[2]
LOSS_RTOL = 1e-3  # GPU vs CPU (and DDP vs one process), fp32 with TF32 off: float rounding only
TF32_RTOL = 5e-2  # TF32 keeps 10 mantissa bits: a visibly different, still close, curve
WEIGHT_ATOL = 1e-6  # resumed vs uninterrupted, same device, deterministic algorithms
AUC_ATOL = 2e-2  # GPU (fp32 or bf16) vs CPU fp32 on the tiny test set
PED2_MODELS = ("prednet_ped2", "convlstm_ped2", "unet_ped2")
STEPS = 20

TINY = """
DATASET:
  CLIP_LENGTH: 6
  IMAGE_SIZE: [32, 32]
MODEL:
  NAME: PredNetPredictor
  ARGS:
    network:
      type: PredNet
      stack_sizes: [1, 8, 16]
      R_stack_sizes: [8, 8, 16]
      A_filter_sizes: [3, 3]
      Ahat_filter_sizes: [3, 3, 3]
      R_filter_sizes: [3, 3, 3]
TRAIN:
  BATCH_SIZE: 4
  LR: 0.003
  LR_SCHEDULE: constant
  EVAL_PERIOD: 0
  LOG_PERIOD: 1
  TENSORBOARD: False
SYSTEM:
  DETERMINISTIC: True
EVAL:
  PLOTS: False
LOG:
  PROGRESS: False
"""


def _tool(args: list, log: Path, nproc: int = 1, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run a ``tools/`` script (under ``torchrun`` when ``nproc > 1``), its output saved to ``log``."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc > 1 else []
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    env.update(env_extra or {})
    r = subprocess.run([sys.executable, *launcher, *map(str, args)], cwd=REPO, env=env, capture_output=True,
                       text=True)
    log.write_text(f"$ {' '.join(map(str, args))}\n{r.stdout}\n{r.stderr}")
    if r.returncode != 0:
        raise RuntimeError(f"{args[0]} failed (exit {r.returncode}); see {log}:\n{r.stderr[-1500:]}")
    return r


def losses(run: Path) -> dict[int, float]:
    """``{step: total loss}`` from a run's ``log.txt`` (``TRAIN.LOG_PERIOD 1``)."""
    out = {}
    for line in (run / "log.txt").read_text().splitlines():
        m = re.search(r"step (\d+)/\d+\s+(.*?)\s+lr ", line)
        if m:
            terms = dict(re.findall(r"(\S+) ([-+0-9.eE]+|nan|inf)", m.group(2)))
            out[int(m.group(1))] = float(terms.get("loss", next(iter(terms.values()))))
    return out


def curve_gap(a: dict[int, float], b: dict[int, float]) -> float:
    """Largest relative difference of two loss curves (inf unless both have the same steps)."""
    if not a or set(a) != set(b):
        return float("inf")
    return max(abs(a[s] - b[s]) / max(abs(b[s]), 1e-12) for s in a)


class Check:
    """The steps, their results and the files they leave in ``out``."""

    def __init__(self, out: Path, device: str):
        self.out, self.device = out, device
        self.results: dict[str, dict] = {}
        self.cfg = out / "tiny.yaml"
        self.data = out / "data"

    def step(self, name: str, fn) -> None:
        t0 = time.perf_counter()
        try:
            res = fn() or {}
            res.setdefault("ok", True)
        except Exception as exc:  # a failed step is reported; the next steps still run
            res = {"ok": False, "error": str(exc)}
        res["seconds"] = round(time.perf_counter() - t0, 1)
        self.results[name] = res
        print(f"[{'PASS' if res['ok'] else ('SKIP' if res.get('skipped') else 'FAIL')}] {name}: "
              f"{json.dumps({k: v for k, v in res.items() if k != 'ok'})}", flush=True)

    def train(self, name: str, device: str, *extra, nproc: int = 1, steps: int = STEPS, resume: bool = False) -> Path:
        run = self.out / name
        args = ["tools/train.py", "--cfg", self.cfg, *(["--resume"] if resume else []), "DATASET.ROOT", self.data,
                "SYSTEM.OUTPUT_DIR", run, "SYSTEM.DEVICE", device, "TRAIN.MAX_STEPS", steps, "SYSTEM.TF32", "False",
                "TRAIN.CHECKPOINT_PERIOD", STEPS // 2, *extra]
        _tool(args, self.out / f"{name}{'_resume' if resume else ''}.log", nproc=nproc)
        return run

    def environment(self) -> dict:
        import torch
        info = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": self.device}
        if self.device == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError("CUDA is not available to torch on this machine (run with --device cpu to rehearse)")
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            info["bf16"] = torch.cuda.is_bf16_supported()
        return info

    def prepare(self) -> dict:
        from pyanomaly.datasets.synthetic import make_synthetic
        self.cfg.write_text(TINY)
        if not self.data.exists():
            make_synthetic(self.data, seed=1, size=32, num_train=2, num_test=3, frames_per_video=60)
        return {}

    def train_vs_cpu(self) -> dict:
        dev = self.train("train_dev", self.device)
        cpu = dev if self.device == "cpu" else self.train("train_cpu", "cpu")
        gap = curve_gap(losses(dev), losses(cpu))
        return {"ok": gap <= LOSS_RTOL, "loss_curve_rel_gap": gap, "tolerance": LOSS_RTOL,
                "final_loss": losses(dev)[STEPS]}

    def resume(self) -> dict:
        import torch
        half = self.train("resumed", self.device, steps=STEPS // 2)
        self.train("resumed", self.device, resume=True)
        a = torch.load(half / "checkpoints/last.pth", weights_only=True, map_location="cpu")
        b = torch.load(self.out / "train_dev/checkpoints/last.pth", weights_only=True, map_location="cpu")
        gap = max(float((a["model"][k].float() - b["model"][k].float()).abs().max()) for k in b["model"])
        return {"ok": a["step"] == b["step"] == STEPS and gap <= WEIGHT_ATOL, "max_weight_gap": gap,
                "tolerance": WEIGHT_ATOL}

    def test(self) -> dict:
        auc = {}
        for name, device, precision in (("cpu_fp32", "cpu", "fp32"), ("dev_fp32", self.device, "fp32"),
                                        ("dev_bf16", self.device, "bf16")):
            out = self.out / f"test_{name}"
            _tool(["tools/test.py", "--cfg", self.cfg, "--checkpoint", self.out / "train_dev/checkpoints/last.pth",
                   "--overwrite", "DATASET.ROOT", self.data, "SYSTEM.OUTPUT_DIR", out, "SYSTEM.DEVICE", device,
                   "TEST.PRECISION", precision], self.out / f"test_{name}.log")
            auc[name] = json.loads((out / "metrics.json").read_text())["auc_micro"]
        gaps = {k: abs(v - auc["cpu_fp32"]) for k, v in auc.items() if k != "cpu_fp32"}
        return {"ok": max(gaps.values()) <= AUC_ATOL, "auc_micro": auc, "tolerance": AUC_ATOL}

    def ddp(self) -> dict:
        import torch
        n = torch.cuda.device_count() if self.device == "cuda" else 2
        if n < 2:
            return {"ok": True, "skipped": True, "why": f"{n} GPU visible; DDP needs 2 or more"}
        many = self.train("ddp", self.device, "TRAIN.BATCH_SIZE", 2, nproc=n)
        one = self.train("ddp_one", self.device, "TRAIN.BATCH_SIZE", 2 * n)
        gap = curve_gap(losses(many), losses(one))
        return {"ok": gap <= LOSS_RTOL, "processes": n, "backend": "nccl" if self.device == "cuda" else "gloo",
                "loss_curve_rel_gap": gap, "tolerance": LOSS_RTOL}

    def tf32(self) -> dict:
        if self.device != "cuda":
            return {"ok": True, "skipped": True, "why": "TF32 is a CUDA setting"}
        run = self.train("tf32", self.device, "SYSTEM.TF32", "True")
        gap = curve_gap(losses(run), losses(self.out / "train_dev"))
        return {"ok": gap <= TF32_RTOL, "loss_curve_rel_gap_vs_fp32": gap, "tolerance": TF32_RTOL}

    def benchmark(self, quick: bool) -> dict:
        path = self.out / "benchmark.json"
        _tool(["tools/benchmark.py", "--device", self.device, "--models", *PED2_MODELS, "--variants", "fp32", "bf16",
               "--no-sweep", "--no-ablation", "--no-precision", "--repeats", 1 if quick else 3, "--json", path],
              self.out / "benchmark.log")
        return {"json": str(path)}

    def report(self) -> str:
        env = self.results.get("environment", {})
        lines = [f"GPU check — {', '.join(env.get('gpus', [])) or self.device}, torch {env.get('torch')}, "
                 f"CUDA {env.get('cuda')}", "", "| check | result | figures |", "|---|---|---|"]
        for name, r in self.results.items():
            state = "skipped" if r.get("skipped") else ("pass" if r["ok"] else "FAIL")
            figures = {k: v for k, v in r.items() if k not in ("ok", "skipped")}
            lines.append(f"| {name} | {state} | `{json.dumps(figures)}` |")
        bench = self.out / "benchmark.log"
        if bench.is_file():
            lines += ["", "```", bench.read_text().split("\n", 1)[-1].strip(), "```"]
        return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cuda (default), or cpu to rehearse")
    p.add_argument("--out", default="outputs/gpu_check", help="folder for the runs and the report")
    p.add_argument("--quick", action="store_true", help="one benchmark repeat")
    p.add_argument("--no-benchmark", action="store_true", help="skip the benchmark rows")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    check = Check(out, args.device)
    check.step("environment", check.environment)
    if not check.results["environment"]["ok"]:
        print(check.results["environment"]["error"], file=sys.stderr)
        return 2
    check.step("prepare", check.prepare)
    check.step("train", check.train_vs_cpu)
    check.step("resume", check.resume)
    check.step("test", check.test)
    check.step("ddp", check.ddp)
    check.step("tf32", check.tf32)
    if not args.no_benchmark:
        check.step("benchmark", lambda: check.benchmark(args.quick))
    (out / "gpu_check.json").write_text(json.dumps(check.results, indent=2))
    (out / "gpu_check.md").write_text(check.report())
    print(f"wrote {out / 'gpu_check.md'} and gpu_check.json")
    return 0 if all(r["ok"] for r in check.results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
