import csv
import json

import numpy as np
import pytest

from pyanomaly.errors import ScoreFileError
from pyanomaly.evaluation.export import csv_text, frame_rows, load_scores, write_score_files, write_scores


def test_export_round_trip(tmp_path):
    names = ["01", "02"]
    errors = [np.array([np.nan, 30.5, 21.25]), np.array([25.0, 26.0])]
    scores = [np.array([np.nan, 0.0, 1.0]), np.array([1.0, 0.0])]
    labels = [np.array([0, 0, 1]), None]
    write_scores(tmp_path, frame_rows(names, errors, scores, labels))
    with open(tmp_path / "frame_scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["video"] for r in rows] == ["01", "01", "01", "02", "02"]
    assert rows[0]["score"] == "" and rows[3]["label"] == ""
    assert json.loads((tmp_path / "frame_scores.json").read_text())[2] == {
        "video": "01", "frame": 2, "error": 21.25, "score": 1.0, "label": 1}
    for f in ("frame_scores.csv", "frame_scores.json"):
        back = load_scores(tmp_path / f)
        assert np.allclose(back["01"]["score"], scores[0], equal_nan=True)
        assert np.allclose(back["01"]["error"], errors[0], equal_nan=True)
        assert back["01"]["label"].tolist() == [0, 0, 1]
        assert back["02"]["label"].tolist() == [-1, -1]


def test_npy_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    names = ["01_0014", "cam/a", "cam_a"]  # a '/' and a name that collides once made safe
    errors = [rng.normal(30, 2, 7) for _ in names]
    errors[0][0] = np.nan
    scores = [rng.random(7) for _ in names]
    labels = [rng.integers(0, 2, 7), None, np.zeros(7, dtype=np.uint8)]
    protocol = {"error": "PSNR (frame mean)", "higher_error_is_anomalous": False}
    write_score_files(tmp_path / "scores", names, errors, scores, labels, ["01", "c", "c"], protocol)
    index = json.loads((tmp_path / "scores/index.json").read_text())
    assert index["protocol"] == protocol
    stems = [v["npy"] for v in index["videos"]]
    assert len(set(stems)) == 3 and all("/" not in s for s in stems)
    assert [v["group"] for v in index["videos"]] == ["01", "c", "c"]
    assert np.load(tmp_path / f"scores/npy/{stems[0]}_label.npy").dtype == np.int8
    for where in ("scores", "scores/npy", "scores/index.json"):
        back = load_scores(tmp_path / where)
        assert list(back) == names
        for n, e, s, l in zip(names, errors, scores, labels):
            np.testing.assert_array_equal(back[n]["error"], e)  # bit-exact
            np.testing.assert_array_equal(back[n]["score"], s)
            assert back[n]["label"].tolist() == ([-1] * 7 if l is None else l.tolist())
    for f in ("frame_scores.csv", "frame_scores.json"):  # as exact as the .npy arrays
        back = load_scores(tmp_path / "scores" / f)
        for n, e, s in zip(names, errors, scores):
            np.testing.assert_array_equal(back[n]["error"], e)
            np.testing.assert_array_equal(back[n]["score"], s)


def test_csv_floats_are_shortest_round_trip_text():
    rows = [{"x": np.float64(0.1), "y": 1 / 3, "z": None}]
    assert csv_text(rows, ("x", "y", "z")) == "x,y,z\n0.1,0.3333333333333333,\n"
    tiny = np.nextafter(30.0, 31.0)  # differs from 30 in the last bit only
    assert float(csv_text([{"x": tiny}], ("x",)).splitlines()[1]) == tiny != 30.0


def test_loading_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="scores file not found"):
        load_scores(tmp_path / "nope.csv")
    (tmp_path / "npy").mkdir()
    with pytest.raises(FileNotFoundError, match="index.json"):
        load_scores(tmp_path / "npy")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="video, frame"):
        load_scores(bad)


def test_a_stream_csv_without_labels_loads(tmp_path):
    f = tmp_path / "frame_scores.csv"
    f.write_text("video,frame,time_s,error,score\nv,0,0,,\nv,1,0.04,28.5,1.5\n")
    back = load_scores(f)
    assert back["v"]["label"].tolist() == [-1, -1] and back["v"]["error"][1] == 28.5


HEAD = "video,frame,error,score,label\n"


def index(**frames):
    return json.dumps({"protocol": {}, "videos": [{"video": v, "group": None, "frames": n, "npy": None}
                                                  for v, n in frames.items()]})


# (id, files written to tmp_path, file loaded, what the one-line message must name besides the file)
BAD_FILES = [
    ("negative-frame", {"s.csv": HEAD + "v,0,1.5,,0\nv,-3,2.5,,0\n"}, "s.csv", ["line 3", "'v'", "-3", ">= 0"]),
    ("fractional-frame", {"s.csv": HEAD + "v,0,1.5,,0\nv,1.5,2.5,,0\n"}, "s.csv", ["line 3", "'1.5'"]),
    ("duplicate-frame", {"s.csv": HEAD + "v,0,1,,0\nv,1,2,,0\nv,1,3,,0\n"}, "s.csv",
     ["line 4", "'v' frame 1", "first at line 3"]),
    ("gap", {"s.csv": HEAD + "v,0,1,,0\nv,1,2,,0\nv,3,3,,0\n"}, "s.csv", ["line 4", "'v'", "no frame 2"]),
    ("huge-frame", {"s.csv": HEAD + "v,0,1,,0\nv,1000000000000,2,,0\n"}, "s.csv",
     ["line 3", "'v'", "no frame 1", "1000000000000"]),
    ("frame-beyond-index", {"s.csv": HEAD + "v,0,1,,0\nv,1,2,,0\nv,5000,3,,0\n", "index.json": index(v=2)}, "s.csv",
     ["line 4", "'v'", "5000", "0..1", "index.json"]),
    ("video-not-in-index", {"s.csv": HEAD + "v,0,1,,0\nw,0,2,,0\n", "index.json": index(v=1)}, "s.csv",
     ["line 3", "'w'", "index.json"]),
    ("missing-field", {"s.csv": HEAD + "v,0,1,,0\nv,1,2.5\n"}, "s.csv", ["line 3", "3 fields", "expected 5"]),
    ("extra-field", {"s.csv": HEAD + "v,0,1,,0,7\n"}, "s.csv", ["line 2", "6 fields"]),
    ("cut-mid-line", {"s.csv": HEAD + "v,0,1.5,,0\nv,1,2."}, "s.csv", ["line 3", "truncated"]),
    ("fewer-videos-than-index", {"s.csv": HEAD + "a,0,1,,0\na,1,2,,0\n", "index.json": index(a=2, b=2)}, "s.csv",
     ["'b'", "index.json", "truncated"]),
    ("fewer-frames-than-index", {"s.csv": HEAD + "a,0,1,,0\na,1,2,,0\n", "index.json": index(a=3)}, "s.csv",
     ["'a' has 2 frames", "lists 3", "truncated"]),
    ("label-2", {"s.csv": HEAD + "v,0,1.5,,2\n"}, "s.csv", ["line 2", "'v' frame 0", "label '2'", "0, 1 or empty"]),
    ("label-float", {"s.csv": HEAD + "v,0,1.5,,1.0\n"}, "s.csv", ["line 2", "label '1.0'"]),
    ("text-error", {"s.csv": HEAD + "v,0,abc,,0\n"}, "s.csv", ["line 2", "'v' frame 0", "error 'abc'"]),
    ("inf-score", {"s.csv": HEAD + "v,0,1,inf,0\n"}, "s.csv", ["line 2", "score 'inf'", "finite"]),
    ("empty-video", {"s.csv": HEAD + ",0,1,,0\n"}, "s.csv", ["line 2", "video name"]),
    ("broken-index", {"s.csv": HEAD + "v,0,1,,0\n", "index.json": '{"videos": ['}, "s.csv",
     ["index.json", "not valid JSON"]),
    ("json-cut", {"s.json": '[{"video": "v", "frame": 0, "error": 1.5}, {"video": "v", "fr'}, "s.json",
     ["not valid JSON", "truncated"]),
    ("json-negative-frame", {"s.json": '[{"video": "v", "frame": 0}, {"video": "v", "frame": -3}]'}, "s.json",
     ["row [1]", "'v'", "-3"]),
    ("json-missing-key", {"s.json": '[{"video": "v", "frame": 0, "error": 1}, {"video": "v", "frame": 1}]'},
     "s.json", ["row [1]", "no error"]),
    ("json-string-frame", {"s.json": '[{"video": "v", "frame": "0"}]'}, "s.json", ["row [0]", "frame '0'"]),
    ("json-label", {"s.json": '[{"video": "v", "frame": 0, "label": 0.5}]'}, "s.json",
     ["row [0]", "'v' frame 0", "label 0.5"]),
    ("json-text-error", {"s.json": '[{"video": "v", "frame": 0, "error": "30.1"}]'}, "s.json",
     ["row [0]", "error '30.1'"]),
    ("json-duplicate", {"s.json": '[{"video": "v", "frame": 0}, {"video": "v", "frame": 0}]'}, "s.json",
     ["row [1]", "'v' frame 0", "first at row [0]"]),
]


@pytest.mark.parametrize("files,target,needles", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_score_files_are_refused_naming_where(tmp_path, files, target, needles):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ScoreFileError) as err:
        load_scores(tmp_path / target)
    msg = str(err.value)
    assert type(err.value) is ScoreFileError and "\n" not in msg
    assert str(tmp_path) in msg, msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def exported(tmp_path):
    """A scores/ folder of two 5-frame videos; returns the paths of video 'b''s arrays."""
    rng = np.random.default_rng(1)
    write_score_files(tmp_path, ["a", "b"], [rng.random(5)] * 2, [rng.random(5)] * 2, [np.zeros(5, int)] * 2)
    return {k: tmp_path / f"npy/b_{k}.npy" for k in ("error", "score", "label")}


def test_bad_npy_arrays_are_refused_naming_where(tmp_path):
    f = exported(tmp_path)
    np.save(f["label"], np.array([0, 0, 3, 0, 0], np.int8))
    with pytest.raises(ScoreFileError, match=r"b_label\.npy: video 'b' frame 2: label 3"):
        load_scores(tmp_path)
    np.save(f["label"], np.zeros(5, np.int8))
    np.save(f["score"], np.zeros(4))
    with pytest.raises(ScoreFileError, match=r"b_score\.npy: video 'b'.*shape \(4,\); expected \(5,\)"):
        load_scores(tmp_path / "npy")
    np.save(f["score"], np.zeros(5))
    f["error"].write_bytes(f["error"].read_bytes()[:-8])  # cut while written
    with pytest.raises(ScoreFileError, match=r"b_error\.npy: .*truncated"):
        load_scores(tmp_path / "index.json")


def test_a_file_cut_at_a_line_end_is_refused_by_its_index(tmp_path):
    rng = np.random.default_rng(2)
    write_score_files(tmp_path, ["a", "b"], [rng.random(40)] * 2, [rng.random(40)] * 2, [None] * 2)
    csv_file = tmp_path / "frame_scores.csv"
    lines = csv_file.read_text().splitlines(keepends=True)
    assert set(load_scores(csv_file)) == {"a", "b"}
    csv_file.write_text("".join(lines[:30]))  # a whole number of lines: the CSV alone looks complete
    with pytest.raises(ScoreFileError, match=r"frame_scores\.csv: no rows for video 'b'.*truncated"):
        load_scores(csv_file)
    csv_file.write_text("".join(lines[:60]))
    with pytest.raises(ScoreFileError, match=r"video 'b' has 19 frames, .*index\.json lists 40.*truncated"):
        load_scores(csv_file)
