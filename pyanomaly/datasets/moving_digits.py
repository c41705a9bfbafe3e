"""``moving_digits``: bouncing handwritten digits, the Moving-MNIST forecasting task.

After Srivastava et al. (ICML 2015) as used by Shi et al. (NeurIPS 2015): ``num_digits``
digits of ``digit_size`` pixels move inside a ``64 x 64`` frame, each in a random direction
at a random speed, bouncing off the borders; overlaps take the brighter pixel. A sequence has
``clip_length`` frames (20: 10 observed, 10 to forecast). The digits are scikit-learn's
bundled 8x8 handwritten digits (``sklearn.datasets.load_digits``, no download), upscaled
(bicubic) to ``digit_size``; the training split draws from the first 1500 of the 1797
images, validation and testing from the other 297, so forecasts are tested on unseen digits.

Nothing is written to disk: sequence ``i`` of a split is generated when asked for, from a
random generator seeded by ``(seed, split, i)``, so every split is deterministic, identical
across processes and runs, and as large as ``num_train`` / ``num_val`` / ``num_test`` say at
no storage cost. ``root`` is accepted (``DATASET.ROOT``) and unused.

Sample: ``{"frames": (T, C, H, W) float32 in [0, 1], "video": i, "frame": T - 1}``.

Example:
    >>> ds = MovingDigitsDataset(split="testing", num_test=100)
    >>> ds[0]["frames"].shape
    torch.Size([20, 1, 64, 64])
"""
from __future__ import annotations

import functools
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pyanomaly.registry import DATASETS

from .video import DatasetError, VideoInfo

_SPLIT_CODE = {"training": 0, "validation": 1, "testing": 2}
TRAIN_DIGITS = 1500  # images 0..1499 of load_digits train; the remaining 297 validate and test


@functools.lru_cache(maxsize=8)
def digit_sprites(size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 digits as float32 ``(1797, size, size)`` in [0, 1] and their labels."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    # a 1-pixel margin keeps the bicubic kernel from cutting strokes at the sprite's border
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    sprites = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_CUBIC) for im in padded])
    sprites = np.clip(sprites, 0.0, 1.0)
    sprites.setflags(write=False)
    return sprites, digits.target.copy()


def digit_pool(split: str, size: int = 28) -> np.ndarray:
    """The sprites a split draws from: training the first 1500, the other splits the rest."""
    sprites, _ = digit_sprites(size)
    return sprites[:TRAIN_DIGITS] if split == "training" else sprites[TRAIN_DIGITS:]


def bouncing_sequence(rng: np.random.Generator, sprites: np.ndarray, length: int, size: Sequence[int],
                      num_digits: int = 2, speed: Sequence[float] = (2.0, 5.0)) -> np.ndarray:
    """``length`` frames ``(T, H, W)`` float32 of ``num_digits`` sprites bouncing in a ``size`` frame."""
    h, w = (int(s) for s in size)
    d = sprites.shape[-1]
    if d > min(h, w):
        raise ValueError(f"digit_size {d} does not fit a {h}x{w} frame")
    frames = np.zeros((length, h, w), dtype=np.float32)
    lim = np.array([h - d, w - d], dtype=np.float64)
    for _ in range(num_digits):
        sprite = sprites[rng.integers(len(sprites))]
        pos = rng.uniform(0, 1, 2) * lim
        angle = rng.uniform(0, 2 * np.pi)
        vel = rng.uniform(*speed) * np.array([np.sin(angle), np.cos(angle)])
        for t in range(length):
            y, x = np.rint(pos).astype(int)
            np.maximum(frames[t, y:y + d, x:x + d], sprite, out=frames[t, y:y + d, x:x + d])
            pos = pos + vel
            for k in range(2):  # reflect off the borders
                if pos[k] < 0:
                    pos[k], vel[k] = -pos[k], -vel[k]
                elif pos[k] > lim[k]:
                    pos[k], vel[k] = 2 * lim[k] - pos[k], -vel[k]
    return frames


@DATASETS.register_module(name="moving_digits")
class MovingDigitsDataset(Dataset):
    """Bouncing-digit sequences, generated deterministically on access (see the module docstring).

    Args:
        root: unused (nothing is read or written).
        split: ``"training"``, ``"validation"`` or ``"testing"``.
        clip_length: frames per sequence (observed + forecast).
        image_size: ``(H, W)`` of the frames.
        channels: 1, or 3 (the gray frame repeated).
        clip_stride, frame_step, cache_dir: accepted for the common dataset arguments; unused.
        num_digits: digits per sequence.
        digit_size: side of a digit in pixels.
        speed: ``(min, max)`` speed in pixels per frame, drawn uniformly per digit.
        num_train, num_val, num_test: sequences in each split.
        seed: selects the whole dataset.
    """

    splits = tuple(_SPLIT_CODE)

    def __init__(self, root: str = "", split: str = "training", clip_length: int = 20,
                 image_size: Sequence[int] = (64, 64), channels: int = 1, clip_stride: int = 1,
                 frame_step: int = 1, cache_dir=None, num_digits: int = 2, digit_size: int = 28,
                 speed: Sequence[float] = (2.0, 5.0), num_train: int = 10000, num_val: int = 1000,
                 num_test: int = 1000, seed: int = 0):
        if split not in _SPLIT_CODE:
            raise DatasetError(f"moving_digits: split must be one of {self.splits}, got {split!r}")
        if channels not in (1, 3):
            raise DatasetError(f"moving_digits: channels must be 1 or 3, got {channels}")
        if len(speed) != 2 or not 0 <= speed[0] <= speed[1]:
            raise DatasetError(f"moving_digits: speed must be (min, max) with 0 <= min <= max, got {speed}")
        self.split, self.clip_length = split, int(clip_length)
        self.image_size = tuple(int(s) for s in image_size)
        self.channels, self.num_digits, self.seed = int(channels), int(num_digits), int(seed)
        self.speed = (float(speed[0]), float(speed[1]))
        self.sprites = digit_pool(split, int(digit_size))
        if int(digit_size) > min(self.image_size):
            raise DatasetError(f"moving_digits: digit_size {digit_size} does not fit image_size {self.image_size}")
        self.count = int({"training": num_train, "validation": num_val, "testing": num_test}[split])
        if self.count < 1:
            raise DatasetError(f"moving_digits: the '{split}' split needs at least one sequence")
        self.names = [f"seq{i:05d}" for i in range(self.count)]
        self.videos = self.names  # what the engine and tools/prepare_data.py count
        self.lengths = [self.clip_length] * self.count
        self.groups = None

    def __len__(self) -> int:
        return self.count

    def sequence(self, i: int) -> np.ndarray:
        """Sequence ``i`` as float32 ``(T, H, W)`` in [0, 1]."""
        if not 0 <= i < self.count:
            raise IndexError(f"moving_digits '{self.split}' has {self.count} sequences, asked for {i}")
        rng = np.random.default_rng([self.seed, _SPLIT_CODE[self.split], i])
        return bouncing_sequence(rng, self.sprites, self.clip_length, self.image_size, self.num_digits, self.speed)

    def video_frames(self, i: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Frames ``start:stop`` of sequence ``i``: ``(n, C, H, W)`` float32 in [0, 1]."""
        frames = torch.from_numpy(self.sequence(i)[start:stop]).unsqueeze(1)
        return frames.expand(-1, self.channels, -1, -1).contiguous() if self.channels == 3 else frames

    def info(self, i: int) -> VideoInfo:
        """Size of the generated frames (no frame rate)."""
        return VideoInfo(self.image_size[0], self.image_size[1], None)

    def labels(self, i: int) -> None:
        """No anomaly labels: a forecasting dataset."""
        return None

    def __getitem__(self, i: int) -> dict:
        return {"frames": self.video_frames(int(i)), "video": int(i), "frame": self.clip_length - 1}
