"""Fixtures of the dataset tests: a private frame cache and a one-call dataset builder."""
from __future__ import annotations

from pathlib import Path

import pytest

from pyanomaly.registry import DATASETS, build

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO / ".." / "shared" / "data"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Never touch the user's ~/.cache: the default cache folder points into tmp_path."""
    monkeypatch.setenv("PYANOMALY_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture
def load(tmp_path):
    """``load(name, root, split, **kwargs)``: a registered dataset, tiny frames, tmp cache."""
    def _load(name: str, root: Path, split: str = "testing", **kwargs):
        args = dict(type=name, root=str(root), split=split, clip_length=2, image_size=(8, 8),
                    cache_dir=str(tmp_path / "cache"))
        args.update(kwargs)
        return build(DATASETS, args)
    return _load
