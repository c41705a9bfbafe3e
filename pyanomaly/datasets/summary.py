"""Validate a configured dataset and summarise it: the logic of ``tools/prepare_data.py``.

Both splits are built as a run builds them, which decodes their videos into the frame cache
(so a first training run starts at once) and checks every label file against its video: the
test split whole, the training split as the run's method reads it (:class:`Reading`): a
step-trained method under ``TRAIN.MAX_FRAMES``, a method fitted by reading it once (a Fusion,
a baseline) under ``TRAIN.FIT_MAX_FRAMES`` (beyond a budget, the first frames of each video;
``0`` reads and checks every frame). ``tools/prepare_data.py`` adds what else
``tools/train.py`` will read (:func:`pyanomaly.engine.reads.run_reads`: a fused cue's
training on this dataset). The summary per split: videos, frames, anomalous frames, original
resolution(s), frame rate(s) where the container says it, and the decoded size; per video
(``--per-video``) also the frames its container claims (the number of files for a frame
folder). Truncated media (a video decoding to fewer frames than its container claims, a cut
or empty frame file; see :mod:`pyanomaly.datasets.video`) are read to the end and listed, one
line each, and make the exit status 1 unless ``DATASET.ACCEPT_TRUNCATED`` is on.

Example:
    >>> from pyanomaly.datasets.summary import main
    >>> main("configs/datasets/ped2.yaml", ["DATASET.IMAGE_SIZE", "[64, 64]"])
    dataset 'ped2' at ../shared/data/ped2 (Ped2Dataset)
    <BLANKLINE>
    split     videos  frames  anomalous      resolution (original)  fps  decoded
    training      16   2,550  -              360x240                -    64x64x1
    testing       12   2,010  1,648 (82.0%)  360x240                -    64x64x1
    0
"""
from __future__ import annotations

import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, TextIO

from . import video
from .base import DatasetError, VideoDataset


# how the training split is read -> (the budget's key, what reads under it)
BUDGETS = {"train": ("TRAIN.MAX_FRAMES", "a step-trained method"),
           "fit": ("TRAIN.FIT_MAX_FRAMES", "a method or baseline fitted by reading it once")}


@dataclass
class Reading:
    """A dataset as one run reads it, for :func:`prepare` to build and check ahead of the run.

    ``training``: how the training split is read, each of ``"train"`` (under ``TRAIN.MAX_FRAMES``)
    and ``"fit"`` (under ``TRAIN.FIT_MAX_FRAMES``); ``testing``: whether the test split is read;
    ``title``: what reads it (empty for the config's own run)."""

    cfg: object
    training: tuple[str, ...] = ("train",)
    testing: bool = True
    title: str = ""


@dataclass
class SplitSummary:
    """Counts of one split; ``anomalous`` is None when the split has no labels."""

    split: str
    videos: int
    frames: int
    anomalous: int | None
    resolutions: Counter  # "WxH" -> number of videos
    fps: Counter  # "25" or "-" (unknown) -> number of videos
    decoded: str  # "HxWxC" of the cached frames
    per_video: list[tuple[str, str, int, int | None]] = field(default_factory=list)  # name, group, frames, anomalous
    claimed: list[int | None] = field(default_factory=list)  # per video: frames the container claims (None: unknown)
    truncated: dict[str, list[str]] = field(default_factory=dict)  # video -> problems (truncated media)
    per_video_budget: int | None = None  # frames read of each video under a frame budget (None: every frame)
    budget: str = "train"  # the training split's reading (BUDGETS)
    label: str = ""  # the row's name ("" = split)

    @property
    def row(self) -> str:
        return self.label or self.split


def summarize(ds: VideoDataset, budget: str = "train") -> SplitSummary:
    """Counts, sizes and frame rates of a built dataset split (reads one frame per video);
    ``budget``: how a training split was read (:data:`BUDGETS`)."""
    labels = [ds.labels(i) for i in range(len(ds.videos))]
    groups = ds.groups or [""] * len(ds.videos)
    resolutions, fps = Counter(), Counter()
    for i in range(len(ds.videos)):
        info = ds.info(i)
        resolutions[f"{info.width}x{info.height}"] += 1
        fps["-" if info.fps is None else f"{info.fps:g}"] += 1
    known = [lab for lab in labels if lab is not None]
    per_video = [(name, g, n, None if lab is None else int(lab.sum()))
                 for name, g, n, lab in zip(ds.names, groups, ds.lengths, labels)]
    return SplitSummary(
        split=ds.split, videos=len(ds.videos), frames=int(sum(ds.lengths)),
        anomalous=int(sum(lab.sum() for lab in known)) if known else None,
        resolutions=resolutions, fps=fps,
        decoded="x".join(str(s) for s in (*ds.image_size, ds.channels)), per_video=per_video,
        claimed=list(getattr(ds, "claimed", None) or [None] * len(ds.videos)),  # generated data claims nothing
        truncated=dict(getattr(ds, "truncated", None) or {}), per_video_budget=getattr(ds, "per_video", None),
        budget=budget)


def budget_lines(summaries: list[SplitSummary]) -> list[str]:
    """A line per split read under a frame budget: what was read of what its videos claim."""
    lines = []
    for s in summaries:
        if s.per_video_budget is not None:
            known = [c for c in s.claimed if c is not None]
            claimed = f"{sum(known):,} frames claimed" + ("" if len(known) == len(s.claimed) else " by those that say")
            key, reader = BUDGETS[s.budget]
            lines.append(f"note: {s.row}: the first {s.per_video_budget:,} frames of each video were read and checked "
                         f"({s.frames:,} of {claimed}), as {reader} reads them under {key}; "
                         f"{key} 0 reads and checks every frame")
    return lines


def _counted(counter: Counter) -> str:
    if len(counter) == 1:
        return next(iter(counter))
    return ", ".join(f"{k} ({n})" for k, n in counter.most_common())


def _anomalous(anomalous: int | None, frames: int) -> str:
    if anomalous is None:
        return "-"
    return f"{anomalous:,} ({100.0 * anomalous / max(frames, 1):.1f}%)"


def _table(header: Sequence[str], rows: list[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    return ["  ".join(str(v).rjust(w) if c in right else str(v).ljust(w)
                      for c, (v, w) in enumerate(zip(r, widths))).rstrip() for r in [header, *rows]]


def format_summary(summaries: list[SplitSummary], per_video: bool = False) -> str:
    """A plain-text table, one row per split (then per group, and per video if asked)."""
    rows = [(s.row, str(s.videos), f"{s.frames:,}", _anomalous(s.anomalous, s.frames),
             _counted(s.resolutions), _counted(s.fps), s.decoded) for s in summaries]
    lines = _table(("split", "videos", "frames", "anomalous", "resolution (original)", "fps", "decoded"),
                   rows, right={1, 2})
    for s in summaries:
        groups: dict[str, list] = {}
        for name, g, n, a in s.per_video:
            if g:
                groups.setdefault(g, []).append((n, a))
        if groups:
            lines += ["", f"{s.row} by group:"]
            grows = []
            for g, items in sorted(groups.items()):
                frames = sum(n for n, _ in items)
                anom = None if any(a is None for _, a in items) else sum(a for _, a in items)
                grows.append((g, str(len(items)), f"{frames:,}", _anomalous(anom, frames)))
            lines += ["  " + x for x in _table(("group", "videos", "frames", "anomalous"), grows, right={1, 2})]
        if per_video:
            lines += ["", f"{s.row} per video:"]
            claimed = s.claimed or [None] * len(s.per_video)
            vrows = [(name, f"{n:,}", "-" if c is None else f"{c:,}", _anomalous(a, n),
                      "truncated" if name in s.truncated else "ok")
                     for (name, _, n, a), c in zip(s.per_video, claimed)]
            lines += ["  " + x for x in _table(("video", "frames", "claimed", "anomalous", "media"), vrows,
                                               right={1, 2})]
    return "\n".join(lines)


def truncated_lines(summaries: list[SplitSummary]) -> list[str]:
    """One line per truncated file: ``truncated: <split> video '<name>': <what>``."""
    return [f"truncated: {s.row} video '{name}': {problem}"
            for s in summaries for name, problems in s.truncated.items() for problem in problems]


def reference_notes(dataset_cls: type, summaries: list[SplitSummary]) -> list[str]:
    """Where counts differ from the dataset class's ``reference`` (the official release)."""
    reference = getattr(dataset_cls, "reference", None) or {}
    notes = []
    for s in summaries:
        for key, expected in reference.get(s.split, {}).items():
            got = getattr(s, key)
            if key == "frames" and s.per_video_budget is not None:  # the frames read: compare what is claimed
                got = sum(s.claimed) if None not in s.claimed else None
            if got is not None and got != expected:
                notes.append(f"note: {s.split}: {got:,} {key}, the official release has {expected:,}"
                             + (" (an edited label file?)" if key == "anomalous" else ""))
    return list(dict.fromkeys(notes))  # a split read under two budgets is noted once


def prepare(reading: Reading, per_video: bool = False) -> tuple[str, int]:
    """Build the splits ``reading`` reads as its run does (decoding into the cache; the training
    split under each of its budgets); return the report and the number of truncated videos (each
    read as far as it decodes, so all are listed). A second budget that reads the same frames as
    the first (neither cuts the split) is one row."""
    from .build import build_dataset, build_fit_dataset, build_train_dataset

    cfg = reading.cfg
    summaries, dataset_cls = [], None
    media_log = logging.getLogger(video.__name__)
    level = media_log.level
    media_log.setLevel(logging.ERROR)  # the report lists each truncated file itself, once
    try:
        for budget in reading.training:
            build = build_fit_dataset if budget == "fit" else build_train_dataset
            ds = build(cfg, accept_truncated=True)
            dataset_cls = type(ds)
            got = summarize(ds, budget)
            first = next((x for x in summaries if x.split == "training"), None)
            if first is not None and first.per_video_budget is None and got.per_video_budget is None:
                continue
            if first is not None:
                got.label = f"training ({budget})"
            summaries.append(got)
        if reading.testing:
            ds = build_dataset(cfg, "testing", accept_truncated=True)
            dataset_cls = type(ds)
            summaries.append(summarize(ds))
    finally:
        media_log.setLevel(level)
    head = f"dataset '{cfg.DATASET.NAME}' at {cfg.DATASET.ROOT} ({dataset_cls.__name__})"
    if reading.title:
        head = f"{reading.title}: {head}"
    truncated = truncated_lines(summaries)
    report = "\n".join([head, "", format_summary(summaries, per_video), *budget_lines(summaries),
                        *reference_notes(dataset_cls, summaries), *([""] + truncated if truncated else [])])
    return report, len({(s.split, name) for s in summaries for name in s.truncated})


def main(cfg_file: str | Path, opts: Sequence[str] = (), per_video: bool = False, debug: bool = False,
         out: TextIO | None = None, err: TextIO | None = None,
         reads: Callable[[object], list[Reading]] | None = None) -> int:
    """Load the config, validate and summarise; print the report. Returns the exit status.

    ``reads``: the config -> what its run reads (:class:`Reading`, one report each); by default
    its dataset as a step-trained run reads it. Any problem (config, plugin import, dataset) is one line ``error: ...`` on ``err`` and
    status 1; ``debug=True`` lets the exception propagate with its traceback instead. Truncated
    media: the report lists them and a last line ``error: N of M videos are truncated ...``
    gives status 1, unless ``DATASET.ACCEPT_TRUNCATED`` is on (then a ``note:`` and status 0).
    """
    from pyanomaly.config import ConfigError, load_cfg
    from pyanomaly.registry import RegistryError, import_plugins

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        cfg = load_cfg(cfg_file, list(opts))
        import_plugins(cfg.SYSTEM.IMPORTS, search_dirs=[Path(cfg_file).parent, Path.cwd()])
        reports = [prepare(r, per_video) for r in (reads(cfg) if reads is not None else [Reading(cfg)])]
        report, truncated = "\n\n".join(r for r, _ in reports), sum(n for _, n in reports)
    except (DatasetError, ConfigError, RegistryError, ImportError, OSError) as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=err)
        return 1
    except Exception as exc:  # a bug rather than bad data: still one line, unless debugging
        if debug:
            raise
        print(f"error: {type(exc).__name__}: {_one_line(exc)} (run with --debug for the traceback)", file=err)
        return 1
    print(report, file=out)
    if truncated and not cfg.DATASET.ACCEPT_TRUNCATED:
        print(f"error: {truncated} video(s) are truncated (listed above: frames decoded vs claimed, cut frame "
              "files); set DATASET.ACCEPT_TRUNCATED True to use them as decoded", file=err)
        return 1
    if truncated:
        print(f"note: {truncated} truncated video(s) are used as decoded (DATASET.ACCEPT_TRUNCATED is on)", file=out)
    return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def configure_logging() -> None:
    """Progress messages (e.g. the first decode) on stderr, without logger names."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
