"""The tools run as a user runs them: subprocesses, real files, a tiny generated dataset."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from testutils import REPO, tool_env

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
  MAX_STEPS: 100
  BATCH_SIZE: 4
  LR: 0.003
  EVAL_PERIOD: 50
  CHECKPOINT_PERIOD: 50
  LOG_PERIOD: 10
LOG:
  PROGRESS: False
"""


def run_tool(*args, cwd=REPO):
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=tool_env(),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_synthetic):
    tmp = tmp_path_factory.mktemp("e2e")
    cfg = tmp / "tiny.yaml"
    cfg.write_text(TINY)
    out = tmp / "run"
    r = run_tool("tools/train.py", "--cfg", cfg, "DATASET.ROOT", tiny_synthetic, "SYSTEM.OUTPUT_DIR", out)
    assert r.returncode == 0, r.stderr[-3000:]
    return cfg, out, tiny_synthetic, r


def read_rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_writes_the_run_directory(trained):
    cfg, out, data, r = trained
    for f in ("config.yaml", "log.txt", "checkpoints/last.pth", "checkpoints/best.pth", "metrics.json",
              "scores/frame_scores.csv", "scores/frame_scores.json", "plots/roc.png", "plots/01.png"):
        assert (out / f).is_file(), f
    log = (out / "log.txt").read_text()
    assert "step 100/100" in log and "AUC micro" in log and "\x1b[" not in log
    ckpt = torch.load(out / "checkpoints/last.pth", weights_only=True)
    assert ckpt["step"] == 100


def test_scores_match_the_generator_labels(trained):
    _, out, data, _ = trained
    rows = read_rows(out / "scores/frame_scores.csv")
    assert len(rows) == 4 * 60  # one row per test frame
    truth = {}
    with open(data / "testing/labels.csv") as f:
        for row in csv.DictReader(f):
            truth.setdefault(row["video"], set()).update(range(int(row["start"]), int(row["end"]) + 1))
    for row in rows:
        assert int(row["label"]) == (int(row["frame"]) in truth.get(row["video"], set()))
    assert sum(r["score"] == "" for r in rows) == 4  # PredNet: only frame 0 of each video lacks a prediction
    m = json.loads((out / "metrics.json").read_text())
    assert {"auc_micro", "auc_macro", "eer", "ap", "protocol", "per_video"} <= set(m)
    assert m["protocol"]["frames_without_score"] == 4
    assert m["protocol"]["normalization"] == "per-video min-max"
    assert m["auc_micro"] > 0.7, m


def test_test_tool_reproduces_metrics_from_best(trained, tmp_path):
    cfg, out, data, _ = trained
    r = run_tool("tools/test.py", "--cfg", cfg, "--checkpoint", out / "checkpoints/best.pth",
                 "DATASET.ROOT", data, "SYSTEM.OUTPUT_DIR", tmp_path / "test")
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "test/metrics.json").read_text())
    best = torch.load(out / "checkpoints/best.pth", weights_only=True)
    assert m["auc_micro"] == pytest.approx(best["metrics"]["auc_micro"], abs=1e-9)
    assert len(read_rows(tmp_path / "test/scores/frame_scores.csv")) == 240
    assert len(list((tmp_path / "test/plots").glob("*.png"))) == 5


KILLER = """
import os
from pyanomaly.engine.hooks import HookBase
from pyanomaly.registry import HOOKS

@HOOKS.register_module()
class KillAt(HookBase):
    def __init__(self, step: int):
        self.step = step
    def after_step(self):
        if self.trainer.step == self.step:
            os._exit(9)  # as abrupt as SIGKILL: no finally, no flush
"""


def test_killed_run_resumes_bitwise(tmp_path, tiny_synthetic):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    (tmp_path / "killer.py").write_text(KILLER)
    common = ["DATASET.ROOT", tiny_synthetic, "TRAIN.MAX_STEPS", "30", "TRAIN.CHECKPOINT_PERIOD", "10",
              "TRAIN.EVAL_PERIOD", "0", "EVAL.PLOTS", "False", "TRAIN.TENSORBOARD", "False"]
    ref = run_tool("tools/train.py", "--cfg", cfg, *common, "SYSTEM.OUTPUT_DIR", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-2000:]
    killed = run_tool("tools/train.py", "--cfg", cfg, *common, "SYSTEM.OUTPUT_DIR", tmp_path / "run",
                      "SYSTEM.IMPORTS", "['killer']", "TRAIN.CUSTOM_HOOKS", "[{'type': 'KillAt', 'step': 15}]")
    assert killed.returncode == 9
    assert torch.load(tmp_path / "run/checkpoints/last.pth", weights_only=True)["step"] == 10
    again = run_tool("tools/train.py", "--cfg", cfg, *common, "SYSTEM.OUTPUT_DIR", tmp_path / "run", "--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    a = torch.load(tmp_path / "ref/checkpoints/last.pth", weights_only=True)
    b = torch.load(tmp_path / "run/checkpoints/last.pth", weights_only=True)
    assert b["step"] == 30
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


PLUGIN = """
import torch
from torch import nn
from pyanomaly.registry import NETWORKS

@NETWORKS.register_module()
class TinyUserNet(nn.Module):
    '''History (B, T, C, H, W) -> next frame (B, C, H, W).'''
    def __init__(self, channels: int = 1, width: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(2 * channels, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, channels, 3, padding=1))
    def forward(self, history):
        last, prev = history[:, -1], history[:, -2]
        return torch.sigmoid(self.body(torch.cat([last, prev], 1)) + 4 * (last - 0.5))
"""


def test_outside_network_from_yaml_trains(tmp_path, tiny_synthetic):
    (tmp_path / "user_net.py").write_text(PLUGIN)
    cfg = tmp_path / "user.yaml"
    cfg.write_text("SYSTEM:\n  IMPORTS: [user_net]\nDATASET:\n  CLIP_LENGTH: 3\n  IMAGE_SIZE: [32, 32]\n"
                   "MODEL:\n  NAME: FramePredictor\n  ARGS:\n    network: {type: TinyUserNet, width: 4}\n"
                   "TRAIN:\n  MAX_STEPS: 5\n  EVAL_PERIOD: 0\nEVAL:\n  PLOTS: False\n")
    r = run_tool("tools/train.py", "--cfg", cfg, "DATASET.ROOT", tiny_synthetic, "SYSTEM.OUTPUT_DIR", tmp_path / "run",
                 cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / "run/metrics.json").read_text())
    assert m["protocol"]["frames_without_score"] == 4 * 2  # CLIP_LENGTH - 1 per video
    ckpt = torch.load(tmp_path / "run/checkpoints/last.pth", weights_only=True)
    assert ckpt["meta"]["model_args"]["network"]["type"] == "TinyUserNet"


@pytest.mark.parametrize("case", ["missing_cfg", "unknown_key", "unknown_network", "empty_data", "missing_ckpt",
                                  "foreign_ckpt", "unwritable_out", "resume_nothing"])
def test_bad_input_ends_in_one_clear_line(case, tmp_path, trained):
    cfg_path, out, data, _ = trained
    empty = tmp_path / "empty"
    (empty / "training").mkdir(parents=True)
    (empty / "testing").mkdir()
    base = ["tools/train.py", "--cfg", cfg_path, "SYSTEM.OUTPUT_DIR", tmp_path / "o", "DATASET.ROOT", data]
    blocked = tmp_path / "file"
    blocked.write_text("")
    args, expect = {
        "missing_cfg": (["tools/train.py", "--cfg", tmp_path / "nope.yaml"], "config file not found"),
        "unknown_key": (base + ["TRAIN.MAX_STEP", "3"], "unknown config key 'TRAIN.MAX_STEP'"),
        "unknown_network": (base + ["MODEL.ARGS.network.type", "PredNot"], "unknown network 'PredNot'"),
        "empty_data": (base + ["DATASET.NAME", "folder", "DATASET.ROOT", empty], "no videos found"),
        "missing_ckpt": (["tools/test.py", "--cfg", cfg_path, "--checkpoint", tmp_path / "x.pth",
                          "SYSTEM.OUTPUT_DIR", tmp_path / "o"], "checkpoint not found"),
        "foreign_ckpt": (["tools/test.py", "--cfg", cfg_path, "--checkpoint", out / "checkpoints/last.pth",
                          "SYSTEM.OUTPUT_DIR", tmp_path / "o", "MODEL.ARGS.network.stack_sizes", "[1, 4, 16]"],
                         "different model"),
        "unwritable_out": (["tools/train.py", "--cfg", cfg_path, "SYSTEM.OUTPUT_DIR", blocked / "sub"], "not writable"),
        "resume_nothing": (base + ["--resume"], "no checkpoint to resume from"),
    }[case]
    r = run_tool(*args)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and expect in last, r.stderr[-2000:]
