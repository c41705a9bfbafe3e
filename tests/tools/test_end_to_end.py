"""The tools run as a user runs them: subprocesses, real files, a tiny generated dataset."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from testutils import REPO, TINY, assert_same_state, run_tool


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
    assert sum(r["score"] == "" for r in rows) == 4 * 5  # the first CLIP_LENGTH - 1 frames of each video
    m = json.loads((out / "metrics.json").read_text())
    assert {"auc_micro", "auc_macro", "eer", "ap", "protocol", "per_video"} <= set(m)
    assert m["protocol"]["frames_without_score"] == 4 * 5
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
import io
import os

import torch

from pyanomaly.engine.hooks import HookBase
from pyanomaly.registry import HOOKS


@HOOKS.register_module()
class KillAt(HookBase):
    '''Ends the process after step ``step``, as abruptly as SIGKILL: no finally, no flush.'''
    def __init__(self, step: int):
        self.step = step
    def after_step(self):
        if self.trainer.step == self.step:
            os._exit(9)


@HOOKS.register_module()
class KillDuringSave(HookBase):
    '''Ends the process half-way through writing the checkpoint of step ``step``.'''
    def __init__(self, step: int):
        self.step = step
    def before_train(self):
        real_save = torch.save
        def save(obj, f, *args, **kwargs):
            if isinstance(obj, dict) and obj.get("step") == self.step:
                buf = io.BytesIO()
                real_save(obj, buf, *args, **kwargs)
                with open(f, "wb") as fh:
                    fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                    fh.flush()
                    os.fsync(fh.fileno())
                os._exit(9)
            real_save(obj, f, *args, **kwargs)
        torch.save = save
"""


def tb_events(run: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    ea = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    return ea


def test_test_tool_never_writes_over_the_training_run(trained):
    cfg, out, data, _ = trained
    before = {n: (out / n).read_bytes() for n in ("config.yaml", "metrics.json", "scores/frame_scores.csv")}
    args = ["tools/test.py", "--cfg", cfg, "--checkpoint", out / "checkpoints/best.pth", "DATASET.ROOT", data,
            "EVAL.PLOTS", "False", "EVAL.REPORT", "False"]
    r = run_tool(*args, "SYSTEM.OUTPUT_DIR", out, "--overwrite")  # the run itself: refused even so
    assert r.returncode == 2 and "is the run this test reads the checkpoint from" in r.stderr.splitlines()[-1]
    r = run_tool(*args)  # the YAML names no folder of its own: a new one beside the run
    assert r.returncode == 0, r.stderr[-3000:]
    (new,) = out.parent.glob(f"{out.name}_test_{cfg.stem}_*")
    assert f"test outputs go to {new}" in r.stderr and (new / "metrics.json").is_file()
    assert {n: (out / n).read_bytes() for n in before} == before
    r = run_tool(*args, "SYSTEM.OUTPUT_DIR", new)  # not empty
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and last == f"error: SYSTEM.OUTPUT_DIR {new} exists and is not empty; pass --overwrite " \
        "to write over it, or name another folder", last
    r = run_tool(*args, "SYSTEM.OUTPUT_DIR", new, "--overwrite")
    assert r.returncode == 0, r.stderr[-3000:]


def test_resume_refuses_trajectory_changes_and_may_run_longer(tmp_path, tiny_synthetic):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    run = tmp_path / "run"
    common = ["--cfg", cfg, "DATASET.ROOT", tiny_synthetic, "SYSTEM.OUTPUT_DIR", run, "TRAIN.LR", "0.001",
              "TRAIN.EVAL_PERIOD", "0", "TRAIN.IMAGE_PERIOD", "0", "EVAL.REPORT", "False"]
    r = run_tool("tools/train.py", *common, "TRAIN.MAX_STEPS", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    saved = (run / "config.yaml").read_text()
    r = run_tool("tools/train.py", *common, "TRAIN.MAX_STEPS", "4", "TRAIN.LR", "0.5", "SYSTEM.SEED", "1",
                 "--resume")
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and last.startswith("error: --resume:"), r.stderr[-3000:]
    assert "TRAIN.LR 0.001 -> 0.5" in last and "SYSTEM.SEED 0 -> 1" in last and "MAX_STEPS" not in last
    assert (run / "config.yaml").read_text() == saved  # the run's config still tells the truth
    r = run_tool("tools/train.py", *common, "TRAIN.MAX_STEPS", "4", "EVAL.PLOTS", "False", "--resume")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "TRAIN.MAX_STEPS 2 -> 4 changes the LR schedule of the remaining steps" in r.stderr
    assert torch.load(run / "checkpoints/last.pth", weights_only=True)["step"] == 4
    text = (run / "config.yaml").read_text()
    assert "MAX_STEPS: 4" in text and "PLOTS: false" in text and "LR: 0.001" in text


def test_killed_run_resumes_bitwise_at_several_kill_points(tmp_path, tiny_synthetic):
    """Killed between checkpoints, half-way through a checkpoint write and right after one, the
    resumed run ends in the state of a run never stopped (weights, optimizer, scheduler, RNGs,
    hook states), with TensorBoard image grids on throughout: they must not disturb training."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    (tmp_path / "killer.py").write_text(KILLER)
    common = ["DATASET.ROOT", tiny_synthetic, "TRAIN.MAX_STEPS", "12", "TRAIN.CHECKPOINT_PERIOD", "4",
              "TRAIN.EVAL_PERIOD", "0", "TRAIN.LOG_PERIOD", "2", "TRAIN.IMAGE_PERIOD", "3", "EVAL.PLOTS", "False"]
    run, ckpts = tmp_path / "run", tmp_path / "run/checkpoints"

    def train(out, *extra, kill=None):
        hooks = ["SYSTEM.IMPORTS", "['killer']", "TRAIN.CUSTOM_HOOKS", f"[{kill}]"] if kill else []
        return run_tool("tools/train.py", "--cfg", cfg, *common, "SYSTEM.OUTPUT_DIR", out, *hooks, *extra)

    ref = train(tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-2000:]

    r = train(run, kill="{'type': 'KillAt', 'step': 6}")  # between two checkpoints
    assert r.returncode == 9, r.stderr[-2000:]
    assert torch.load(ckpts / "last.pth", weights_only=True)["step"] == 4

    r = train(run, "--resume", kill="{'type': 'KillDuringSave', 'step': 8}")  # half-way through a write
    assert r.returncode == 9, r.stderr[-2000:]
    assert len(list(ckpts.glob(".last.pth.*.tmp"))) == 1  # the half-written file, never renamed
    assert torch.load(ckpts / "last.pth", weights_only=True)["step"] == 4

    r = train(run, "--resume", kill="{'type': 'KillAt', 'step': 8}")  # just after a checkpoint
    assert r.returncode == 9, r.stderr[-2000:]
    assert "left by a write that was interrupted" in r.stderr
    assert torch.load(ckpts / "last.pth", weights_only=True)["step"] == 8

    r = train(run, "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    assert not list(ckpts.glob("*.tmp"))
    a = torch.load(tmp_path / "ref/checkpoints/last.pth", weights_only=True)
    b = torch.load(ckpts / "last.pth", weights_only=True)
    assert b["step"] == 12
    metrics = [c.pop("metrics") for c in (a, b)]  # they hold timings, compared apart
    # the configs they carry differ in the run directory alone
    assert [c["meta"]["config"]["SYSTEM"].pop("OUTPUT_DIR") for c in (a, b)] == [str(tmp_path / "ref"), str(run)]
    assert_same_state(a, b)
    for k in ("auc_micro", "auc_macro", "eer", "ap"):
        assert metrics[0][k] == metrics[1][k], k
    # What `tensorboard --logdir` shows: losses, LR, metrics and image grids. The killed runs'
    # events after their checkpoint are dropped (the resumed run logs those steps again), so
    # the curves are the uninterrupted run's.
    ref_tb, run_tb = tb_events(tmp_path / "ref"), tb_events(run)
    assert {"train/loss", "train/loss_prediction", "train/lr", "eval/auc_micro"} <= set(ref_tb.Tags()["scalars"])
    for tb in (ref_tb, run_tb):
        assert [e.step for e in tb.Images("train/input_prediction_error")] == [3, 6, 9, 12]
    for tag in ("train/loss", "train/lr", "eval/auc_micro"):
        assert [(e.step, e.value) for e in run_tb.Scalars(tag)] == [(e.step, e.value) for e in ref_tb.Scalars(tag)]
    assert [e.step for e in ref_tb.Scalars("train/loss")] == [2, 4, 6, 8, 10, 12]


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
