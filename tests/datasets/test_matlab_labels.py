"""Readers of UCSD .m files, frame-interval .mat files and Avenue volLabel masks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from fake_layouts import write_gt_mat, write_vol_label

from pyanomaly.datasets import DatasetError
from pyanomaly.datasets.matlab_labels import read_interval_mat, read_ucsd_m, read_vol_label, to_zero_based

PED2_MAT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ped2" / "ped2.mat"


def test_ucsd_m_forms(tmp_path):
    path = tmp_path / "UCSDped1.m"
    path.write_text(
        "TestVideoFile = {};\n"
        "% TestVideoFile{end+1}.gt_frame = [1:2];   commented out\n"
        "TestVideoFile{end+1}.gt_frame = [60:152];\n"
        "TestVideoFile{end+1}.gt_frame = [5:90, 140:200];  % two ranges\n"
        "TestVideoFile{end+1}.gt_frame = [1 : 4 9:10 12];\n"
        "TestVideoFile{4}.gt_frame = [];\n"
        "TestVideoFile{end+1}.gt_frame = 7:8;\n")
    got = read_ucsd_m(path)
    assert got == [[(60, 152)], [(5, 90), (140, 200)], [(1, 4), (9, 10), (12, 12)], [], [(7, 8)]]
    assert to_zero_based(got[1]) == [(4, 89), (139, 199)]


@pytest.mark.parametrize("text,match", [
    ("TestVideoFile{end+1}.gt_frame = [a:b];\n", r"line 1: cannot read the frame range 'a:b'"),
    ("TestVideoFile{end+1}.gt_frame = [0:5];\n", r"line 1: interval \[0:5\] needs 1 <= start <= end"),
    ("TestVideoFile{end+1}.gt_frame = [9:5];\n", r"interval \[9:5\]"),
    ("TestVideoFile{3}.gt_frame = [1:5];\n", r"no gt_frame entry for test video\(s\) \[1, 2\]"),
    ("nothing here\n", r"no 'TestVideoFile\{\.\.\.\}\.gt_frame"),
    ("TestVideoFile(1).gt_frame = [1:5];\n", r"line 1: cannot parse"),
])
def test_ucsd_m_errors(tmp_path, text, match):
    path = tmp_path / "UCSDped2.m"
    path.write_text(text)
    with pytest.raises(DatasetError, match=r"UCSDped2\.m.*" + match):
        read_ucsd_m(path)


def test_interval_mat_round_trip(tmp_path):
    intervals = [[(61, 180)], [(1, 10), (20, 30)], []]
    assert read_interval_mat(write_gt_mat(tmp_path / "gt.mat", intervals)) == intervals


def test_interval_mat_uint8_values_do_not_wrap(tmp_path):
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = np.array([[1], [255]], dtype=np.uint8)
    scipy.io.savemat(str(tmp_path / "gt.mat"), {"gt": cell})
    assert to_zero_based(read_interval_mat(tmp_path / "gt.mat")[0]) == [(0, 254)]


@pytest.mark.parametrize("value,match", [
    ("cell-kx2", r"'gt' entry 1 has shape \(3, 2\), expected 2xK \(transposed"),
    ("cell-3d", r"'gt' entry 1 has shape \(2, 1, 2\), expected 2xK"),
    ("numeric", r"'gt' must be a 1xN cell array, got float64 of shape \(2, 3\)"),
    ("cell-2d", r"'gt' must be a 1xN cell array, got object of shape \(2, 2\)"),
    ("fraction", r"'gt' entry 1 must hold whole frame numbers"),
])
def test_interval_mat_wrong_shapes(tmp_path, value, match):
    if value == "numeric":
        gt = np.zeros((2, 3))
    else:
        gt = np.empty((2, 2) if value == "cell-2d" else (1, 1), dtype=object)
        inner = {"cell-kx2": np.ones((3, 2)), "cell-3d": np.ones((2, 1, 2)), "cell-2d": np.ones((2, 1)),
                 "fraction": np.array([[1.5], [3.0]])}[value]
        for idx in np.ndindex(gt.shape):
            gt[idx] = inner
    scipy.io.savemat(str(tmp_path / "bad.mat"), {"gt": gt})
    with pytest.raises(DatasetError, match=r"bad\.mat: " + match):
        read_interval_mat(tmp_path / "bad.mat")


def test_mat_missing_key_missing_file_not_a_mat(tmp_path):
    scipy.io.savemat(str(tmp_path / "k.mat"), {"labels": np.zeros(3)})
    with pytest.raises(DatasetError, match=r"k\.mat: no variable 'gt' \(variables: labels\)"):
        read_interval_mat(tmp_path / "k.mat")
    with pytest.raises(DatasetError, match=r"label file not found: .*none\.mat"):
        read_interval_mat(tmp_path / "none.mat")
    (tmp_path / "junk.mat").write_bytes(b"this is not matlab")
    with pytest.raises(DatasetError, match=r"junk\.mat is not a readable MATLAB \.mat file"):
        read_interval_mat(tmp_path / "junk.mat")


def test_vol_label(tmp_path):
    labels = np.array([0, 1, 1, 0, 1], np.uint8)
    np.testing.assert_array_equal(read_vol_label(write_vol_label(tmp_path / "1_label.mat", labels)), labels)
    cell = np.empty((1, 2), dtype=object)
    cell[0, 0], cell[0, 1] = np.zeros((4, 4)), np.zeros((4, 4, 2))
    scipy.io.savemat(str(tmp_path / "bad.mat"), {"volLabel": cell})
    with pytest.raises(DatasetError, match=r"bad\.mat: 'volLabel' mask 2 has shape \(4, 4, 2\), expected a 2-D HxW mask"):
        read_vol_label(tmp_path / "bad.mat")


@pytest.mark.skipif(not PED2_MAT.is_file(), reason=f"real Ped2 ground truth not present at {PED2_MAT}")
def test_real_ped2_mat():
    gt = read_interval_mat(PED2_MAT)
    assert len(gt) == 12 and gt[0] == [(61, 180)] and gt[11] == [(88, 180)]
