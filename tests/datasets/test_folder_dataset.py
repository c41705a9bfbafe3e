"""``folder``: a user's videos (real .avi files and frame folders) with labels.csv, and its errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fake_layouts import load  # noqa: F401 (a fixture)
from fake_layouts import make_folder, write_avi, write_frames

from pyanomaly.datasets import DatasetError, FolderDataset
from pyanomaly.datasets.folder import find_videos
from pyanomaly.datasets.video import probe

VTEST = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "videos" / "vtest.avi"


def test_avi_and_frame_folders_with_csv(tmp_path, load):
    expected = make_folder(tmp_path)
    ds = load("folder", tmp_path)
    assert isinstance(ds, FolderDataset)
    assert ds.names == ["cam1", "cam2"] and ds.lengths == [10, 7]
    for i, labels in enumerate(expected.values()):
        np.testing.assert_array_equal(ds.labels(i), labels)
    train = load("folder", tmp_path, "training", clip_length=3)
    assert train.lengths == [9, 8] and train.labels(0) is None
    assert len(train) == (9 - 2) + (8 - 2)
    sample = train[0]
    assert sample["frames"].shape == (3, 1, 8, 8) and sample["frame"] == 2 and sample["video"] == 0


def test_frames_level_and_label_file(tmp_path, load):
    write_frames(tmp_path / "testing" / "frames" / "a", 6)
    write_frames(tmp_path / "training" / "frames" / "a", 6)
    (tmp_path / "gt.csv").write_text("video,start,end\na,0,0\n")
    ds = load("folder", tmp_path, label_file="gt.csv")
    assert ds.labels(0).tolist() == [1, 0, 0, 0, 0, 0]
    assert load("folder", tmp_path, "training", label_file="gt.csv").labels(0) is None  # test split only


@pytest.mark.parametrize("csv,match", [
    ("video,begin,end\n", r"header must be 'video,start,end'"),
    ("video,start,end\ncam9,0,1\n", r"labels\.csv line 2: no video named 'cam9'"),
    ("video,start,end\ncam1,a,1\n", r"line 2: start/end must be integers"),
    ("video,start,end\ncam1,5,3\n", r"line 2: interval 5\.\.3 needs 0 <= start <= end"),
    ("video,start,end\ncam1,0,1\ncam2,5,7\n", r"video 'cam2' \(.*labels\.csv\): anomalous interval 5\.\.7 .* its 7 frames"),
])
def test_csv_errors(tmp_path, load, csv, match):
    make_folder(tmp_path)
    (tmp_path / "testing" / "labels.csv").write_text(csv)
    with pytest.raises(DatasetError, match=match):
        load("folder", tmp_path)


def test_missing_split_and_empty_video(tmp_path, load):
    with pytest.raises(DatasetError, match=r"missing split folder .*training"):
        load("folder", tmp_path, "training")
    (tmp_path / "training" / "empty").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"empty holds no image files"):
        load("folder", tmp_path, "training")
    with pytest.raises(DatasetError, match="dataset root not found"):
        load("folder", tmp_path / "nope", "training")


def test_unreadable_and_empty_video_file(tmp_path, load):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "broken.avi").write_bytes(b"\x00" * 100)
    with pytest.raises(DatasetError, match=r"video 'broken': (cannot open video file|.*has no frames).*broken\.avi"):
        load("folder", tmp_path, "training")


def test_duplicate_names(tmp_path, load):
    write_avi(tmp_path / "training" / "a.avi", 4)
    write_frames(tmp_path / "training" / "a", 4)
    with pytest.raises(DatasetError, match=r"share the name\(s\) \['a'\]"):
        load("folder", tmp_path, "training")


def test_too_short_for_a_clip(tmp_path, load):
    write_frames(tmp_path / "training" / "a", 3)
    with pytest.raises(DatasetError, match=r"no video is long enough for one clip of 5 frames.*3 frames"):
        load("folder", tmp_path, "training", clip_length=5)


@pytest.mark.skipif(not VTEST.is_file(), reason=f"real sample video not present at {VTEST}")
def test_real_video_file(tmp_path, load):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "vtest.avi").symlink_to(VTEST.resolve())
    records = find_videos(tmp_path / "training")
    assert [r.name for r in records] == ["vtest"]
    info = probe(records[0])
    assert (info.width, info.height, info.fps) == (768, 576, 10.0)
    ds = load("folder", tmp_path, "training", image_size=(12, 16))
    assert ds.lengths == [795]
    assert ds.video_frames(0).shape == (795, 1, 12, 16)
    assert ds.video_frames(0, 790).shape == (5, 1, 12, 16)
    assert ds.video_frames(0, 10, 20).equal(ds.video_frames(0)[10:20])


def test_any_split_name(tmp_path, load):
    write_frames(tmp_path / "validation" / "a", 5)
    assert load("folder", tmp_path, "validation").lengths == [5]
