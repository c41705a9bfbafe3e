"""Tiny fake datasets in each benchmark's published on-disk layout, for tests.

Every writer creates real files (.tif, .bmp, .jpg, .avi via ``cv2.VideoWriter`` with MJPG,
.mat via ``scipy.io.savemat``, .npy) with a handful of small frames, and returns the
expected per-frame labels ``{video name: (N,) uint8}`` of the test split (1 = anomalous).
Interval arguments are **1-based, inclusive** where the layout stores them that way (UCSD
``.m``, ``gt`` ``.mat``) and 0-based where it does (``labels.csv``).

Also the ``load`` fixture (import it into a test module): ``load(name, root, split, **kwargs)``
builds a registered dataset with tiny frames and a cache in ``tmp_path``.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from pyanomaly.registry import DATASETS, build

H, W = 16, 24  # frame size of every fake video (H, W)


@pytest.fixture
def load(tmp_path):
    """``load(name, root, split, **kwargs)``: a registered dataset, 8x8 gray frames, tmp cache."""
    def _load(name: str, root: Path, split: str = "testing", **kwargs):
        args = dict(type=name, root=str(root), split=split, clip_length=2, image_size=(8, 8),
                    cache_dir=str(tmp_path / "cache"))
        args.update(kwargs)
        return build(DATASETS, args)
    return _load


def frame(t: int, size: tuple[int, int] = (H, W), color: bool = False) -> np.ndarray:
    """A frame whose content changes with ``t``: uint8 (H, W) or (H, W, 3)."""
    h, w = size
    img = np.zeros((h, w), np.uint8)
    img[:, :] = 40
    x = (2 * t) % max(w - 4, 1)
    img[h // 4: h // 4 + 4, x: x + 4] = 220
    if color:
        img = np.stack([img, img // 2, 255 - img], axis=-1)
    return img


def write_frames(folder: Path, n: int, ext: str = ".jpg", digits: int = 3, first: int = 0,
                 size: tuple[int, int] = (H, W), color: bool = False, prefix: str = "") -> list[Path]:
    """``n`` frame files ``{prefix}{first:0{digits}d}{ext}`` ... in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t in range(n):
        path = folder / f"{prefix}{first + t:0{digits}d}{ext}"
        assert cv2.imwrite(str(path), frame(t, size, color)), path
        paths.append(path)
    return paths


def write_avi(path: Path, n: int, size: tuple[int, int] = (H, W), fps: float = 25.0) -> Path:
    """An MJPG .avi of ``n`` colour frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size[1], size[0]))
    assert writer.isOpened(), path
    for t in range(n):
        writer.write(frame(t, size, color=True))
    writer.release()
    return path


def labels_from_intervals(n: int, intervals: list[tuple[int, int]], one_based: bool = True) -> np.ndarray:
    labels = np.zeros(n, np.uint8)
    for s, e in intervals:
        s, e = (s - 1, e - 1) if one_based else (s, e)
        labels[s:e + 1] = 1
    return labels


def write_masks(folder: Path, labels: np.ndarray, ext: str = ".bmp", digits: int = 3,
                size: tuple[int, int] = (H, W)) -> None:
    """One mask image per frame: a small positive blob where ``labels`` is 1, else all zero."""
    folder.mkdir(parents=True, exist_ok=True)
    for t, lab in enumerate(labels):
        mask = np.zeros(size, np.uint8)
        if lab:
            mask[2:5, 3:6] = 255
        assert cv2.imwrite(str(folder / f"{t + 1:0{digits}d}{ext}"), mask)


def write_gt_mat(path: Path, intervals: list[list[tuple[int, int]]], key: str = "gt") -> Path:
    """A ``gt`` .mat: 1xV cell, per video a 2xK ``[start; end]`` array (1-based inclusive)."""
    cell = np.empty((1, len(intervals)), dtype=object)
    for v, iv in enumerate(intervals):
        cell[0, v] = np.array(iv, dtype=np.float64).T.reshape(2, -1) if iv else np.zeros((2, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {key: cell})
    return path


def write_vol_label(path: Path, labels: np.ndarray, size: tuple[int, int] = (H, W)) -> Path:
    """Avenue-style ``volLabel``: a 1xN cell of HxW masks."""
    cell = np.empty((1, len(labels)), dtype=object)
    for t, lab in enumerate(labels):
        mask = np.zeros(size, np.uint8)
        if lab:
            mask[1:3, 1:3] = 1
        cell[0, t] = mask
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"volLabel": cell})
    return path


def write_ucsd_m(path: Path, intervals: list[list[tuple[int, int]]], ped: int = 2) -> Path:
    """A UCSD ``.m`` file with one ``gt_frame`` line per test video (1-based inclusive)."""
    lines = [f"% UCSDped{ped} ground truth (fake)", "TestVideoFile = {};", ""]
    for iv in intervals:
        ranges = ", ".join(f"{s}:{e}" for s, e in iv)
        lines.append(f"TestVideoFile{{end+1}}.gt_frame = [{ranges}];")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# -- whole layouts -------------------------------------------------------------------------
def make_ucsd_official(root: Path, ped: int = 2, n_train: int = 2, lengths: tuple[int, ...] = (8, 6, 7),
                       intervals: tuple[list, ...] = ([(3, 8)], [(1, 2), (5, 6)], [(4, 5)]),
                       masks: tuple[bool, ...] = (True, True, True), write_m: bool = True) -> dict[str, np.ndarray]:
    """``root/UCSDpedN/{Train,Test}`` with .tif frames, ``_gt`` .bmp masks where ``masks[v]``
    and ``Test/UCSDpedN.m`` listing every video. Returns the expected test labels."""
    base = root / f"UCSDped{ped}"
    for v in range(n_train):
        write_frames(base / "Train" / f"Train{v + 1:03d}", 9, ext=".tif", first=1)
    expected = {}
    for v, (n, iv, has_mask) in enumerate(zip(lengths, intervals, masks)):
        name = f"Test{v + 1:03d}"
        write_frames(base / "Test" / name, n, ext=".tif", first=1)
        labels = labels_from_intervals(n, iv)
        if has_mask:
            write_masks(base / "Test" / f"{name}_gt", labels)
        expected[name] = labels
    if write_m:
        write_ucsd_m(base / "Test" / f"UCSDped{ped}.m", list(intervals), ped)
    return expected


def make_ucsd_frames(root: Path, ped: int = 2, n_train: int = 2, lengths: tuple[int, ...] = (8, 6, 7),
                     intervals: tuple[list, ...] = ([(3, 8)], [(1, 2), (5, 6)], [])) -> dict[str, np.ndarray]:
    """``root/{training,testing}/frames/NN/000.jpg`` and ``root/pedN.mat``."""
    for v in range(n_train):
        write_frames(root / "training" / "frames" / f"{v + 1:02d}", 9)
    expected = {}
    for v, (n, iv) in enumerate(zip(lengths, intervals)):
        write_frames(root / "testing" / "frames" / f"{v + 1:02d}", n)
        expected[f"{v + 1:02d}"] = labels_from_intervals(n, iv)
    write_gt_mat(root / f"ped{ped}.mat", list(intervals))
    return expected


def make_avenue(root: Path, variant: str = "official", gt: str = "masks", lengths: tuple[int, ...] = (7, 9),
                intervals: tuple[list, ...] = ([(2, 4)], [(1, 3), (6, 9)]), train_length: int = 8
                ) -> dict[str, np.ndarray]:
    """Avenue: ``variant`` "official" (.avi in ``*_videos/``) or "frames" (``*/frames/NN/0000.jpg``);
    ``gt`` "masks" (``ground_truth_demo/testing_label_mask/<n>_label.mat``) or "mat" (``avenue.mat``);
    two training videos of ``train_length`` frames."""
    for v in range(2):
        name = f"{v + 1:02d}"
        if variant == "official":
            write_avi(root / "training_videos" / f"{name}.avi", train_length)
        else:
            write_frames(root / "training" / "frames" / name, train_length, digits=4)
    expected = {}
    for v, (n, iv) in enumerate(zip(lengths, intervals)):
        name = f"{v + 1:02d}"
        if variant == "official":
            write_avi(root / "testing_videos" / f"{name}.avi", n)
        else:
            write_frames(root / "testing" / "frames" / name, n, digits=4)
        expected[name] = labels_from_intervals(n, iv)
        if gt == "masks":
            write_vol_label(root / "ground_truth_demo" / "testing_label_mask" / f"{v + 1}_label.mat", expected[name])
    if gt == "mat":
        write_gt_mat(root / "avenue.mat", list(intervals))
    return expected


def make_shanghaitech(root: Path, tests: dict[str, list[tuple[int, int]]] | None = None,
                      lengths: dict[str, int] | None = None, train_length: int = 8) -> dict[str, np.ndarray]:
    """``training/videos/*.avi`` (two of ``train_length`` frames), ``testing/frames/<scene>_<id>/*.jpg``,
    ``testing/test_frame_mask/<video>.npy``; ``tests`` maps video -> 0-based intervals."""
    tests = tests or {"01_0014": [(2, 4)], "01_0015": [], "02_0128": [(0, 6)]}
    lengths = lengths or {"01_0014": 8, "01_0015": 6, "02_0128": 7}
    for name in ("01_001", "02_001"):
        write_avi(root / "training" / "videos" / f"{name}.avi", train_length)
    expected = {}
    for name, iv in tests.items():
        n = lengths[name]
        write_frames(root / "testing" / "frames" / name, n)
        labels = labels_from_intervals(n, iv, one_based=False)
        (root / "testing" / "test_frame_mask").mkdir(parents=True, exist_ok=True)
        np.save(root / "testing" / "test_frame_mask" / f"{name}.npy", labels.astype(np.int64))
        expected[name] = labels
    return expected


def make_folder(root: Path) -> dict[str, np.ndarray]:
    """A user's folder dataset: .avi files and frame folders, ``testing/labels.csv`` (0-based)."""
    write_avi(root / "training" / "cam1.avi", 9)
    write_frames(root / "training" / "cam2", 8, ext=".png")
    write_avi(root / "testing" / "cam1.avi", 10)
    write_frames(root / "testing" / "cam2", 7, ext=".png")
    (root / "testing" / "labels.csv").write_text("video,start,end\ncam1,2,4\ncam1,8,9\n")
    return {"cam1": labels_from_intervals(10, [(2, 4), (8, 9)], one_based=False),
            "cam2": np.zeros(7, np.uint8)}
