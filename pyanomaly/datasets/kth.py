"""``kth``: the KTH human actions dataset, and ``motion_digits``, a generated set in its layout.

Schuldt, Laptev and Caputo, "Recognizing Human Actions: A Local SVM Approach", ICPR 2004.
Six actions by 25 persons in four scenarios (d1 outdoors, d2 outdoors with scale variation,
d3 outdoors in other clothes, d4 indoors), 160x120 gray videos at 25 fps. Layout (each
action's archive unpacked into a folder of its name)::

    kth/boxing/person01_boxing_d1_uncomp.avi ... kth/walking/person25_walking_d4_uncomp.avi

Splits follow the original person-based protocol: training persons 11-18, validation
19, 20, 21, 23, 24, 25, 01, 04, testing 22, 02, 03, 05-10 (``persons`` overrides it). Every
sample is a clip of its video with the video's class::

    {"frames": (T, C, H, W) float32 in [0, 1], "video": int, "frame": int, "target": int}

``target`` indexes :attr:`KTHDataset.classes`. Grayscale is ``channels=1``
(``DATASET.CHANNELS``). Training clips start every ``clip_stride`` frames; validation and
testing clips every ``eval_clip_stride`` (default: ``clip_length``, non-overlapping). Whole
videos are used (the ``sequences.txt`` subsequence bounds are not read), so a clip may show
the empty scene between two passes of a person.

``motion_digits`` writes (on first use) and reads a tree in the same layout whose six classes
are motions of a handwritten digit standing in for the actions: ``boxing`` a horizontal
back-and-forth jab, ``handclapping`` a pulsing size, ``handwaving`` a vertical oscillation,
and ``walking``, ``jogging``, ``running`` a horizontal drift (bouncing off the borders) at
about 1.4, 3.1 and 5.5 pixels per frame of the 160x120 video. Digit, position, direction and
phase are random, so only the motion tells the classes apart.

Example:
    >>> ds = KTHDataset("data/kth", split="testing", clip_length=16, image_size=(60, 80))
    >>> ds[0]["target"], ds.classes[ds[0]["target"]]
    (0, 'boxing')
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from pyanomaly.registry import DATASETS
from pyanomaly.utils import atomic_folder

from .base import DatasetError, VideoDataset, VideoRecord, generate_on_first_use
from .moving_digits import digit_sprites

logger = logging.getLogger(__name__)

ACTIONS = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
SPLIT_PERSONS = {
    "training": (11, 12, 13, 14, 15, 16, 17, 18),
    "validation": (19, 20, 21, 23, 24, 25, 1, 4),
    "testing": (22, 2, 3, 5, 6, 7, 8, 9, 10),
}
_FILE = re.compile(r"^person(\d+)_([a-z]+)_d(\d+)_uncomp\.avi$", re.IGNORECASE)


@DATASETS.register_module(name="kth")
class KTHDataset(VideoDataset):
    """KTH videos of one split as labelled clips (see the module docstring).

    Args:
        root, split, clip_length, image_size, channels, clip_stride, frame_step, cache_dir, max_frames:
            as for :class:`VideoDataset`; ``split`` is ``"training"``, ``"validation"`` or
            ``"testing"``.
        eval_clip_stride: step between clips of the validation and testing splits
            (default ``clip_length``).
        persons: ``{split: [person ids]}`` replacing the protocol's split for those splits.
    """

    splits = tuple(SPLIT_PERSONS)
    classes = ACTIONS

    def __init__(self, root, split: str = "training", clip_length: int = 10, image_size: Sequence[int] = (60, 80),
                 channels: int = 1, clip_stride: int = 1, frame_step: int = 1, cache_dir="",
                 eval_clip_stride: int | None = None, persons: dict | None = None, max_frames: int = 0):
        self.persons = {k: tuple(int(p) for p in v) for k, v in {**SPLIT_PERSONS, **(persons or {})}.items()}
        unknown = set(self.persons) - set(SPLIT_PERSONS)
        if unknown:
            raise DatasetError(f"kth: persons names unknown split(s) {sorted(unknown)}; splits: {self.splits}")
        shared = {p for k in self.persons for p in self.persons[k] if p in self.persons[split] and k != split}
        if shared:
            logger.warning("kth: persons %s are in split '%s' and in another split", sorted(shared), split)
        if split != "training":
            clip_stride = int(eval_clip_stride or clip_length)
        super().__init__(root, split, clip_length, image_size, channels, clip_stride, frame_step, cache_dir,
                         max_frames=max_frames)
        self.targets = [self.classes.index(rec.group) for rec in self.videos]

    def list_videos(self) -> list[VideoRecord]:
        missing = [a for a in self.classes if not (self.root / a).is_dir()]
        if missing:
            raise DatasetError(f"kth: {self.root} lacks the action folder(s) {missing}; expected one folder per "
                               f"action ({', '.join(self.classes)}) holding personNN_<action>_dN_uncomp.avi files")
        wanted = set(self.persons[self.split])
        everyone = {p for ps in self.persons.values() for p in ps}
        records, strangers = [], set()
        for action in self.classes:
            for path in sorted((self.root / action).iterdir()):
                if path.suffix.lower() != ".avi" or path.name.startswith("."):
                    continue
                match = _FILE.match(path.name)
                if match is None or match.group(2).lower() != action:
                    raise DatasetError(f"kth: {path} is not named person<NN>_{action}_d<N>_uncomp.avi")
                person = int(match.group(1))
                if person in wanted:
                    records.append(VideoRecord(path.stem, path, group=action))
                elif person not in everyone:
                    strangers.add(person)
        if strangers:
            logger.warning("kth: persons %s under %s belong to no split and are left out", sorted(strangers), self.root)
        return records

    def __getitem__(self, idx: int) -> dict:
        sample = super().__getitem__(idx)
        sample["target"] = self.targets[sample["video"]]
        return sample


# -- the generated six-way motion set ------------------------------------------------------
def _trajectory(action: str, rng: np.random.Generator, n: int, h: int, w: int, d: float):
    """Per frame the digit's centre ``(y, x)`` and scale for one motion class.

    Lengths are given for a 160-pixel-wide frame and scaled with ``w``.
    """
    u = w / 160.0
    t = np.arange(n, dtype=np.float64)
    phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(8, 12)
    wave = np.sin(2 * np.pi * t / period + phase)
    def centre(size: int, margin: float) -> float:
        lo, hi = d / 2 + margin * u, size - d / 2 - margin * u
        return rng.uniform(lo, hi) if hi > lo else size / 2
    cy, cx = centre(h, 12), centre(w, 14)
    y, x, scale = np.full(n, cy), np.full(n, cx), np.ones(n)
    if action == "boxing":
        x = cx + rng.uniform(9, 13) * u * wave
    elif action == "handwaving":
        y = cy + rng.uniform(9, 13) * u * wave
    elif action == "handclapping":
        scale = 1.0 + rng.uniform(0.25, 0.35) * wave
    else:  # horizontal drift at the class's speed, reflected at the borders
        speed = {"walking": (1.1, 1.7), "jogging": (2.6, 3.6), "running": (4.6, 6.4)}[action]
        lo, span = d / 2, max(w - d, 1.0)
        raw = cx - lo + rng.choice([-1, 1]) * rng.uniform(*speed) * u * t
        x = lo + span - np.abs(np.mod(raw, 2 * span) - span)
    return y, x, scale


def make_motion_digits(out: str | Path, seed: int = 0, persons: Sequence[int] = tuple(range(1, 26)),
                       scenarios: Sequence[int] = (1, 2, 3, 4), frames: int = 40, size: Sequence[int] = (120, 160),
                       digit_size: int = 48, fps: float = 25.0) -> Path:
    """Write the six-way motion-digits set in the KTH layout to ``out`` (atomically).

    One MJPG ``.avi`` per (action, person, scenario), ``frames`` gray frames of ``size =
    (H, W)``. Scenario ``dN`` sets the background: d1 dark, d2 dark with a larger digit, d3
    mid-gray, d4 textured. Deterministic given ``seed``.
    """
    out = Path(out)
    h, w = (int(s) for s in size)
    sprites, _ = digit_sprites(int(digit_size))
    rng = np.random.default_rng(seed)
    with atomic_folder(out, "README.txt") as tmp:
        for action in ACTIONS:
            (tmp / action).mkdir()
            for person in persons:
                for sc in scenarios:
                    sprite = sprites[rng.integers(len(sprites))]
                    base = 1.35 if sc == 2 else 1.0
                    y, x, scale = _trajectory(action, rng, frames, h, w, sprite.shape[0] * base)
                    if sc == 4:
                        bg = cv2.GaussianBlur(rng.uniform(0.1, 0.5, (h, w)).astype(np.float32), (0, 0), 3)
                    else:
                        bg = np.full((h, w), 0.45 if sc == 3 else 0.08, np.float32)
                    ink = rng.uniform(0.75, 1.0)
                    path = tmp / action / f"person{person:02d}_{action}_d{sc}_uncomp.avi"
                    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h), False)
                    for k in range(frames):
                        c = sprite.shape[0] / 2
                        s = base * scale[k]
                        m = np.float32([[s, 0, x[k] - s * c], [0, s, y[k] - s * c]])
                        mask = cv2.warpAffine(sprite, m, (w, h), flags=cv2.INTER_LINEAR)
                        img = bg * (1 - mask) + ink * mask + rng.normal(0, 0.02, (h, w))
                        writer.write((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
                    writer.release()
        (tmp / "README.txt").write_text(f"pyanomaly motion_digits (KTH layout), seed={seed}, frames={frames}, "
                                        f"size={h}x{w}; classes are digit motions, see pyanomaly/datasets/kth.py\n")
    return out


@DATASETS.register_module(name="motion_digits")
class MotionDigitsDataset(KTHDataset):
    """The generated six-way motion set, written at ``root`` on first use (:func:`make_motion_digits`).

    ``generator`` holds keyword arguments of :func:`make_motion_digits` (``DATASET.ARGS.generator``).
    """

    def __init__(self, root, *args, generator: dict | None = None, **kwargs):
        super().__init__(generate_on_first_use(root, "motion_digits", make_motion_digits, generator), *args, **kwargs)
