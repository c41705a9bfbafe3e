"""A video's per-frame labels from what its dataset listed: anomalous intervals and/or a label array.

A dataset's ``list_videos`` gives each :class:`~pyanomaly.datasets.video.VideoRecord` its
ground truth as it is stored (0-based inclusive ``intervals``, per-frame ``labels``, or both);
only once the video is decoded is its number of frames ``N`` known, and :func:`frame_labels`
turns them into ``(N,)`` uint8, checked against it.

Example:
    >>> frame_labels(VideoRecord("01", files, intervals=[(2, 4)]), 6).tolist()
    [0, 0, 1, 1, 1, 0]
"""
from __future__ import annotations

import numpy as np

from .video import DatasetError, VideoRecord


def frame_labels(record: VideoRecord, n: int, cut: bool = False) -> np.ndarray | None:
    """``(n,)`` uint8 labels of ``record`` (1 = anomalous): its labels with its intervals set;
    None when it has neither.

    ``cut``: the video goes on past the ``n`` frames read, so an interval starting after them is
    dropped, one running past them is cut, and a longer label array is cut to them.

    Raises:
        DatasetError: an interval outside the video, labels of another length or other values
            than 0/1, naming the video and the file they come from.
    """
    where = f" ({record.label_source})" if record.label_source else ""
    labels = None if record.labels is None else np.asarray(record.labels)
    if labels is not None:
        if cut and labels.ndim == 1 and labels.shape[0] > n:
            labels = labels[:n]
        if labels.ndim != 1 or labels.shape[0] != n:
            raise DatasetError(f"video '{record.name}'{where}: {n} frames but labels of shape {tuple(labels.shape)} "
                               f"(expected ({n},), one label per frame)")
        bad = np.setdiff1d(np.unique(labels), [0, 1])
        if bad.size:
            raise DatasetError(f"video '{record.name}'{where}: labels must be 0 or 1, found {bad[:5].tolist()}")
        labels = labels.astype(np.uint8)
    if record.intervals is None:
        return labels
    marked = np.zeros(n, dtype=np.uint8) if labels is None else labels.copy()
    for start, end in record.intervals:
        if cut and start >= n:
            continue
        end = min(end, n - 1) if cut else end
        if not 0 <= start <= end < n:
            raise DatasetError(f"video '{record.name}'{where}: anomalous interval {start}..{end} (0-based, "
                               f"inclusive) does not fit its {n} frames")
        marked[start:end + 1] = 1
    return marked
