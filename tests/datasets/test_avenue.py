"""``avenue``: official videos with volLabel masks or avenue.mat, and the frame-folder variant."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from fake_layouts import load  # noqa: F401 (a fixture)
from fake_layouts import make_avenue, write_gt_mat, write_vol_label

from pyanomaly.datasets import AvenueDataset, DatasetError


@pytest.mark.parametrize("variant,gt", [("official", "masks"), ("official", "mat"), ("frames", "mat"),
                                        ("frames", "masks")])
def test_layouts(tmp_path, load, variant, gt):
    expected = make_avenue(tmp_path, variant, gt)
    ds = load("avenue", tmp_path)
    assert isinstance(ds, AvenueDataset)
    assert ds.names == ["01", "02"] and ds.lengths == [7, 9]
    for i, labels in enumerate(expected.values()):
        np.testing.assert_array_equal(ds.labels(i), labels)
    train = load("avenue", tmp_path, "training", channels=3)
    assert train.lengths == [8, 8] and train.video_frames(0).shape == (8, 3, 8, 8)
    assert train.labels(0) is None


def test_official_archive_folder_name(tmp_path, load):
    expected = make_avenue(tmp_path / "Avenue Dataset", "official", "mat")
    ds = load("avenue", tmp_path)
    assert ds.names == list(expected)


def test_vol_label_length_mismatch(tmp_path, load):
    make_avenue(tmp_path, "official", "masks")
    write_vol_label(tmp_path / "ground_truth_demo" / "testing_label_mask" / "2_label.mat", np.zeros(8, np.uint8))
    with pytest.raises(DatasetError, match=r"video '02' \(.*2_label\.mat\): 9 frames but labels of shape \(8,\)"):
        load("avenue", tmp_path)


def test_vol_label_wrong_shape(tmp_path, load):
    make_avenue(tmp_path, "official", "masks")
    path = tmp_path / "ground_truth_demo" / "testing_label_mask" / "1_label.mat"
    scipy.io.savemat(str(path), {"volLabel": np.zeros((16, 24, 7))})
    with pytest.raises(DatasetError, match=r"1_label\.mat: 'volLabel' must be a 1xN cell array, got float64 of shape \(16, 24, 7\)"):
        load("avenue", tmp_path)


def test_missing_mask_file_and_missing_gt(tmp_path, load):
    make_avenue(tmp_path, "official", "masks")
    (tmp_path / "ground_truth_demo" / "testing_label_mask" / "2_label.mat").unlink()
    with pytest.raises(DatasetError, match=r"test video '02' has no mask file .*2_label\.mat"):
        load("avenue", tmp_path)
    for p in (tmp_path / "ground_truth_demo" / "testing_label_mask").iterdir():
        p.unlink()
    (tmp_path / "ground_truth_demo" / "testing_label_mask").rmdir()
    with pytest.raises(DatasetError, match="avenue: no ground truth found"):
        load("avenue", tmp_path)


def test_mat_video_count_and_label_file(tmp_path, load):
    make_avenue(tmp_path, "frames", "mat")
    write_gt_mat(tmp_path / "avenue.mat", [[(1, 2)]])
    with pytest.raises(DatasetError, match=r"avenue\.mat: ground truth for 1 videos but the test split holds 2"):
        load("avenue", tmp_path)
    write_gt_mat(tmp_path / "gt" / "mine.mat", [[(1, 7)], []])
    ds = load("avenue", tmp_path, label_file="gt/mine.mat")
    assert [int(ds.labels(i).sum()) for i in range(2)] == [7, 0]


def test_unknown_layout(tmp_path, load):
    (tmp_path / "videos").mkdir()
    with pytest.raises(DatasetError, match="neither training_videos/"):
        load("avenue", tmp_path)
