"""``synthetic``: a generated surveillance scene with exactly labelled anomalies.

A fixed camera looks at a textured plaza crossed by pedestrians who walk left to right
along a few lanes at walking speed, with sensor noise. Training videos hold only that.
Each test video adds anomalous events, one kind per event:

* ``fast``: a small object crossing far faster than any walker (a cyclist, a car);
* ``wrong_way``: a walker going right to left, against the flow;
* ``large``: an object of unusual size and shape (a cart, a vehicle) moving through;
* ``loiter``: a walker who stops and wanders back and forth in place;
* ``left_behind``: a walker carrying a bag sets it down and walks on; the bag stays still on
  the ground until the event ends (it is picked up) or the video ends;
* ``fall``: a walker falls (the body turns horizontal) and lies still until the event ends
  (the walker gets up and walks on) or the video ends.

The last two are static: once they start nothing anomalous moves, so next-frame prediction
(copying the last frame) predicts them perfectly. They are not in the default ``kinds``
(:func:`make_synthetic`), so the default scene is the same as before they existed.

A frame is anomalous exactly when part of an anomalous object is inside it (for
``left_behind`` the bag once set down, not while carried; for ``fall`` the fallen body).
Everything is deterministic given the seed. The files follow the frame-folder layout of real
benchmarks::

    training/frames/01/000.png ...    testing/frames/01/000.png ...
    testing/labels.csv                (video,start,end; 0-based inclusive intervals)
    testing/events.csv                (video,kind,start,end: the same intervals, each with its kind)
    README.txt                        the generator's arguments (checked when the folder is reused)

Example:
    >>> from pyanomaly.datasets.synthetic import make_synthetic
    >>> make_synthetic("data/synthetic", seed=0)
"""
from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pyanomaly.registry import DATASETS
from pyanomaly.utils import atomic_folder

from .base import DatasetError, generate_on_first_use
from .folder import FolderDataset

ANOMALY_KINDS = ("fast", "wrong_way", "large", "loiter", "left_behind", "fall")
DEFAULT_KINDS = ("fast", "wrong_way", "large", "loiter")  # the scene of every recipe and result so far


@dataclass
class _Mover:
    """An object drawn as a soft ellipse (body) plus, for people, a head."""

    x: float
    y: float
    vx: float
    half_w: float
    half_h: float
    shade: float
    person: bool = True
    anomaly: bool = False
    phase: float = 0.0
    loiter_x: float | None = None  # loiterers oscillate around this x

    def position(self, t: int) -> tuple[float, float]:
        if self.loiter_x is not None:
            return self.loiter_x + 12.0 * np.sin(0.07 * t + self.phase), self.y + 2.0 * np.sin(0.13 * t)
        bob = 0.6 * np.sin(0.5 * t + self.phase) if self.person else 0.0
        return self.x + self.vx * t, self.y + bob


def _soft_ellipse(xx, yy, cx, cy, ax, ay):
    r = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
    return np.clip((1.0 - r) * max(ax, ay) + 0.5, 0.0, 1.0)  # ~1 px anti-aliased edge


class _Scene:
    def __init__(self, size: int, rng: np.random.Generator):
        self.size = size
        self.rng = rng
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self.xx, self.yy = xx, yy
        # Textured static background: smooth blobs + fine texture + paved lanes.
        low = cv2.resize(rng.random((8, 8)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        fine = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 1.0)
        bg = 0.45 + 0.25 * (low - 0.5) + 0.12 * (fine - 0.5)
        self.lanes = [size * f for f in (0.3, 0.5, 0.7)]
        for y in self.lanes:
            bg += 0.08 * (np.abs(yy - y) < size * 0.06)
        bg[:, :: max(size // 8, 2)] -= 0.04  # paving joints
        self.background = np.clip(bg, 0.0, 1.0)

    def walker(self, x0: float, direction: float = 1.0) -> _Mover:
        s, rng = self.size, self.rng
        return _Mover(x=x0, y=self.rng.choice(self.lanes) + rng.uniform(-2, 2) * s / 128,
                      vx=direction * rng.uniform(0.8, 1.2) * s / 128,
                      half_w=2.5 * s / 128, half_h=6.0 * s / 128,
                      shade=rng.choice([rng.uniform(0.05, 0.2), rng.uniform(0.8, 0.95)]),
                      phase=rng.uniform(0, 2 * np.pi))

    def render(self, movers: list[_Mover], t: int) -> tuple[np.ndarray, bool]:
        img = self.background.copy()
        anomalous = False
        s = self.size
        for m in movers:
            cx, cy = m.position(t)
            if cx + m.half_w < 0 or cx - m.half_w > s - 1 or cy + m.half_h < 0 or cy - m.half_h > s - 1:
                continue
            mask = _soft_ellipse(self.xx, self.yy, cx, cy, m.half_w, m.half_h)
            if m.person:
                mask = np.maximum(mask, _soft_ellipse(self.xx, self.yy, cx, cy - m.half_h - 1.5 * s / 128,
                                                      1.6 * s / 128, 1.6 * s / 128))
            if mask.max() > 0.05:
                anomalous |= m.anomaly
            img = img * (1.0 - mask) + m.shade * mask
        img = img + self.rng.normal(0.0, 0.012, img.shape)
        return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), anomalous


def _normal_crowd(scene: _Scene, num_frames: int, density: float) -> list[_Mover]:
    """Walkers entering from the left at random times, some already on screen at t=0."""
    rng, s = scene.rng, scene.size
    movers = []
    t = -int(s / (s / 128))  # start early so the scene is populated at t = 0
    while t < num_frames:
        m = scene.walker(0.0)
        m.x = -m.half_w - m.vx * t  # enters at the left edge at time t
        movers.append(m)
        t += max(1, int(rng.integers(14, 34) / density))
    return movers


def _anomaly(scene: _Scene, kind: str, start: int, stop: int, num_frames: int) -> list[tuple[_Mover, int, int]]:
    """The movers of one event, each with the frames ``[a, b)`` it is drawn in."""
    rng, s = scene.rng, scene.size
    if kind == "fast":
        vx = rng.uniform(5.0, 7.0) * s / 128
        return [(_Mover(x=-4 * s / 128 - vx * start, y=rng.choice(scene.lanes), vx=vx, half_w=5 * s / 128,
                        half_h=3 * s / 128, shade=rng.uniform(0.05, 0.15), person=False, anomaly=True), start, stop)]
    if kind == "wrong_way":
        m = scene.walker(0.0, direction=-1.0)
        m.x = s + m.half_w - m.vx * start
        m.anomaly = True
        return [(m, start, stop)]
    if kind == "large":
        vx = rng.uniform(0.9, 1.3) * s / 128
        hw = 14 * s / 128
        return [(_Mover(x=-hw - vx * start, y=rng.choice(scene.lanes), vx=vx, half_w=hw, half_h=9 * s / 128,
                        shade=rng.uniform(0.8, 0.95), person=False, anomaly=True), start, stop)]
    if kind == "loiter":
        m = scene.walker(0.0)
        m.loiter_x = rng.uniform(0.3, 0.7) * s
        m.anomaly = True
        return [(m, start, stop)]
    if kind in ("left_behind", "fall"):
        return _static_event(scene, kind, start, stop, num_frames)
    raise ValueError(f"unknown anomaly kind '{kind}'; known: {ANOMALY_KINDS}")


def _static_event(scene: _Scene, kind: str, start: int, stop: int, num_frames: int) -> list[tuple[_Mover, int, int]]:
    """A walker who reaches ``x_at`` at frame ``start``: there it sets a bag down (``left_behind``)
    or falls (``fall``); the bag or the fallen body stays still until ``stop``, then the walker
    (who fell) walks on from there. Only what stays still is anomalous."""
    rng, s = scene.rng, scene.size
    walker = scene.walker(0.0)
    x_at = rng.uniform(0.3, 0.7) * s
    walker.x = x_at - walker.vx * start
    feet = walker.y + walker.half_h  # ground level of the walker's lane
    if kind == "left_behind":
        hw, hh = 4.0 * s / 128, 3.5 * s / 128
        shade = rng.choice([rng.uniform(0.05, 0.15), rng.uniform(0.85, 0.95)])
        dx = -(walker.half_w + hw)  # pulled behind the walker, at its feet: set down, it is walked away from
        carried = _Mover(x=walker.x + dx, y=feet - hh, vx=walker.vx, half_w=hw, half_h=hh, shade=shade,
                         person=False)
        bag = _Mover(x=x_at + dx, y=feet - hh, vx=0.0, half_w=hw, half_h=hh, shade=shade, person=False,
                     anomaly=True)
        return [(walker, 0, num_frames), (carried, 0, start), (bag, start, stop)]
    # fall: the body lies along the lane, head forward, its lower side on the ground
    head = 1.6 * s / 128
    body = _Mover(x=x_at, y=feet - walker.half_w, vx=0.0, half_w=walker.half_h, half_h=walker.half_w,
                  shade=walker.shade, person=False, anomaly=True)
    face = _Mover(x=x_at + walker.half_h + 1.5 * s / 128, y=feet - walker.half_w, vx=0.0, half_w=head,
                  half_h=head, shade=walker.shade, person=False, anomaly=True)
    up = _Mover(x=x_at - walker.vx * stop, y=walker.y, vx=walker.vx, half_w=walker.half_w, half_h=walker.half_h,
                shade=walker.shade, phase=walker.phase)
    return [(walker, 0, start), (body, start, stop), (face, start, stop), (up, stop, num_frames)]


def _render_video(scene: _Scene, num_frames: int, events: list[tuple[str, int, int]],
                  density: float) -> tuple[list[np.ndarray], np.ndarray]:
    crowd = _normal_crowd(scene, num_frames, density)
    anomalies = [part for kind, start, stop in events for part in _anomaly(scene, kind, start, stop, num_frames)]
    frames, labels = [], np.zeros(num_frames, dtype=np.uint8)
    for t in range(num_frames):
        active = crowd + [m for m, a, b in anomalies if a <= t < b]
        img, anomalous = scene.render(active, t)
        frames.append(img)
        labels[t] = anomalous
    return frames, labels


def make_synthetic(out: str | Path, seed: int = 0, size: int = 128, num_train: int = 8,
                   num_test: int = 6, frames_per_video: int = 150, density: float = 1.0,
                   kinds: tuple[str, ...] = DEFAULT_KINDS) -> Path:
    """Write the generated dataset to ``out`` (atomically: a folder appears complete or not at all).

    Args:
        out: destination folder (must not exist or be empty).
        seed: makes the whole dataset reproducible.
        size: frame side in pixels (frames are square, grayscale PNG).
        num_train, num_test: number of videos per split.
        frames_per_video: frames of every video.
        density: pedestrian density (1.0 = about 4 people on screen).
        kinds: anomaly kinds used, cycled over test videos (see module docstring); the
            default leaves out the static kinds ``left_behind`` and ``fall``.
    """
    out = Path(out)
    unknown = set(kinds) - set(ANOMALY_KINDS)
    if unknown:
        raise ValueError(f"unknown anomaly kind(s) {sorted(unknown)}; known: {ANOMALY_KINDS}")
    if frames_per_video < 40:
        raise ValueError(f"frames_per_video must be >= 40 to hold normal and anomalous parts, got {frames_per_video}")
    rng = np.random.default_rng(seed)
    scene = _Scene(size, rng)
    arguments = dict(seed=seed, size=size, kinds=list(kinds), num_train=num_train, num_test=num_test,
                     frames_per_video=frames_per_video, density=density)
    with atomic_folder(out, "testing/labels.csv") as tmp:
        rows, event_rows = [], []
        for split, count in (("training", num_train), ("testing", num_test)):
            for v in range(count):
                name = f"{v + 1:02d}"
                events = []
                if split == "testing":
                    n = frames_per_video
                    kind = kinds[v % len(kinds)]
                    start = int(rng.integers(n // 5, n // 3))
                    events.append((kind, start, start + int(rng.integers(n // 4, n // 2))))
                frames, labels = _render_video(scene, frames_per_video, events, density)
                folder = tmp / split / "frames" / name
                folder.mkdir(parents=True)
                for t, img in enumerate(frames):
                    cv2.imwrite(str(folder / f"{t:03d}.png"), img)
                if split == "testing":
                    intervals = _intervals(labels)
                    rows += [f"{name},{a},{b}" for a, b in intervals]
                    # one event per test video: its labelled frames are the event's
                    event_rows += [f"{name},{events[0][0]},{a},{b}" for a, b in intervals]
        (tmp / "testing" / "labels.csv").write_text("video,start,end\n" + "".join(r + "\n" for r in rows))
        (tmp / "testing" / "events.csv").write_text("video,kind,start,end\n" + "".join(r + "\n" for r in event_rows))
        (tmp / "README.txt").write_text(
            "pyanomaly synthetic scene, " + ", ".join(f"{k}={v}" for k, v in arguments.items()) + "\n")
    return out


def check_generated(root: Path, generator: dict | None) -> None:
    """Refuse a generated folder made with other values of the arguments ``generator`` names
    (``DATASET.ARGS.generator``) than it gives, as the folder's ``README.txt`` records them.

    Only the arguments named are compared: without ``generator`` any generated folder is taken
    as it is (a scene made by ``tools/make_synthetic.py`` with its own options, say). A README
    of an older version records seed, size and kinds only; the other arguments are not checked.
    """
    known = [k for k in inspect.signature(make_synthetic).parameters if k != "out"]
    unknown = sorted(set(generator or {}) - set(known))
    if unknown:
        raise DatasetError(f"DATASET.ARGS.generator: unknown argument(s) {unknown}; make_synthetic takes "
                           f"{', '.join(known)}")
    readme = Path(root) / "README.txt"
    if not generator or not readme.is_file():
        return
    recorded = dict(re.findall(r"(\w+)=(\[[^\]]*\]|[^,\s]+)", readme.read_text()))
    wanted = {k: list(v) if k == "kinds" else v for k, v in generator.items()}
    differ = [f"{k}: folder {recorded[k]}, config {wanted[k]}" for k in wanted
              if k in recorded and _literal(recorded[k]) != wanted[k]]
    if differ:
        raise DatasetError(f"{root} was generated with other arguments than DATASET.ARGS.generator asks "
                           f"({'; '.join(differ)}; recorded in {readme}): give this scene its own DATASET.ROOT, "
                           "or delete the folder to generate it again")


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _intervals(labels: np.ndarray) -> list[tuple[int, int]]:
    """Runs of 1s as (start, end) inclusive."""
    padded = np.concatenate([[0], labels.astype(np.int8), [0]])
    d = np.diff(padded)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1))


@DATASETS.register_module(name="synthetic")
class SyntheticDataset(FolderDataset):
    """The generated scene, created at ``root`` on first use (see :func:`make_synthetic`).

    ``generator`` holds keyword arguments of :func:`make_synthetic` (``DATASET.ARGS.generator``);
    an existing folder made with other values of them is refused (:func:`check_generated`).
    """

    def __init__(self, root, *args, generator: dict | None = None, **kwargs):
        root = generate_on_first_use(root, "synthetic", make_synthetic, generator)
        check_generated(root, generator)
        super().__init__(root, *args, **kwargs)
