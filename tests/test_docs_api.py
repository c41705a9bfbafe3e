"""docs/api.md's examples, run in order as written, with the recipe made tiny and a generated clip.

Only two strings of the page are replaced: ``configs/prednet.yaml`` by a tiny config on the
tiny generated data (so training takes seconds), and ``my_clip.avi`` by a generated clip.
"""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from testutils import REPO

from test_api import TINY

PAGE = REPO / "docs" / "api.md"


def _run_blocks(text: str) -> list[str]:
    return re.findall(r"<!-- run -->\s*```python\n(.*?)```", text, flags=re.S)


pytestmark = pytest.mark.usefixtures("restore_logging")  # the runs reconfigure the pyanomaly logger


def test_the_api_page_runs_as_written(tmp_path, tiny_synthetic, monkeypatch, capsys):
    blocks = _run_blocks(PAGE.read_text())
    assert len(blocks) >= 4, "docs/api.md lost its marked examples"
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY.replace("DATASET:\n", f"DATASET:\n  ROOT: {tiny_synthetic}\n", 1))
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 32))
    for p in sorted((tiny_synthetic / "testing" / "frames" / "02").glob("*.png")):
        writer.write(cv2.imread(str(p)))
    writer.release()
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code in blocks:
        code = code.replace("configs/prednet.yaml", str(cfg)).replace("my_clip.avi", str(clip))
        exec(compile(code, str(PAGE), "exec"), namespace)
    assert (tmp_path / "outputs" / "quick" / "checkpoints" / "best.pth").is_file()
    assert len(namespace["result"]) == 60 and np.isfinite(namespace["result"].scores).any()
    assert isinstance(namespace["alarms"], list)
    assert "Detector(PredNetPredictor" in capsys.readouterr().out
