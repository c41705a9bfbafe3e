import csv
import json

import numpy as np

from pyanomaly.evaluation.export import frame_rows, load_scores, write_scores


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
