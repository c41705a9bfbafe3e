"""A video's per-frame labels from its intervals and/or label array, checked against its length."""
from __future__ import annotations

import numpy as np
import pytest

from pyanomaly.datasets import DatasetError, VideoRecord
from pyanomaly.datasets.frame_labels import frame_labels


def test_intervals_labels_and_both():
    assert frame_labels(VideoRecord("a", [], intervals=[(1, 2), (4, 4)]), 6).tolist() == [0, 1, 1, 0, 1, 0]
    assert frame_labels(VideoRecord("b", [], labels=np.array([0, 0, 1, 0], np.int64)), 4).dtype == np.uint8
    both = VideoRecord("c", [], labels=np.array([1, 0, 0, 0, 0]), intervals=[(3, 4)])
    assert frame_labels(both, 5).tolist() == [1, 0, 0, 1, 1]
    assert frame_labels(VideoRecord("d", []), 5) is None


def test_cut_to_the_frames_read():
    rec = VideoRecord("a", [], labels=np.array([0, 1, 1, 0, 0, 1]), intervals=[(2, 5), (4, 5)])
    assert frame_labels(rec, 3, cut=True).tolist() == [0, 1, 1]  # (2, 5) cut, (4, 5) dropped
    with pytest.raises(DatasetError, match=r"video 'a': 3 frames but labels of shape \(6,\)"):
        frame_labels(rec, 3)  # not cut: the lengths must agree


def test_errors_name_the_video_and_its_file(tmp_path):
    with pytest.raises(DatasetError, match=r"video 'a' \(.*gt\.mat\): anomalous interval 3\.\.7 \(0-based, inclusive\) "
                                           r"does not fit its 5 frames"):
        frame_labels(VideoRecord("a", [], intervals=[(3, 7)], label_source=tmp_path / "gt.mat"), 5)
    with pytest.raises(DatasetError, match=r"video 'b': labels must be 0 or 1, found \[2\]"):
        frame_labels(VideoRecord("b", [], labels=np.array([0, 2, 1])), 3)
