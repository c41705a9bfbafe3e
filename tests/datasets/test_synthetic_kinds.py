"""The generated scene's static kinds (left_behind, fall), events.csv, and the default scene kept as it was."""
from __future__ import annotations

import csv
import hashlib

import cv2
import numpy as np
import pytest

from pyanomaly.datasets.synthetic import ANOMALY_KINDS, SyntheticDataset, check_generated, make_synthetic
from pyanomaly.errors import DatasetError


def _frames(root, video):
    return np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).astype(np.float64)
                     for p in sorted((root / "testing" / "frames" / video).glob("*.png"))])


def _rows(path):
    with open(path) as f:
        return list(csv.reader(f))


def test_the_default_scene_is_the_one_made_before_the_static_kinds(tmp_path):
    root = make_synthetic(tmp_path / "s", seed=3, size=32, num_train=1, num_test=4, frames_per_video=40)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.png")):
        h.update(str(p.relative_to(root)).encode())
        h.update(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).tobytes())
    h.update((root / "testing" / "labels.csv").read_bytes())
    # frames and labels of this generation, computed before left_behind and fall existed
    assert h.hexdigest() == "e2c0f8fdcfb14c5939a4df812c610c1471bc4c1401d8bae510531fdf614c40e6"
    assert _rows(root / "testing" / "events.csv") == [["video", "kind", "start", "end"], ["01", "fast", "9", "25"],
                                                      ["02", "wrong_way", "14", "24"], ["03", "large", "9", "27"],
                                                      ["04", "loiter", "9", "21"]]


@pytest.fixture(scope="module")
def static_scene(tmp_path_factory):
    # a nearly empty plaza (density 0.01: no crowd on screen), so only the event's walker moves
    root = tmp_path_factory.mktemp("static") / "s"
    return make_synthetic(root, seed=1, size=64, num_train=1, num_test=2, frames_per_video=120, density=0.01,
                          kinds=("left_behind", "fall"))


@pytest.mark.parametrize("video, kind", [("01", "left_behind"), ("02", "fall")])
def test_what_is_left_still_is_labelled_exactly_its_frames_and_does_not_change(static_scene, video, kind):
    events = _rows(static_scene / "testing" / "events.csv")
    labels = _rows(static_scene / "testing" / "labels.csv")
    assert events[0] == ["video", "kind", "start", "end"] and labels[0] == ["video", "start", "end"]
    # events.csv is labels.csv with each interval's kind
    assert [[v, s, e] for v, _, s, e in events[1:]] == labels[1:]
    (start, end), = [(int(s), int(e)) for v, k, s, e in events[1:] if v == video and k == kind]
    frames = _frames(static_scene, video)
    assert 20 <= start and end + 25 < len(frames)  # the generator's event window: some frames before and after
    # where the bag / the fallen body is: what is the same in the last labelled frame and 10 and 30 frames
    # before it, and differs from the next frame and from 25 frames later, where it is gone (picked up;
    # the walker got up and walked on). The walker, at 0.5 pixel a frame, is elsewhere in each.
    after = frames[end + 25]
    same = (np.abs(frames[end] - frames[end - 10]) < 20) & (np.abs(frames[end] - frames[end - 30]) < 20)
    region = same & (np.abs(frames[end] - frames[end + 1]) > 60) & (np.abs(frames[end] - after) > 60)
    ys, xs = np.nonzero(region)
    assert region.sum() >= 6
    if kind == "fall":  # the body lies along the ground: wider than tall
        assert np.ptp(xs) > 2 * np.ptp(ys)
    # every labelled frame shows it unchanged: sensor noise only (0.012 x 255 ~ 3 levels) around the
    # labelled frames' median
    still = np.median(frames[start:end + 1][:, region], axis=0)
    for t in range(start, end + 1):
        assert np.abs(frames[t][region] - still).mean() < 6, t
    # it is gone the frame after the event, and was not there before it (the walker then 10 pixels away)
    before = frames[start - 20]
    assert np.abs(after[region] - before[region]).mean() < 15
    assert np.abs(frames[end][region] - before[region]).mean() > 60
    assert np.abs(frames[end + 1][region] - frames[end][region]).mean() > 30


def test_unknown_kinds_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown anomaly kind.*'sit'"):
        make_synthetic(tmp_path / "s", kinds=("fall", "sit"))
    assert {"left_behind", "fall"} <= set(ANOMALY_KINDS)


def test_a_folder_made_with_other_arguments_is_refused_naming_them(tmp_path):
    root = make_synthetic(tmp_path / "s", seed=2, size=32, num_train=1, num_test=1, frames_per_video=40)
    same = dict(seed=2, size=32, num_train=1, num_test=1, frames_per_video=40)
    check_generated(root, same)  # the arguments it was made with
    with pytest.raises(DatasetError, match=r"kinds: folder \['fast'.*config \['fall'\].*README.txt.*DATASET.ROOT"):
        SyntheticDataset(root, generator={**same, "kinds": ["fall"]}, split="testing", cache_dir=None)
    with pytest.raises(DatasetError, match=r"size: folder 32, config 128"):
        check_generated(root, {"size": 128})
    check_generated(root, None)  # no generator named: the folder is taken as it is
    # a README of an older version records seed, size and kinds only: only those are compared
    (root / "README.txt").write_text("pyanomaly synthetic scene, seed=2, size=32, kinds=['fast', 'wrong_way', "
                                     "'large', 'loiter']\n")
    check_generated(root, {"seed": 2, "size": 32, "num_test": 9})
    with pytest.raises(DatasetError, match="unknown argument.*'sizes'"):
        check_generated(root, {"sizes": 32})
