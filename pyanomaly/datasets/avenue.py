"""``avenue``: the CUHK Avenue dataset, as the official archive ships it or as frame folders.

Source: C. Lu, J. Shi, J. Jia, "Abnormal Event Detection at 150 FPS in MATLAB", ICCV 2013
(CUHK). One camera on a campus avenue; anomalies are running, throwing, loitering, walking
in a wrong direction.

Layouts under ``ROOT`` (``ROOT`` may also be the folder holding ``Avenue Dataset/``)::

    training_videos/01.avi ...          official: one .avi per video
    testing_videos/01.avi ...
    ground_truth_demo/testing_label_mask/1_label.mat ...
                                        official ground truth: volLabel, a 1xN cell of HxW
                                        masks, one per frame of test video 1 (01.avi)

    training/frames/01/0000.jpg ...     frame-folder variant
    testing/frames/01/0000.jpg ...

Ground truth, first found: ``DATASET.ARGS.label_file`` (a folder of ``*_label.mat`` masks or
a frame-interval ``.mat``), then ``ground_truth_demo/testing_label_mask/`` (or
``testing_label_mask/``), then ``avenue.mat`` (key ``gt``: 1xV cell of 2xK ``[start; end]``,
1-based, inclusive, as for ``ped2.mat``). With masks, frame ``k`` (0-based) is anomalous if
mask ``k + 1`` has a positive pixel.

Example:
    >>> ds = AvenueDataset("data/avenue", split="testing", clip_length=5, image_size=(64, 64))
    >>> len(ds.names), ds.names[0], ds.labels(0).dtype
    (21, '01', dtype('uint8'))
"""
from __future__ import annotations

from pathlib import Path

from pyanomaly.registry import DATASETS

from .base import DatasetError, VideoDataset, VideoRecord
from .folder import find_videos
from .matlab_labels import read_interval_mat, read_vol_label, to_zero_based


@DATASETS.register_module(name="avenue")
class AvenueDataset(VideoDataset):
    """CUHK Avenue, official videos or frame folders (see the module docstring)."""

    def list_videos(self) -> list[VideoRecord]:
        base = self._base()
        if base is not None:
            folder = base / f"{self.split}_videos"
        else:
            base = self.root
            folder = self.root / self.split
            if not folder.is_dir():
                raise DatasetError(
                    f"avenue: {self.root} holds neither training_videos/ + testing_videos/ (official) "
                    f"nor training/ + testing/ frame folders; missing {folder}")
        if not folder.is_dir():
            raise DatasetError(f"avenue: missing split folder {folder}")
        records = find_videos(folder)
        if self.split == "testing" and records:
            self._attach_labels(base, records)
        return records

    def _base(self) -> Path | None:
        for base in (self.root, self.root / "Avenue Dataset"):
            if (base / "training_videos").is_dir() or (base / "testing_videos").is_dir():
                return base
        return None

    def _attach_labels(self, base: Path, records: list[VideoRecord]) -> None:
        source = self.label_file
        if source is None:
            candidates = [base / "ground_truth_demo" / "testing_label_mask", base / "testing_label_mask",
                          self.root / "ground_truth_demo" / "testing_label_mask",
                          base / "avenue.mat", base / "testing" / "avenue.mat"]
            source = next((p for p in candidates if p.exists()), None)
            if source is None:
                raise DatasetError(
                    f"avenue: no ground truth found: expected {candidates[0]}/<n>_label.mat (official) "
                    f"or {candidates[3]} (or set DATASET.ARGS.label_file)")
        if source.is_dir():
            for rec in records:
                path = _mask_file(source, rec.name)
                rec.labels = self.cached_array(f"avenue-{rec.name}", [path], lambda p=path: read_vol_label(p))
                rec.label_source = path
            return
        intervals = read_interval_mat(source)
        if len(intervals) != len(records):
            raise DatasetError(f"{source}: ground truth for {len(intervals)} videos but the test split "
                               f"holds {len(records)} videos")
        for rec, iv in zip(records, intervals):
            rec.intervals, rec.label_source = to_zero_based(iv), source


def _mask_file(folder: Path, video: str) -> Path:
    """``1_label.mat`` for video ``01`` (the official names drop the leading zero)."""
    names = [f"{video}_label.mat"]
    if video.isdigit():
        names.insert(0, f"{int(video)}_label.mat")
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DatasetError(f"avenue: test video '{video}' has no mask file {folder / names[0]}")
