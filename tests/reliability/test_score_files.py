"""Exported scores re-evaluated with ``tools/test.py --scores``, as an operator hands them back:
re-saved by Excel or on Windows, reordered (the same metrics as the run's), or damaged (one
line ``error: ...`` naming the file and what is wrong). The row-by-row checks of the readers
are catalogued in ``tests/evaluation/test_export.py``; these go through the tool."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from testutils import assert_one_clear_error, run_tool_in_process


@pytest.fixture
def scores(finished, tmp_path) -> Path:
    """A copy of the finished run's ``scores/`` folder."""
    return Path(shutil.copytree(finished / "scores", tmp_path / "scores"))


def rescore(capsys, monkeypatch, cfg_file, target: Path, out: Path) -> tuple[int, str]:
    return run_tool_in_process(capsys, monkeypatch, "test.py", "--cfg", cfg_file, "--scores", target,
                               "SYSTEM.OUTPUT_DIR", out, "EVAL.PLOTS", "False", "EVAL.REPORT", "False")


def _csv_lines(edit):
    def make(folder: Path) -> Path:
        path = folder / "frame_scores.csv"
        lines = path.read_text().splitlines(keepends=True)
        path.write_bytes(edit(lines))
        return path
    return make


def _shuffled(lines: list[str]) -> bytes:
    rows = lines[1:]
    random.Random(0).shuffle(rows)
    return "".join([lines[0], *rows]).encode()


# (id, how the file to re-score is made from the scores folder): each gives the run's metrics
SAME_METRICS = [
    ("csv_as_exported", lambda folder: folder / "frame_scores.csv"),
    ("csv_with_excel_bom", _csv_lines(lambda lines: b"\xef\xbb\xbf" + "".join(lines).encode())),
    ("csv_with_windows_line_ends", _csv_lines(lambda lines: "".join(lines).replace("\n", "\r\n").encode())),
    ("csv_rows_shuffled", _csv_lines(_shuffled)),
    ("json_as_exported", lambda folder: folder / "frame_scores.json"),
    ("npy_folder", lambda folder: folder / "npy"),
]


@pytest.mark.parametrize("make", [c[1] for c in SAME_METRICS], ids=[c[0] for c in SAME_METRICS])
def test_rescoring_reproduces_the_run_metrics(make, scores, finished, cfg_file, tmp_path, capsys, monkeypatch):
    code, err = rescore(capsys, monkeypatch, cfg_file, make(scores), tmp_path / "out")
    assert code == 0, err
    got = json.loads((tmp_path / "out/metrics.json").read_text())
    want = json.loads((finished / "metrics.json").read_text())
    assert got["auc_micro"] is not None
    assert [got[k] for k in ("auc_micro", "auc_macro", "eer", "ap")] == [want[k] for k in ("auc_micro", "auc_macro",
                                                                                              "eer", "ap")]


def _write(name: str, content: bytes):
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(content)
        return folder / name
    return make


def _cut_npy(folder: Path) -> Path:
    f = folder / "npy/02_error.npy"
    f.write_bytes(f.read_bytes()[:100])
    return folder / "npy"


def _drop_npy(folder: Path) -> Path:
    (folder / "npy/03_score.npy").unlink()
    (folder / "npy/03_error.npy").unlink()
    return folder / "npy"


def _drop_index(folder: Path) -> Path:
    (folder / "index.json").unlink()
    return folder / "npy"


def _csv_video_dropped(folder: Path) -> Path:
    path = folder / "frame_scores.csv"
    path.write_text("".join(line for line in path.read_text().splitlines(keepends=True)
                            if not line.startswith("04,")))
    return path


# (id, how the bad input is made from the scores folder, the part of the error line after its path)
BAD_SCORES = [
    ("missing_file", lambda folder: folder / "nope.csv", "scores file not found: {path}"),
    ("binary_csv", _write("frame_scores.csv", bytes(range(128, 256))),
     "{path}: byte 0 is not UTF-8 text; expected a CSV of scores"),
    ("csv_cut_mid_line", _csv_lines(lambda lines: "".join(lines)[:-3].encode()),
     "{path}, line 241: the file ends in the middle of a line (no newline): it looks truncated"),
    ("csv_without_its_last_video", _csv_video_dropped, "{path}: no rows for video '04'; "),
    ("csv_header_only", _csv_lines(lambda lines: lines[0].encode()), "{path}: no rows for video '01'"),
    ("json_cut", _write("frame_scores.json", b'[{"video": "01", "frame": 0, "error": nu'),
     "{path} is not valid JSON"),
    ("binary_index", _write("index.json", bytes(range(128, 256))), "{path} is not valid JSON"),
    ("npy_cut", _cut_npy, "02_error.npy: not a readable .npy array"),
    ("npy_missing", _drop_npy, "03_error.npy (listed in "),
    ("npy_without_index", _drop_index, "no index.json in or above {path}: cannot tell which .npy file is which video"),
]


@pytest.mark.parametrize("make,expect", [c[1:] for c in BAD_SCORES], ids=[c[0] for c in BAD_SCORES])
def test_damaged_scores_are_refused(make, expect, scores, cfg_file, tmp_path, capsys, monkeypatch):
    target = make(scores)
    code, err = rescore(capsys, monkeypatch, cfg_file, target, tmp_path / "out")
    assert_one_clear_error(code, err, expect.format(path=target))
    assert not (tmp_path / "out/metrics.json").exists()


def test_npy_values_survive_exactly(scores, finished):
    """The arrays the folder form is read from are the run's own, bit for bit."""
    from pyanomaly.evaluation.score_files import load_scores
    loaded = load_scores(scores / "npy")
    assert sorted(loaded) == ["01", "02", "03", "04"]
    for video, arrays in loaded.items():
        assert np.array_equal(arrays["error"], np.load(scores / f"npy/{video}_error.npy"), equal_nan=True)
