"""``events.csv``: the anomalous events of a split, each with its kind (optional, beside ``labels.csv``).

Header ``video,kind,start,end``: the frames ``start..end`` (0-based, inclusive) of ``video``
belong to an event of ``kind`` (a word: ``fast``, ``left_behind``, ...). The generated scene
writes one (:mod:`pyanomaly.datasets.synthetic`); for a user's folder dataset it is optional.
The per-frame labels stay those of ``labels.csv``; the events only say which kind each
anomalous frame is, so that results can be given by kind
(:mod:`pyanomaly.evaluation.kinds`).

Example:
    >>> read_events_csv(Path("data/synthetic_static/testing/events.csv"), ["01", "02"])
    {'01': [('left_behind', 40, 97)], '02': [('fall', 31, 88)]}
"""
from __future__ import annotations

import csv
from pathlib import Path

from .video import DatasetError

EVENTS_NAME = "events.csv"
FIELDS = ["video", "kind", "start", "end"]


def read_events_csv(path: Path, names: list[str]) -> dict[str, list[tuple[str, int, int]]]:
    """``video,kind,start,end`` rows -> per video its ``(kind, start, end)`` events (every name of
    ``names`` present, with an empty list when the file has none for it)."""
    events: dict[str, list[tuple[str, int, int]]] = {name: [] for name in names}
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start}); save it as CSV UTF-8") from None
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or [c.strip() for c in reader.fieldnames] != FIELDS:
        raise DatasetError(f"{path}: header must be '{','.join(FIELDS)}', got {reader.fieldnames}")
    reader.fieldnames = FIELDS
    for row in reader:
        line = reader.line_num
        if None in row or any(row[k] is None for k in FIELDS):
            raise DatasetError(f"{path} line {line}: expected the fields {','.join(FIELDS)}")
        name, kind = row["video"].strip(), row["kind"].strip()
        try:
            start, end = int(row["start"]), int(row["end"])
        except ValueError:
            raise DatasetError(f"{path} line {line}: start/end must be integers, got {dict(row)}") from None
        if name not in events:
            raise DatasetError(f"{path} line {line}: no video named '{name}' (videos: {', '.join(names)})")
        if not kind:
            raise DatasetError(f"{path} line {line}: empty kind")
        if start < 0 or end < start:
            raise DatasetError(f"{path} line {line}: interval {start}..{end} needs 0 <= start <= end (0-based)")
        events[name].append((kind, start, end))
    return events
