"""Results by kind of anomaly: the AUC of each kind against the normal frames, the table of a run's exports."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pyanomaly.config import get_defaults
from pyanomaly.datasets.folder import FolderDataset
from pyanomaly.errors import DatasetError
from pyanomaly.evaluation.export import write_score_files
from pyanomaly.evaluation.kinds import auc_by_kind, exports_by_kind, kind_labels, kinds_table
from pyanomaly.scoring.build import build_pipeline

from testutils import train_in_process

NAMES = ["a", "b"]
LABELS = [np.array([0, 0, 1, 1, 0, 0, 1]), np.array([0, 0, 0, 1, 1, 0])]
# video a: frames 2-3 of kind x, frame 6 anomalous in no event; video b: frames 3-4 of kind y, frame 5
# inside the event but labelled normal (the labels decide what is anomalous)
EVENTS = {"a": [("x", 2, 3)], "b": [("y", 3, 5)]}
SCORES = [np.array([0.1, 0.2, 0.9, 0.95, 0.3, 0.4, 0.0]), np.array([0.1, 0.2, 0.3, 0.25, 0.35, 0.4])]


def test_each_kind_against_every_normal_frame_by_hand():
    assert kind_labels("a", LABELS[0], EVENTS, "y").tolist() == [0, 0, -1, -1, 0, 0, -1]
    assert kind_labels("b", LABELS[1], EVENTS, "y").tolist() == [0, 0, 0, 1, 1, 0]
    out = auc_by_kind(NAMES, SCORES, LABELS, EVENTS)
    assert list(out) == ["x", "y"]
    # normal frames: 0.1 0.2 0.3 0.4 (a) and 0.1 0.2 0.3 0.4 (b). x: 0.9, 0.95 above all of them.
    assert out["x"] == {"auc_micro": 1.0, "frames_anomalous": 2, "videos": 1}
    # y: 0.25 above 4 of the 8 normal frames, 0.35 above 6: (4 + 6) / 16
    assert out["y"] == {"auc_micro": pytest.approx(10 / 16), "frames_anomalous": 2, "videos": 1}
    with pytest.raises(ValueError, match=r"event y 3\.\.9 of video 'b' ends past its last frame 5"):
        auc_by_kind(NAMES, SCORES, LABELS, {"b": [("y", 3, 9)]})


def test_exports_are_rescored_under_the_protocol_and_tabled_by_kind(tmp_path):
    cfg = get_defaults()
    pipeline = build_pipeline(cfg, higher_is_anomalous=True)  # per-video min-max, no smoothing
    nan = [np.full(len(s), np.nan) for s in SCORES]
    write_score_files(tmp_path / "cues" / "one", NAMES, SCORES, nan, LABELS, npy=False,
                      protocol={"higher_error_is_anomalous": True})
    flipped = [1.0 - s for s in SCORES]
    write_score_files(tmp_path / "cues" / "one+two", NAMES, flipped, nan, LABELS, npy=False)
    rows = exports_by_kind(tmp_path / "cues", EVENTS, pipeline)
    assert list(rows) == ["one", "one+two"]
    # min-max per video (by hand): a's normal frames 0.105 0.211 0.316 0.421 and x 0.947 1.0 (its min is
    # frame 6's 0.0, in no event); b's normal frames 0 0.333 0.667 1.0 and y 0.5 0.833.
    # x: 0.947 above 7 of the 8 normal frames, 1.0 above 7 and tied with 1 -> 14.5 / 16
    assert rows["one"]["x"] == pytest.approx(14.5 / 16)
    assert rows["one"]["y"] == pytest.approx(13 / 16)  # 0.5 above 6, 0.833 above 7
    # the flipped errors: x at 0.053 and 0 in a, above b's lowest normal frame (0) once, tied once
    assert rows["one+two"]["x"] == pytest.approx(1.5 / 16)
    table = kinds_table(rows)
    assert table.splitlines()[0] == "| cues | x | y | all |"
    assert table.splitlines()[2].startswith("| one | 0.906 | 0.812 | ")
    write_score_files(tmp_path / "low" / "c", NAMES, SCORES, nan, LABELS, npy=False,
                      protocol={"higher_error_is_anomalous": False})
    with pytest.raises(ValueError, match="lower when anomalous"):
        exports_by_kind(tmp_path / "low", EVENTS, pipeline)


def test_a_folder_dataset_reads_events_csv_and_refuses_a_bad_one(tiny_synthetic, tmp_path):
    ds = FolderDataset(tiny_synthetic, split="testing", clip_length=2, image_size=(32, 32), cache_dir=None)
    assert sorted(ds.events) == ds.names and ds.events["01"][0][0] == "fast"
    bad = tmp_path / "events.csv"
    bad.write_text("video,start,end,kind\n01,1,2,fast\n")
    from pyanomaly.datasets.events import read_events_csv
    with pytest.raises(DatasetError, match="header must be 'video,kind,start,end'"):
        read_events_csv(bad, ["01"])
    bad.write_text("video,kind,start,end\n09,fast,1,2\n")
    with pytest.raises(DatasetError, match="line 2: no video named '09'"):
        read_events_csv(bad, ["01"])


RECIPE = """
DATASET:
  ROOT: {root}
  CLIP_LENGTH: 2
  IMAGE_SIZE: [32, 32]
  ARGS:
    generator: {{seed: 0, size: 32, num_train: 1, num_test: 2, frames_per_video: 40,
                kinds: [left_behind, fall]}}
MODEL:
  NAME: Fusion
  ARGS:
    cues:
      - name: copy
        method: {{type: CopyLast}}
        error: {{type: PSNR}}
      - name: appearance
        method: {{type: LocalAppearance, cell: 8, codewords: 4}}
        error: {{type: CELL_MAX, patch: 8}}
SCORE:
  ERROR: FRAME_ERROR
EVAL:
  PLOTS: False
  REPORT: False
LOG:
  PROGRESS: False
"""


def test_a_fusion_run_on_a_scene_with_events_writes_auc_by_kind_and_the_cues_table(tmp_path):
    cfg_file = tmp_path / "static.yaml"
    cfg_file.write_text(RECIPE.format(root=tmp_path / "scene"))
    train_in_process(cfg_file, tmp_path / "scene", tmp_path / "run")  # generates the scene on first use
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert list(metrics["auc_by_kind"]) == ["left_behind", "fall"]
    table = (tmp_path / "run" / "cues" / "by_kind.md").read_text().splitlines()
    assert table[0] == "| cues | left_behind | fall | all |"
    assert [line.split(" | ")[0] for line in table[2:]] == ["| appearance", "| copy", "| copy+appearance"]
    # the row of every cue is the run's own scores re-scored: the same AUCs as metrics.json
    fused = table[4].strip("| ").split(" | ")[1:]
    assert fused == [f"{metrics['auc_by_kind'][k]['auc_micro']:.3f}" for k in ("left_behind", "fall")] + \
        [f"{metrics['auc_micro']:.3f}"]
    assert "by kind (micro): left_behind" in (tmp_path / "run" / "log.txt").read_text()
