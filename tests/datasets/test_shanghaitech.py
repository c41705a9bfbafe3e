"""``shanghaitech``: training videos, test frame folders, test_frame_mask .npy labels, scenes."""
from __future__ import annotations

import numpy as np
import pytest

from fake_layouts import load  # noqa: F401 (a fixture)
from fake_layouts import make_shanghaitech, write_frames

from pyanomaly.datasets import DatasetError, ShanghaiTechDataset


def test_layout_labels_and_groups(tmp_path, load):
    expected = make_shanghaitech(tmp_path)
    ds = load("shanghaitech", tmp_path)
    assert isinstance(ds, ShanghaiTechDataset)
    assert ds.names == ["01_0014", "01_0015", "02_0128"] and ds.lengths == [8, 6, 7]
    assert ds.groups == ["01", "01", "02"]
    for i, labels in enumerate(expected.values()):
        np.testing.assert_array_equal(ds.labels(i), labels)
    train = load("shanghaitech", tmp_path, "training")
    assert train.names == ["01_001", "02_001"] and train.groups == ["01", "02"]
    assert train.lengths == [8, 8] and train.labels(0) is None


def test_groups_default_none(tmp_path, load):
    write_frames(tmp_path / "training" / "a", 4)  # VideoDataset.groups is None unless a dataset sets groups
    assert load("folder", tmp_path, "training").groups is None


def test_training_frame_folders_accepted(tmp_path, load):
    make_shanghaitech(tmp_path)
    for p in (tmp_path / "training" / "videos").iterdir():
        p.unlink()
    (tmp_path / "training" / "videos").rmdir()
    write_frames(tmp_path / "training" / "frames" / "03_001", 5)
    assert load("shanghaitech", tmp_path, "training").names == ["03_001"]


def test_label_length_mismatch(tmp_path, load):
    make_shanghaitech(tmp_path)
    np.save(tmp_path / "testing" / "test_frame_mask" / "01_0015.npy", np.zeros(5, np.int64))
    with pytest.raises(DatasetError, match=r"video '01_0015' \(.*01_0015\.npy\): 6 frames but labels of shape \(5,\)"):
        load("shanghaitech", tmp_path)


@pytest.mark.parametrize("bad,match", [(np.zeros((6, 1)), r"shape \(6, 1\), expected \(N,\)"),
                                       (np.full(6, 2), r"must hold 0 or 1, found \[2\]")])
def test_label_file_wrong_shape_or_values(tmp_path, load, bad, match):
    make_shanghaitech(tmp_path)
    np.save(tmp_path / "testing" / "test_frame_mask" / "01_0015.npy", bad)
    with pytest.raises(DatasetError, match=r"01_0015\.npy: frame mask .*" + match):
        load("shanghaitech", tmp_path)


def test_missing_label_file_and_folder(tmp_path, load):
    make_shanghaitech(tmp_path)
    (tmp_path / "testing" / "test_frame_mask" / "02_0128.npy").unlink()
    with pytest.raises(DatasetError, match=r"test video '02_0128' has no label file .*02_0128\.npy"):
        load("shanghaitech", tmp_path)
    for p in (tmp_path / "testing" / "test_frame_mask").iterdir():
        p.unlink()
    (tmp_path / "testing" / "test_frame_mask").rmdir()
    with pytest.raises(DatasetError, match=r"ground-truth folder .*test_frame_mask not found"):
        load("shanghaitech", tmp_path)


def test_missing_split_folder(tmp_path, load):
    (tmp_path / "testing").mkdir()
    with pytest.raises(DatasetError, match=r"shanghaitech: missing .*videos or .*frames"):
        load("shanghaitech", tmp_path, "training")


def test_mask_folder_at_root_or_label_file(tmp_path, load):
    expected = make_shanghaitech(tmp_path)
    (tmp_path / "testing" / "test_frame_mask").rename(tmp_path / "test_frame_mask")
    np.testing.assert_array_equal(load("shanghaitech", tmp_path).labels(2), expected["02_0128"])
    (tmp_path / "test_frame_mask").rename(tmp_path / "gt")
    np.testing.assert_array_equal(load("shanghaitech", tmp_path, label_file="gt").labels(0), expected["01_0014"])
