"""Fusion through the tools on the generated scene: tools/train.py fits the cues' statistics on the
training videos into the checkpoint, tools/test.py scores it, the run writes the ablation of its
cues (cues/), and a bad cue is one error line naming its key."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from testutils import run_tool

TINY_FUSION = """
DATASET:
  CLIP_LENGTH: 2
  IMAGE_SIZE: [32, 32]
MODEL:
  NAME: Fusion
  ARGS:
    cues:
      - {name: flow, method: {type: FlowSpeed, flow: {type: dis, preset: ultrafast}},
         error: {type: CELL_TOP, patch: 8, top_fraction: 0.1}}
      - {name: copy, method: {type: CopyLast}, error: {type: PSNR}}
SCORE:
  ERROR: FRAME_ERROR
EVAL:
  PLOTS: False
LOG:
  PROGRESS: False
"""


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, tiny_synthetic):
    tmp = tmp_path_factory.mktemp("fusion")
    cfg = tmp / "fusion.yaml"
    cfg.write_text(TINY_FUSION)
    out = tmp / "run"
    r = run_tool("tools/train.py", "--cfg", cfg, "DATASET.ROOT", tiny_synthetic, "SYSTEM.OUTPUT_DIR", out)
    assert r.returncode == 0, r.stderr[-3000:]
    return cfg, out, tiny_synthetic


def test_train_fits_the_statistics_of_the_training_videos_into_the_checkpoint(fitted):
    _, out, _ = fitted
    ckpt = torch.load(out / "checkpoints" / "last.pth", weights_only=True)
    assert ckpt["online"]["frames"] == 2 * 60  # both training videos read
    assert ckpt["model"]["mean"].shape == (2,) and ckpt["model"]["std"].shape == (2,)
    assert (ckpt["model"]["std"] > 0).all()
    stats = json.loads((out / "cues" / "statistics.json").read_text())
    assert [c["name"] for c in stats["cues"]] == ["flow", "copy"] and stats["rule"] == "sum"
    assert stats["cues"][1]["mean"] == pytest.approx(float(ckpt["model"]["mean"][1]))
    assert stats["cues"][1]["higher_is_anomalous"] is False  # PSNR: negated before the sum
    # where the scored videos sit in training standard deviations, per cue: the exports' z-scores
    scored = stats["scored"]
    assert scored["split"] == "testing" and scored["videos"] == 4
    assert [c["name"] for c in scored["cues"]] == ["flow", "copy"]
    rows = json.loads((out / "cues" / "flow" / "frame_scores.json").read_text())
    z = np.asarray([np.nan if r["error"] is None else r["error"] for r in rows])
    z = z[np.isfinite(z)]
    assert scored["cues"][0]["frames"] == z.size == 4 * 60 - 4
    assert scored["cues"][0]["mean_z"] == pytest.approx(z.mean(), rel=1e-6)
    assert scored["cues"][0]["std_z"] == pytest.approx(z.std(), rel=1e-6)
    assert "in training standard deviations (mean, sd): flow " in (out / "log.txt").read_text()


def test_frames_a_cue_cannot_score_are_excluded_and_counted(fitted):
    _, out, _ = fitted
    m = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= m["auc_micro"] <= 1.0
    # the first frame of each of the 4 test videos has neither a flow nor a last frame
    assert m["protocol"]["frames_without_prediction"] == 4 and m["frames_evaluated"] == 4 * 60 - 4
    assert m["protocol"]["error"].startswith("FRAME_ERROR")


def test_the_run_writes_every_subset_of_cues_and_rescoring_all_gives_the_run(fitted, tmp_path):
    cfg, out, _ = fitted
    assert sorted(p.name for p in (out / "cues").iterdir() if p.is_dir()) == ["copy", "flow", "flow+copy"]
    fused = np.load(out / "scores" / "npy" / "01_error.npy")
    rows = json.loads((out / "cues" / "flow+copy" / "frame_scores.json").read_text())
    exported = np.array([np.nan if r["error"] is None else r["error"] for r in rows if r["video"] == "01"])
    np.testing.assert_allclose(exported, fused, rtol=1e-5, equal_nan=True)
    r = run_tool("tools/test.py", "--cfg", cfg, "--scores", out / "cues" / "flow+copy" / "frame_scores.csv",
                 "SYSTEM.OUTPUT_DIR", tmp_path / "all")
    assert r.returncode == 0, r.stderr[-3000:]
    run = json.loads((out / "metrics.json").read_text())
    rescored = json.loads((tmp_path / "all" / "metrics.json").read_text())
    assert rescored["auc_micro"] == pytest.approx(run["auc_micro"], abs=1e-9)
    r = run_tool("tools/test.py", "--cfg", cfg, "--scores", out / "cues" / "copy" / "frame_scores.csv",
                 "SYSTEM.OUTPUT_DIR", tmp_path / "copy")
    assert r.returncode == 0, r.stderr[-3000:]
    copy = json.loads((tmp_path / "copy" / "metrics.json").read_text())
    assert copy["protocol"]["frames_without_score"] == 4

    # the run's own ablation: each subset re-scored as tools/test.py --scores does, rows by size
    ablation = json.loads((out / "cues" / "ablation.json").read_text())
    assert list(ablation) == ["copy", "flow", "flow+copy"]
    assert ablation["flow+copy"]["auc_micro"] == pytest.approx(run["auc_micro"], abs=1e-9)
    assert ablation["copy"]["auc_micro"] == pytest.approx(copy["auc_micro"], abs=1e-9)
    assert ablation["copy"]["eer"] == pytest.approx(copy["eer"], abs=1e-9)
    table = (out / "cues" / "ablation.md").read_text().splitlines()
    assert table[0].startswith("| cues | micro AUC | macro AUC | EER | AP |")
    assert table[4].startswith(f"| flow+copy | {run['auc_micro']:.4f} |") and table[4].endswith(f"| {4 * 60 - 4} | 4 |")
    assert run["cues"]["copy"]["auc_micro"] == pytest.approx(copy["auc_micro"], abs=1e-9)  # metrics.json
    assert run["cues"]["flow+copy"]["frames_unscored"] == 4
    assert "Each subset of the fused cues" in (out / "report.html").read_text()


def test_test_tool_scores_the_checkpoint_as_the_run_did(fitted, tmp_path):
    cfg, out, data = fitted
    r = run_tool("tools/test.py", "--cfg", cfg, "--checkpoint", out / "checkpoints" / "last.pth", "DATASET.ROOT", data,
                 "SYSTEM.OUTPUT_DIR", tmp_path / "test")
    assert r.returncode == 0, r.stderr[-3000:]
    trained = json.loads((out / "metrics.json").read_text())
    tested = json.loads((tmp_path / "test" / "metrics.json").read_text())
    assert tested["auc_micro"] == trained["auc_micro"]


def test_scoring_another_dataset_than_the_checkpoint_was_fitted_on_says_so(fitted, tmp_path):
    cfg, out, data = fitted
    ckpt = out / "checkpoints" / "last.pth"
    r = run_tool("tools/test.py", "--cfg", cfg, "--checkpoint", ckpt, "DATASET.NAME", "folder", "DATASET.ROOT", data,
                 "SYSTEM.OUTPUT_DIR", tmp_path / "other")
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{ckpt} was trained (or fitted) on synthetic; this run scores folder with it as it is" in r.stderr
    r = run_tool("tools/test.py", "--cfg", cfg, "--checkpoint", ckpt, "DATASET.ROOT", data,
                 "SYSTEM.OUTPUT_DIR", tmp_path / "same")
    assert r.returncode == 0 and "was trained (or fitted) on" not in r.stderr


def test_a_bad_cue_is_one_error_line_naming_its_key(tmp_path, tiny_synthetic):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(TINY_FUSION.replace("error: {type: PSNR}", "error: {type: CELL_MAX}"))
    r = run_tool("tools/train.py", "--cfg", cfg, "DATASET.ROOT", tiny_synthetic, "SYSTEM.OUTPUT_DIR", tmp_path / "run")
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Fusion cues[1].error: CELL_MAX reads an anomaly map" in errors[0], r.stderr[-2000:]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_scoring_benchmark_times_decode_and_each_cue_of_the_checkpoint(fitted, tmp_path):
    _, out, data = fitted
    video = data / "testing" / "frames" / "01"
    r = run_tool("tools/benchmark.py", "--scoring", out / "checkpoints" / "last.pth", "--video", video,
                 "--frames", "20", "--json", tmp_path / "speed.json")
    assert r.returncode == 0, r.stderr[-3000:]
    row, threaded = json.loads((tmp_path / "speed.json").read_text())["scoring"]
    assert (row["cues"], threaded["cues"]) == ("one after another", "parallel")
    for each in (row, threaded):
        assert each["method"] == "Fusion" and each["frames"] == 20
        assert sorted(each["cues_ms"]) == ["copy", "flow"] and all(ms > 0 for ms in each["cues_ms"].values())
        assert each["fps"] == pytest.approx(20 / (20 * (each["decode_ms"] + each["score_ms"]) / 1000), rel=1e-6)
    assert sum(row["cues_ms"].values()) <= row["score_ms"]  # one after another: the cues' share of the scoring time
    assert "| last.pth | Fusion | 20 | one after another |" in r.stdout and "| last.pth | Fusion | 20 | parallel |" in r.stdout
    r = run_tool("tools/benchmark.py", "--scoring", out / "checkpoints" / "last.pth")
    assert r.returncode == 2 and "--scoring needs --video" in r.stderr
