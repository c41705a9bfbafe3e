"""Baselines through the tools: tools/train.py fits them and writes a checkpoint, tools/test.py
scores it, and every evaluation writes the EVAL.BASELINES rows beside the method's metrics."""
from __future__ import annotations

import json

import pytest
import torch

from pyanomaly.config import load_cfg
from pyanomaly.engine import launch
from pyanomaly.errors import ConfigError
from testutils import REPO, run_tool

TINY_FLOW = """
DATASET:
  CLIP_LENGTH: 2
  IMAGE_SIZE: [32, 32]
MODEL:
  NAME: FlowSpeed
  ARGS:
    flow: {type: dis, preset: ultrafast}
    excess: 0.9
    cell: 8
SCORE:
  ERROR: CELL_MAX
  PATCH: 8
EVAL:
  PLOTS: False
  REPORT_TOP_K: 2
  BASELINES:
    - {name: copy_last_area, type: CopyLast, score: {ERROR: AREA, PATCH: 0}}
    - {name: flow_top, type: FlowSpeed, flow: {type: dis, preset: ultrafast}, score: {ERROR: CELL_TOP, TOP_FRACTION: 0.1}}
LOG:
  PROGRESS: False
"""


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, tiny_synthetic):
    tmp = tmp_path_factory.mktemp("baselines")
    cfg = tmp / "flow.yaml"
    cfg.write_text(TINY_FLOW)
    out = tmp / "run"
    r = run_tool("tools/train.py", "--cfg", cfg, "DATASET.ROOT", tiny_synthetic, "SYSTEM.OUTPUT_DIR", out)
    assert r.returncode == 0, r.stderr[-3000:]
    return cfg, out, tiny_synthetic, r


def test_train_fits_the_baseline_and_writes_a_checkpoint(fitted):
    _, out, _, _ = fitted
    ckpt = torch.load(out / "checkpoints" / "last.pth", weights_only=True)
    assert ckpt["model"]["quantiles"].shape == (4, 4)  # 32x32 frames, 8x8 cells
    assert torch.isfinite(ckpt["model"]["quantiles"]).all()
    assert ckpt["online"]["frames"] == 2 * 60  # both training videos read
    assert (out / "checkpoints" / "best.pth").is_file()


def test_metrics_hold_the_baselines_beside_the_method(fitted):
    _, out, _, r = fitted
    m = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= m["auc_micro"] <= 1.0
    # the first frame of each of the 4 test videos has no flow: excluded and counted, not scored as still
    assert m["protocol"]["frames_without_prediction"] == 4 and m["protocol"]["frames_without_score"] == 4
    assert list(m["baselines"]) == ["copy_last_area", "flow_top"]
    for name, row in m["baselines"].items():
        assert 0.0 <= row["auc_micro"] <= 1.0 and 0.0 <= row["auc_macro"] <= 1.0, name
        assert 0.0 <= row["eer"] <= 1.0 and 0.0 <= row["ap"] <= 1.0, name
        assert row["frames_without_score"] == 4 and row["frames_evaluated"] == 4 * 60 - 4, name
    assert m["baselines"]["copy_last_area"]["method"] == "CopyLast"
    assert m["baselines"]["copy_last_area"]["error"].startswith("AREA")
    assert m["baselines"]["flow_top"]["error"].startswith("CELL_TOP")
    final = [line for line in r.stderr.splitlines() if "final:" in line][-1]
    assert "baselines (micro/macro): copy_last_area " in final and "flow_top " in final
    report = (out / "report.html").read_text()
    assert 'id="baselines"' in report and "copy_last_area" in report
    assert "anomaly map" in report and 'alt="optical flow"' in report  # the method's map and its flow


def test_test_tool_scores_the_checkpoint_as_any_method(fitted, tmp_path):
    cfg, out, data, _ = fitted
    r = run_tool("tools/test.py", "--cfg", cfg, "--checkpoint", out / "checkpoints" / "last.pth", "DATASET.ROOT", data,
                 "SYSTEM.OUTPUT_DIR", tmp_path / "test")
    assert r.returncode == 0, r.stderr[-3000:]
    trained = json.loads((out / "metrics.json").read_text())
    tested = json.loads((tmp_path / "test" / "metrics.json").read_text())
    assert tested["auc_micro"] == trained["auc_micro"]
    assert tested["baselines"]["flow_top"]["auc_micro"] == trained["baselines"]["flow_top"]["auc_micro"]


def test_copy_last_trains_and_tests_with_nothing_to_fit(tmp_path, tiny_synthetic, restore_logging):
    small = ["DATASET.NAME", "synthetic", "DATASET.ROOT", str(tiny_synthetic), "DATASET.IMAGE_SIZE", "[32, 32]",
             "EVAL.PLOTS", "False", "EVAL.REPORT", "False", "LOG.PROGRESS", "False"]
    recipe = str(REPO / "configs" / "ped2_copy_last.yaml")
    launch.train(load_cfg(recipe, [*small, "SYSTEM.OUTPUT_DIR", str(tmp_path / "run")]))
    ckpt = tmp_path / "run" / "checkpoints" / "last.pth"
    assert torch.load(ckpt, weights_only=True)["model"] == {}
    m = launch.test(load_cfg(recipe, [*small, "SYSTEM.OUTPUT_DIR", str(tmp_path / "test")]), ckpt)
    assert m["protocol"]["frames_without_score"] == 4 and "baselines" not in m
    assert m["auc_micro"] == json.loads((tmp_path / "run" / "metrics.json").read_text())["auc_micro"]


@pytest.mark.parametrize("extra, message", [
    (["SCORE.ERROR", "PSNR"], "SCORE.ERROR PSNR reads a predicted frame, but FlowSpeed gives an anomaly map; "
                              "use one of CELL_MAX, CELL_TOP"),
    (["EVAL.BASELINES", "[{'type': 'FramePredictor'}]"], "EVAL.BASELINES[0]: "),
    (["EVAL.BASELINES", "[{'type': 'CopyLast', 'score': {'ERROR': 'CELL_MAX'}}]"],
     "SCORE.ERROR CELL_MAX reads an anomaly map, but EVAL.BASELINES[0] CopyLast gives a predicted frame"),
    (["EVAL.BASELINES", "[{'type': 'CopyLast', 'score': {'NOPE': 1}}]"], "EVAL.BASELINES[0].score"),
    (["EVAL.BASELINES", "[{'type': 'FlowSpeed'}, {'type': 'FlowSpeed'}]"], "EVAL.BASELINES: two baselines named"),
])
def test_a_wrong_scorer_or_baseline_is_one_clear_error_before_anything_runs(extra, message, tmp_path, tiny_synthetic,
                                                                            restore_logging):
    cfg = tmp_path / "flow.yaml"
    cfg.write_text(TINY_FLOW)
    with pytest.raises(ConfigError) as err:
        launch.train(load_cfg(str(cfg), ["DATASET.ROOT", str(tiny_synthetic), "SYSTEM.OUTPUT_DIR", str(tmp_path / "run"),
                                  "SCORE.ERROR", "CELL_MAX", *extra]))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_baselines_are_scored_once_per_run_not_at_every_evaluation(tiny_synthetic, tmp_path):
    from pyanomaly.datasets import build_dataset
    from pyanomaly.evaluation.build import build_task
    from pyanomaly.models import CopyLast
    cfg = load_cfg(None, ["DATASET.ROOT", str(tiny_synthetic), "DATASET.IMAGE_SIZE", "[32, 32]", "SCORE.ERROR", "AREA",
                          "EVAL.BASELINES", "[{'type': 'CopyLast', 'name': 'copy'}]", "EVAL.PLOTS", "False",
                          "EVAL.REPORT", "False", "LOG.PROGRESS", "False"])
    task = build_task(cfg)
    spec = task.baselines.specs[0]
    built = []
    spec.build = lambda make=spec.build: built.append(1) or make()
    test_set = build_dataset(cfg, "testing")
    model = CopyLast()  # the method evaluated; its own metrics equal the baseline's: the same method and error
    first = task.evaluate(model, test_set, torch.device("cpu"))
    second = task.evaluate(model, test_set, torch.device("cpu"))
    assert len(built) == 1 and second["baselines"] == first["baselines"]
    assert first["baselines"]["copy"]["auc_micro"] == first["auc_micro"]
    task.evaluate(model, build_dataset(cfg, "testing"), torch.device("cpu"))  # another split object: scored again
    assert len(built) == 2
