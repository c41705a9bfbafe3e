"""Bad and unusual label files of the ``folder`` dataset (``testing/labels.csv``): each bad one ends
in one line ``error: ...`` naming the file, the line and the value; the unusual but valid ones
(Excel's byte-order mark, Windows line ends, a name in other case, blank lines) give the same
labels as the plain file; a missing one is said, with its reason, in the log and in metrics.json."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pyanomaly.datasets.folder import FolderDataset

from testutils import assert_one_clear_error, run_tool_in_process

from conftest import FAST

PLAIN = "video,start,end\n01,18,39\n02,22,45\n03,18,37\n04,19,34\n"


@pytest.fixture
def root(tiny_synthetic, tmp_path) -> Path:
    """The tiny dataset (4 test videos of 60 frames named 01..04; its frames linked) without its labels file."""
    copy = tmp_path / "data"
    (copy / "testing").mkdir(parents=True)
    (copy / "training").symlink_to(tiny_synthetic / "training")
    (copy / "testing/frames").symlink_to(tiny_synthetic / "testing/frames")
    return copy


def test_tool(capsys, monkeypatch, cfg_file, ckpt: Path, root: Path, out: Path, *extra):
    return run_tool_in_process(capsys, monkeypatch, "test.py", "--cfg", cfg_file, "--checkpoint", ckpt,
                               "DATASET.NAME", "folder", "DATASET.ROOT", root, "SYSTEM.OUTPUT_DIR", out,
                               "EVAL.PLOTS", "False", "EVAL.REPORT", "False", *extra)


test_tool.__test__ = False  # a helper, not a test


# (id, the bytes of testing/labels.csv, the part of the error line after the file's path)
BAD_LABELS = [
    ("wrong_header", b"name,start,end\n01,18,39\n", ": header must be 'video,start,end', got ['name', 'start', 'end']"),
    ("no_header_at_all", b"", ": header must be 'video,start,end', got None"),
    ("start_not_a_number", b"video,start,end\n01,eighteen,39\n",
     " line 2: start/end must be integers, got {'video': '01', 'start': 'eighteen', 'end': '39'}"),
    ("end_empty", b"video,start,end\n01,18,\n", " line 2: start/end must be integers"),
    ("negative_start", b"video,start,end\n01,-3,5\n", " line 2: interval -3..5 needs 0 <= start <= end (0-based)"),
    ("end_before_start", b"video,start,end\n01,30,20\n", " line 2: interval 30..20 needs 0 <= start <= end"),
    ("unknown_video", b"video,start,end\n01,18,39\nzz,1,2\n", " line 3: no video named 'zz' (videos: 01, 02, 03, 04)"),
    ("video_number_without_zero", b"video,start,end\n1,18,39\n", " line 2: no video named '1'"),
    ("missing_field", b"video,start,end\n01,18\n", " line 2: expected the fields video,start,end, got '01,18'"),
    ("extra_field", b"video,start,end\n01,18,39,7\n", " line 2: expected the fields video,start,end, got '01,18,39,7'"),
    ("line_numbers_count_blank_lines", b"video,start,end\n\n01,18,39\n\n02,x,1\n",
     " line 5: start/end must be integers"),
    ("latin1_text", "video,start,end\ncafé,1,2\n".encode("latin-1"),
     ": not UTF-8 text (byte 19); save it as CSV UTF-8"),
    ("binary", bytes(range(128, 256)), ": not UTF-8 text (byte 0)"),
]


@pytest.mark.parametrize("content,expect", [c[1:] for c in BAD_LABELS], ids=[c[0] for c in BAD_LABELS])
def test_bad_labels_file(content, expect, root, finished, cfg_file, tmp_path, capsys, monkeypatch):
    labels = root / "testing/labels.csv"
    labels.write_bytes(content)
    code, err = test_tool(capsys, monkeypatch, cfg_file, finished / "checkpoints/last.pth", root, tmp_path / "out")
    assert_one_clear_error(code, err, f"{labels}{expect}")
    assert not (tmp_path / "out/metrics.json").exists()


def test_interval_past_the_end_of_its_video(root, finished, cfg_file, tmp_path, capsys, monkeypatch):
    (root / "testing/labels.csv").write_text("video,start,end\n02,50,60\n")
    code, err = test_tool(capsys, monkeypatch, cfg_file, finished / "checkpoints/last.pth", root, tmp_path / "out")
    assert_one_clear_error(code, err, f"video '02' ({root / 'testing/labels.csv'}): anomalous interval 50..60 "
                                      "(0-based, inclusive) does not fit its 60 frames")


def test_names_differing_only_in_case(root, finished, cfg_file, tmp_path, capsys, monkeypatch):
    (root / "testing/Labels.csv").write_text(PLAIN)
    (root / "testing/LABELS.CSV").write_text(PLAIN)
    code, err = test_tool(capsys, monkeypatch, cfg_file, finished / "checkpoints/last.pth", root, tmp_path / "out")
    assert_one_clear_error(code, err, f"{root / 'testing'}: several label files differ only in case (LABELS.CSV, "
                                      "Labels.csv); keep one, named labels.csv")


def test_label_file_setting_pointing_nowhere(root, finished, cfg_file, tmp_path, capsys, monkeypatch):
    code, err = test_tool(capsys, monkeypatch, cfg_file, finished / "checkpoints/last.pth", root, tmp_path / "out",
                          "DATASET.ARGS.label_file", "gt/labels.csv")
    assert_one_clear_error(code, err, f"label file not found: {root / 'gt/labels.csv'}")


def labels_of(root: Path) -> list[np.ndarray | None]:
    ds = FolderDataset(root, split="testing", clip_length=6, image_size=(32, 32))
    return [ds.labels(i) for i in range(len(ds.videos))]


# (id, file name, bytes): each must give the labels of PLAIN
SAME_LABELS = [
    ("excel_utf8_bom", "labels.csv", b"\xef\xbb\xbf" + PLAIN.encode()),
    ("windows_line_ends", "labels.csv", PLAIN.replace("\n", "\r\n").encode()),
    ("bom_and_windows_line_ends", "labels.csv", b"\xef\xbb\xbf" + PLAIN.replace("\n", "\r\n").encode()),
    ("blank_lines_and_spaces", "labels.csv", b"video, start, end\n\n01,18,39\n02,22,45\n\n03,18,37\n04,19,34\n\n"),
    ("capitalised_name", "Labels.csv", PLAIN.encode()),
    ("upper_case_name", "LABELS.CSV", PLAIN.encode()),
    ("no_final_newline", "labels.csv", PLAIN.rstrip("\n").encode()),
]


@pytest.mark.parametrize("name,content", [c[1:] for c in SAME_LABELS], ids=[c[0] for c in SAME_LABELS])
def test_valid_variants_give_the_same_labels(name, content, root, caplog):
    (root / "testing/labels.csv").write_text(PLAIN)
    expected = labels_of(root)
    assert all(l is not None and l.sum() > 0 for l in expected)
    (root / "testing/labels.csv").unlink()
    (root / "testing" / name).write_bytes(content)
    found = labels_of(root)
    assert all(np.array_equal(a, b) for a, b in zip(found, expected))
    if name != "labels.csv":
        assert f"read from {name} (expected the name labels.csv)" in caplog.text


# (id, a file left where labels.csv should be, what the reason names)
NO_LABELS = [
    ("none_at_all", None, "no labels.csv in {folder}"),
    ("singular_name", "label.csv", "no labels.csv in {folder} (found label.csv: misnamed?)"),
    ("text_extension", "labels.txt", "no labels.csv in {folder} (found labels.txt: misnamed?)"),
    ("double_extension", "labels.csv.txt", "no labels.csv in {folder} (found labels.csv.txt: misnamed?)"),
]


@pytest.mark.parametrize("left,reason", [c[1:] for c in NO_LABELS], ids=[c[0] for c in NO_LABELS])
def test_missing_labels_are_explained(left, reason, root):
    if left:
        (root / "testing" / left).write_text(PLAIN)
    ds = FolderDataset(root, split="testing", clip_length=6, image_size=(32, 32))
    assert all(ds.labels(i) is None for i in range(len(ds.videos)))
    assert ds.labels_missing == reason.format(folder=root / "testing")


def test_missing_labels_in_the_log_and_metrics(root, finished, cfg_file, tmp_path, capsys, monkeypatch):
    (root / "testing/Label.csv").write_text(PLAIN)
    out = tmp_path / "out"
    code, err = test_tool(capsys, monkeypatch, cfg_file, finished / "checkpoints/last.pth", root, out)
    assert code == 0, err
    reason = f"no labels.csv in {root / 'testing'} (found Label.csv: misnamed?)"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["auc_micro"] is None and metrics["labels_missing"] == reason
    assert f"WARNING every metric is n/a: {reason}" in (out / "log.txt").read_text()


def test_training_without_labels_says_why_best_is_the_last(root, cfg_file, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    code, err = run_tool_in_process(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.NAME", "folder",
                                    "DATASET.ROOT", root, "SYSTEM.OUTPUT_DIR", out, *FAST)
    assert code == 0, err
    assert (f"TRAIN.BEST_METRIC auc_micro had no value at any evaluation (no labels.csv in {root / 'testing'}); "
            "checkpoints/best.pth holds the final weights") in (out / "log.txt").read_text()
