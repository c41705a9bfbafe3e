import csv
import json

import numpy as np
import pytest

from pyanomaly.evaluation.export import frame_rows, load_scores, write_score_files, write_scores


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
            np.testing.assert_array_equal(back[n]["error"], e)  # bit-exact, unlike the 6-digit CSV
            np.testing.assert_array_equal(back[n]["score"], s)
            assert back[n]["label"].tolist() == ([-1] * 7 if l is None else l.tolist())
    csv_back = load_scores(tmp_path / "scores/frame_scores.csv")
    np.testing.assert_allclose(csv_back["cam/a"]["error"], errors[1], rtol=1e-5)


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
