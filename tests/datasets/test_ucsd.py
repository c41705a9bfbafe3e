"""``ped1`` / ``ped2`` in the official UCSD tree and in the frame-folder layout."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from fake_layouts import load  # noqa: F401 (a fixture)
from fake_layouts import make_ucsd_frames, make_ucsd_official, write_frames, write_gt_mat, write_masks, write_ucsd_m

from pyanomaly.datasets import DatasetError, Ped1Dataset, Ped2Dataset


def _check(ds, expected):
    assert ds.names == list(expected)
    assert ds.lengths == [len(v) for v in expected.values()]
    for i, labels in enumerate(expected.values()):
        np.testing.assert_array_equal(ds.labels(i), labels)
        assert ds.labels(i).dtype == np.uint8


@pytest.mark.parametrize("nested", [True, False])
def test_official_ped2_masks(tmp_path, load, nested):
    expected = make_ucsd_official(tmp_path)
    root = tmp_path if nested else tmp_path / "UCSDped2"  # the archive folder or UCSDped2 itself
    ds = load("ped2", root)
    assert isinstance(ds, Ped2Dataset)
    _check(ds, expected)  # the _gt folders are not taken as videos
    assert all(r.label_source.name.endswith("_gt") for r in ds.videos)
    train = load("ped2", root, "training")
    assert train.names == ["Train001", "Train002"] and train.lengths == [9, 9]
    assert train.labels(0) is None
    assert ds.video_frames(0).shape == (8, 1, 8, 8)


def test_official_masks_win_over_m_file(tmp_path, load):
    expected = make_ucsd_official(tmp_path, write_m=False)
    write_ucsd_m(tmp_path / "UCSDped2" / "Test" / "UCSDped2.m", [[(1, 1)], [(1, 1)], [(1, 1)]])
    _check(load("ped2", tmp_path), expected)


def test_official_ped1_partial_masks_use_m_intervals(tmp_path, load):
    expected = make_ucsd_official(tmp_path, ped=1, masks=(False, True, False),
                                  intervals=([(1, 3), (6, 8)], [(2, 2)], [(4, 7)]))
    ds = load("ped1", tmp_path)
    assert isinstance(ds, Ped1Dataset)
    _check(ds, expected)
    assert ds.videos[0].label_source.name == "UCSDped1.m"
    assert ds.videos[1].label_source.name == "Test002_gt"


def test_official_mask_count_mismatch(tmp_path, load):
    make_ucsd_official(tmp_path)
    (tmp_path / "UCSDped2" / "Test" / "Test002_gt" / "006.bmp").unlink()
    with pytest.raises(DatasetError, match=r"Test002.*6 frames but 5 masks"):
        load("ped2", tmp_path)


def test_official_missing_m_file(tmp_path, load):
    make_ucsd_official(tmp_path, masks=(True, False, True), write_m=False)
    with pytest.raises(DatasetError, match=r"Test002.*no pixel masks.*UCSDped2\.m"):
        load("ped2", tmp_path)


def test_official_m_file_wrong_count(tmp_path, load):
    make_ucsd_official(tmp_path, masks=(False, False, False), write_m=False)
    write_ucsd_m(tmp_path / "UCSDped2" / "Test" / "UCSDped2.m", [[(1, 2)], [(1, 2)]])
    with pytest.raises(DatasetError, match=r"UCSDped2\.m: 2 gt_frame entries but .* 3 test videos"):
        load("ped2", tmp_path)


def test_official_m_interval_beyond_video(tmp_path, load):
    make_ucsd_official(tmp_path, masks=(False, False, False), intervals=([(3, 8)], [(1, 7)], [(4, 5)]))
    with pytest.raises(DatasetError, match=r"'Test002'.*UCSDped2\.m.*0\.\.6.*6 frames"):
        load("ped2", tmp_path)


def test_frame_folders_multi_interval_mat(tmp_path, load):
    expected = make_ucsd_frames(tmp_path)
    ds = load("ped2", tmp_path)
    _check(ds, expected)
    assert expected["02"].tolist() == [1, 1, 0, 0, 1, 1]  # two intervals of one video
    assert expected["03"].sum() == 0  # an empty entry: no anomaly
    assert load("ped2", tmp_path, "training").names == ["01", "02"]


def test_frame_folders_ped1_and_label_file_override(tmp_path, load):
    make_ucsd_frames(tmp_path, ped=1)
    write_gt_mat(tmp_path / "other.mat", [[(1, 1)], [(2, 2)], [(3, 3)]])
    ds = load("ped1", tmp_path, label_file="other.mat")
    assert [int(np.flatnonzero(ds.labels(i))[0]) for i in range(3)] == [0, 1, 2]
    write_ucsd_m(tmp_path / "UCSDped1.m", [[(2, 3)], [], [(1, 7)]], ped=1)
    ds = load("ped1", tmp_path, label_file="UCSDped1.m")  # a .m next to frame folders also works
    assert [int(ds.labels(i).sum()) for i in range(3)] == [2, 0, 7]


def test_frame_folders_mat_video_count(tmp_path, load):
    make_ucsd_frames(tmp_path)
    write_gt_mat(tmp_path / "ped2.mat", [[(1, 2)], [(1, 2)]])
    with pytest.raises(DatasetError, match=r"ped2\.mat: ground truth for 2 videos but .* holds 3 test videos"):
        load("ped2", tmp_path)


def test_frame_folders_shifted_mat_beyond_length(tmp_path, load):
    make_ucsd_frames(tmp_path)
    write_gt_mat(tmp_path / "ped2.mat", [[(3, 9)], [(1, 2)], []])  # video 01 has 8 frames
    with pytest.raises(DatasetError, match=r"video '01' \(.*ped2\.mat\).*2\.\.8.*8 frames"):
        load("ped2", tmp_path)


def test_frame_folders_missing_mat(tmp_path, load):
    make_ucsd_frames(tmp_path)
    (tmp_path / "ped2.mat").unlink()
    with pytest.raises(DatasetError, match=r"ped2: ground truth .*ped2\.mat not found"):
        load("ped2", tmp_path)
    load("ped2", tmp_path, "training")  # the training split needs no ground truth


def test_unknown_split(tmp_path, load):
    make_ucsd_frames(tmp_path)
    with pytest.raises(DatasetError, match=r"Ped2Dataset: split must be one of \('training', 'testing'\), got 'val'"):
        load("ped2", tmp_path, "val")


def test_unknown_layout(tmp_path, load):
    (tmp_path / "something").mkdir()
    with pytest.raises(DatasetError, match="neither the official UCSD layout"):
        load("ped2", tmp_path)


def test_frame_gap_and_empty_video(tmp_path, load):
    make_ucsd_frames(tmp_path)
    (tmp_path / "testing" / "frames" / "02" / "003.jpg").unlink()
    with pytest.raises(DatasetError, match=r"video '02'.*002\.jpg is followed by 004\.jpg \(1 frame\(s\) missing\)"):
        load("ped2", tmp_path)
    shutil.rmtree(tmp_path / "testing" / "frames" / "02")
    (tmp_path / "testing" / "frames" / "02").mkdir()
    with pytest.raises(DatasetError, match=r"frames[/\\]02 holds no image files"):
        load("ped2", tmp_path)


def test_mixed_sizes_and_unreadable_frame(tmp_path, load):
    make_ucsd_frames(tmp_path)
    write_frames(tmp_path / "testing" / "frames" / "01", 1, first=4, size=(20, 30))
    with pytest.raises(DatasetError, match=r"video '01'.*004\.jpg is 30x20.*16 \(mixed frame sizes\)"):
        load("ped2", tmp_path)
    write_frames(tmp_path / "testing" / "frames" / "01", 1, first=4)
    (tmp_path / "testing" / "frames" / "01" / "005.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match=r"video '01': unreadable frame file .*005\.jpg"):
        load("ped2", tmp_path)


def test_mask_folder_gap(tmp_path, load):
    make_ucsd_official(tmp_path)
    gt = tmp_path / "UCSDped2" / "Test" / "Test001_gt"
    (gt / "004.bmp").rename(gt / "009.bmp")
    with pytest.raises(DatasetError, match=r"Test001_gt.*003\.bmp is followed by 005\.bmp"):
        load("ped2", tmp_path)
    write_masks(gt, np.zeros(8, np.uint8))  # rewrite 001..008 (009 stays): 9 masks for 8 frames
    with pytest.raises(DatasetError, match=r"Test001.*8 frames but 9 masks"):
        load("ped2", tmp_path)
