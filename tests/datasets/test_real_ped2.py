"""The real UCSD Ped2 beside the repository (``../shared/data/ped2``), when it is there."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyanomaly.datasets import Ped2Dataset

PED2 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ped2"

pytestmark = pytest.mark.skipif(not (PED2 / "ped2.mat").is_file(), reason=f"real Ped2 not present at {PED2}")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ped2-cache")


def test_test_split(cache):
    ds = Ped2Dataset(PED2, split="testing", clip_length=5, image_size=(16, 16), cache_dir=cache)
    assert ds.names == [f"{i:02d}" for i in range(1, 13)]
    assert ds.lengths == [180, 180, 150, 180, 150, 180, 180, 180, 120, 150, 180, 180]
    assert sum(ds.lengths) == 2010
    labels = [ds.labels(i) for i in range(12)]
    assert int(sum(lab.sum() for lab in labels)) == 1648
    # ped2.mat is 1-based: video 01 is [61; 180], so frame file 060.jpg (0-based 60) is the first anomalous one
    assert int(np.flatnonzero(labels[0])[0]) == 60 and labels[0][59] == 0
    assert ds.video_frames(8).shape == (120, 1, 16, 16)
    info = ds.info(0)
    assert (info.width, info.height, info.fps) == (360, 240, None)


def test_training_split(cache):
    ds = Ped2Dataset(PED2, split="training", clip_length=5, image_size=(16, 16), cache_dir=cache)
    assert len(ds.names) == 16 and sum(ds.lengths) == 2550
    assert all(ds.labels(i) is None for i in range(16))
