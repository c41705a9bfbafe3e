"""tools/test.py --scores: exported raw errors re-scored under another protocol, without the model."""
import json
import subprocess
import sys

import numpy as np
import pytest
from yacs.config import CfgNode

from pyanomaly.config import get_cfg
from pyanomaly.engine.rescore import rescore
from pyanomaly.evaluation.build import build_task
from pyanomaly.errors import ScoreFileError
from pyanomaly.evaluation.export import load_scores
from pyanomaly.scoring import CausalNormalizer, ScorePipeline

from testutils import REPO, tool_env


def fake_run(root, groups=("01", "01", "02")):
    """A run directory as evaluation writes it, from made-up PSNR errors with dips where labelled."""
    rng = np.random.default_rng(0)
    names, errors, valid, labels = [], [], [], []
    for v, g in enumerate(groups):
        lab = np.zeros(80, np.uint8)
        lab[40 + 5 * v:55 + 5 * v] = 1
        e = 30 + rng.normal(0, 0.7, 80) - 3 * lab
        ok = np.arange(80) >= 4
        names.append(f"{g}_{v:03d}")
        errors.append(np.where(ok, e, np.nan))
        valid.append(ok)
        labels.append(lab)
    cfg = get_cfg()
    cfg.SYSTEM.OUTPUT_DIR = str(root)
    cfg.LOG.PROGRESS = False
    metrics = build_task(cfg).evaluate_errors(names, errors, labels, list(groups), root)
    return cfg, names, errors, labels, metrics


def test_same_protocol_reproduces_the_metrics_exactly(tmp_path):
    cfg, names, errors, labels, metrics = fake_run(tmp_path / "run")
    cfg.SYSTEM.OUTPUT_DIR = str(tmp_path / "again")
    again = rescore(cfg, tmp_path / "run/scores")  # the .npy arrays: bit-exact errors
    for k in ("auc_micro", "auc_macro", "eer", "ap", "per_video", "per_group"):
        assert again[k] == metrics[k], k
    assert again["protocol"]["rescored_from"].endswith("scores")
    for f in ("metrics.json", "config.yaml", "scores/frame_scores.csv", "scores/npy", "plots/roc.png",
              "report.html"):
        assert (tmp_path / "again" / f).exists(), f
    assert "no predictions to show" in (tmp_path / "again/report.html").read_text()


def test_another_protocol_is_applied_to_the_error_column(tmp_path):
    cfg, names, errors, labels, metrics = fake_run(tmp_path / "run")
    cfg.SYSTEM.OUTPUT_DIR = str(tmp_path / "causal")
    cfg.SCORE.NORMALIZE = CfgNode({"type": "causal", "warmup": 10}, new_allowed=True)
    cfg.SCORE.SMOOTH_SIGMA = 2.0
    cfg.SCORE.SMOOTH_MODE = "causal"
    cfg.EVAL.PLOTS = False
    m = rescore(cfg, tmp_path / "run/scores/frame_scores.json")
    assert not (tmp_path / "causal/plots").exists() and (tmp_path / "causal/report.html").is_file()
    p = m["protocol"]
    assert p["normalization"] == "causal running z-score" and p["causal"] is True
    assert p["frames_without_prediction"] == 3 * 4 and p["frames_without_score"] == 3 * (4 + 10)
    assert p["error"] == "PSNR (frame mean)" and p["higher_error_is_anomalous"] is False
    back = load_scores(tmp_path / "causal/scores")
    pipe = ScorePipeline(CausalNormalizer(warmup=10), False, 2.0, "causal")
    for n, e in zip(names, errors):
        np.testing.assert_allclose(back[n]["score"], pipe(e), rtol=1e-9, equal_nan=True)
    assert m["auc_micro"] != metrics["auc_micro"]


def test_cli_rescore_needs_no_checkpoint(tmp_path):
    fake_run(tmp_path / "run")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("LOG:\n  PROGRESS: False\n")
    out = tmp_path / "sigma"
    r = subprocess.run([sys.executable, "tools/test.py", "--cfg", str(cfg), "--scores",
                        str(tmp_path / "run/scores/frame_scores.csv"), "SYSTEM.OUTPUT_DIR", str(out),
                        "SCORE.SMOOTH_SIGMA", "2", "EVAL.THRESHOLDS", "[0.5]"],
                       cwd=REPO, env=tool_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["protocol"]["smoothing_sigma"] == 2.0 and m["protocol"]["smoothing"].startswith("centred")
    assert m["at_threshold"][0]["threshold"] == 0.5 and set(m["per_group"]) == {"01", "02"}
    assert (out / "report.html").is_file() and "re-scored 3 videos" in (out / "log.txt").read_text()
    # neither --checkpoint nor --scores: a usage error
    r = subprocess.run([sys.executable, "tools/test.py", "--cfg", str(cfg)], cwd=REPO, env=tool_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--checkpoint" in r.stderr and "--scores" in r.stderr


def test_scores_without_errors_are_refused(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("video,frame,error,score,label\nv,0,,0.5,0\n")
    cfg = get_cfg()
    cfg.SYSTEM.OUTPUT_DIR = str(tmp_path / "o")
    with pytest.raises(ValueError, match="raw errors"):
        rescore(cfg, f)


@pytest.mark.parametrize("source", ["scores/frame_scores.csv", "scores/frame_scores.json", "scores/npy"])
def test_rescoring_a_real_evaluation_reproduces_it(tmp_path, tiny_synthetic, source):
    """Through a model's evaluation: frames without a prediction are exported as such (no error),
    so re-scoring the export under the same protocol gives the same metrics, exactly, from any form."""
    import torch
    from yacs.config import CfgNode

    from pyanomaly.datasets import build_dataset
    from pyanomaly.models.build import build_model

    cfg = get_cfg()
    cfg.DATASET.NAME, cfg.DATASET.ROOT, cfg.DATASET.IMAGE_SIZE = "synthetic", str(tiny_synthetic), [32, 32]
    cfg.DATASET.CLIP_LENGTH = 3
    cfg.MODEL.NAME = "FramePredictor"
    cfg.MODEL.ARGS.network = CfgNode(dict(type="ConvLSTMForecaster", in_channels=1, hidden_channels=[4]))
    cfg.MODEL.ARGS.clip_length = 3
    cfg.LOG.PROGRESS, cfg.EVAL.PLOTS, cfg.EVAL.REPORT = False, False, False
    torch.manual_seed(0)
    model = build_model(cfg, torch.device("cpu"))
    data = build_dataset(cfg, "testing")
    first = build_task(cfg).evaluate(model, data, torch.device("cpu"), tmp_path / "run")
    assert first["protocol"]["frames_without_prediction"] == 2 * len(data.videos)
    csv_rows = (tmp_path / "run/scores/frame_scores.csv").read_text().splitlines()
    assert csv_rows[1].split(",")[2] == ""  # frame 0 of the first video: no prediction, no error
    cfg.SYSTEM.OUTPUT_DIR = str(tmp_path / "again")
    again = rescore(cfg, tmp_path / "run" / source)
    assert again["protocol"]["frames_without_prediction"] == first["protocol"]["frames_without_prediction"]
    for k in ("auc_micro", "auc_macro", "eer", "ap"):
        assert again[k] == first[k], k  # every form holds the errors bit-exact


def test_a_damaged_export_is_refused_before_anything_is_written(tmp_path):
    fake_run(tmp_path / "run")
    f = tmp_path / "run/scores/frame_scores.csv"
    lines = f.read_text().splitlines(keepends=True)
    f.write_text("".join(lines[:41] + lines[42:]))  # frame 40 of the first video lost: frame 41 on line 42
    cfg = get_cfg()
    cfg.SYSTEM.OUTPUT_DIR = str(tmp_path / "again")
    with pytest.raises(ScoreFileError, match=r"frame_scores\.csv, line 42: video '01_000' has no frame 40"):
        rescore(cfg, f)
    assert not (tmp_path / "again").exists()


def test_rescoring_never_writes_over_the_run_it_reads(tmp_path):
    cfg, *_ = fake_run(tmp_path / "run")
    before = (tmp_path / "run/metrics.json").read_text()
    with pytest.raises(ValueError, match="is the run this rescore reads scores from"):
        rescore(cfg, tmp_path / "run/scores/frame_scores.csv", overwrite=True)
    m = rescore(cfg, tmp_path / "run/scores", config_path="sigma.yaml", new_output_dir=True)
    (new,) = [p for p in tmp_path.iterdir() if p.name.startswith("run_rescore_sigma_")]
    assert json.loads((new / "metrics.json").read_text())["auc_micro"] == m["auc_micro"]
    assert (tmp_path / "run/metrics.json").read_text() == before
