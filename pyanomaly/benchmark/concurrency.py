"""Jobs side by side on one machine: what each keeps of its speed alone.

Two kinds of job, each a real tool in its own process, on the best Ped2 recipe
(``configs/ped2_unet_native.yaml``, fp32) over a generated scene resized to Ped2's frame size:

* ``train``: ``tools/train.py`` for a few steps; speed = its logged s/step after the first log;
* ``score``: ``tools/score_video.py`` with the published ``checkpoints/ped2_unet_native.pth``
  over one generated test video; speed = its frames/s (``alarms.json``).

Scenarios: each alone, two trainings at once, a training and a scoring at once, and two
trainings at once with spinning OpenMP threads (``OMP_WAIT_POLICY=ACTIVE``, what the tools did
before they set passive waits). Every process chooses its threads as the tools do
(``SYSTEM.NUM_THREADS 0``: the cores of its affinity mask).

Example:
    >>> rows = concurrency(Path("/tmp/conc"))      # [{scenario, job, speed, unit, of_solo}, ...]
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "configs" / "ped2_unet_native.yaml"
CHECKPOINT = REPO / "checkpoints" / "ped2_unet_native.pth"


def _command(job: str, out: Path, data: Path, steps: int) -> list[str]:
    common = ["--cfg", str(RECIPE), "DATASET.NAME", "synthetic", "DATASET.ROOT", str(data),
              "TEST.PRECISION", "fp32", "LOG.PROGRESS", "False"]
    if job == "train":
        return [sys.executable, str(REPO / "tools/train.py"), *common, "SYSTEM.OUTPUT_DIR", str(out),
                "TRAIN.MAX_STEPS", str(steps), "TRAIN.LOG_PERIOD", "2", "TRAIN.CHECKPOINT_PERIOD", str(10**6),
                "TRAIN.EVAL_PERIOD", "0", "TRAIN.TENSORBOARD", "False"]
    video = sorted((data / "testing" / "frames").iterdir())[0]
    return [sys.executable, str(REPO / "tools/score_video.py"), *common, "--checkpoint", str(CHECKPOINT),
            "--video", str(video), "--out", str(out)]


def _speed(job: str, out: Path) -> float:
    """Steps/s of a training (its last logged s/step) or frames/s of a scoring."""
    if job == "train":
        rates = re.findall(r"([0-9.]+) s/step", (out / "log.txt").read_text())
        return 1.0 / float(rates[-1])
    return json.loads((out / "alarms.json").read_text())["videos"][0]["frames_per_second_processed"]


def run_together(jobs: list[str], root: Path, data: Path, steps: int, wait_policy: str = "PASSIVE") -> list[float]:
    """Start ``jobs`` at once, wait for all; their speeds in the same order."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["OMP_WAIT_POLICY"] = wait_policy
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    outs = [root / f"{i}_{job}" for i, job in enumerate(jobs)]
    procs = [subprocess.Popen(_command(job, out, data, steps), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for job, out in zip(jobs, outs)]
    for p, job in zip(procs, jobs):
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"{job} job failed (exit {p.returncode}):\n{err[-1500:]}")
    return [_speed(job, out) for job, out in zip(jobs, outs)]


def concurrency(root: Path, steps: int = 30, log: Callable[[str], None] = print) -> list[dict]:
    """Rows ``{scenario, job, speed, unit, of_solo}`` for the scenarios of the module docstring."""
    from pyanomaly.datasets.synthetic import make_synthetic
    root.mkdir(parents=True, exist_ok=True)
    data = root / "data"
    if not data.exists():
        make_synthetic(data, seed=0, size=128, num_train=2, num_test=1, frames_per_video=120)
    scenarios = [("train alone", ["train"], "PASSIVE"), ("score alone", ["score"], "PASSIVE"),
                 ("two trainings", ["train", "train"], "PASSIVE"), ("training + scoring", ["train", "score"], "PASSIVE"),
                 ("two trainings, spinning waits (before)", ["train", "train"], "ACTIVE")]
    solo: dict[str, float] = {}
    rows = []
    for k, (name, jobs, policy) in enumerate(scenarios):
        log(f"concurrency: {name} ...")
        speeds = run_together(jobs, root / f"s{k}", data, steps if policy == "PASSIVE" else max(6, steps // 4), policy)
        for job, speed in zip(jobs, speeds):
            solo.setdefault(job, speed)
            rows.append({"scenario": name, "job": job, "speed": round(speed, 3),
                         "unit": "steps/s" if job == "train" else "frames/s", "of_solo": round(speed / solo[job], 3)})
    return rows


def format_concurrency(rows: list[dict]) -> str:
    lines = [f"{'scenario':<40} {'job':<6} {'speed':>9} {'unit':<9} {'of alone':>8}"]
    for r in rows:
        lines.append(f"{r['scenario']:<40} {r['job']:<6} {r['speed']:>9.3f} {r['unit']:<9} {r['of_solo']:>8.0%}")
    return "\n".join(lines)
