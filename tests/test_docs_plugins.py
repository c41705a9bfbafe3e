"""docs/plugins.md's example of a raw error and a normaliser of one's own, run as written.

The file the page shows is written out as it stands; the page's command is run with only the
data, size and length of the run made tiny.
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from testutils import REPO, tool_env

PAGE = REPO / "docs" / "plugins.md"


def _blocks(text: str, marker: str) -> list[tuple[str, str]]:
    """``(argument, code)`` of every fenced block right after ``<!-- marker[: argument] -->``."""
    pattern = rf"<!-- {marker}:?\s*([^>]*?)\s*-->\s*```\w*\n(.*?)```"
    return re.findall(pattern, text, flags=re.S)


@pytest.mark.slow
def test_the_scorer_and_normaliser_example_runs_as_documented(tmp_path, tiny_synthetic):
    text = PAGE.read_text()
    files, runs = _blocks(text, "file"), _blocks(text, "run")
    assert files and len(runs) == 1, "docs/plugins.md lost its marked example"
    for name, code in files:
        (tmp_path / name).write_text(code)
    argv = shlex.split(runs[0][1].replace("\\\n", " "))
    assert argv[:2] == ["python", "tools/train.py"]
    argv[argv.index("--cfg") + 1] = str(REPO / argv[argv.index("--cfg") + 1])
    out = tmp_path / "run"
    tiny = ["SYSTEM.OUTPUT_DIR", str(out), "DATASET.ROOT", str(tiny_synthetic), "DATASET.IMAGE_SIZE", "[32, 32]",
            "DATASET.CLIP_LENGTH", "4", "TRAIN.MAX_STEPS", "2", "TRAIN.BATCH_SIZE", "2", "TRAIN.IMAGE_PERIOD", "0",
            "TRAIN.TENSORBOARD", "False", "EVAL.PLOTS", "False", "EVAL.REPORT", "False", "LOG.PROGRESS", "False"]
    # run from the folder that holds the plugin file, as the page says
    proc = subprocess.run([sys.executable, str(REPO / argv[1]), *argv[2:], *tiny], cwd=tmp_path, env=tool_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    protocol = json.loads((out / "metrics.json").read_text())["protocol"]
    assert protocol["error"].startswith("WorstPixel") and protocol["normalization"] == "per-video rank"
    scores = np.load(next((out / "scores" / "npy").glob("*_score.npy")))
    ranks = scores[np.isfinite(scores)]
    n = ranks.size
    np.testing.assert_allclose(np.sort(ranks), np.arange(n) / (n - 1))  # every frame its own rank
