"""Every command-line tool prints its usage with --help and exits 0."""
import subprocess
import sys

import pytest

from testutils import REPO, tool_env

TOOLS = sorted(p.name for p in (REPO / "tools").glob("*.py"))


def test_the_tools_are_there():
    assert {"train.py", "test.py", "score_video.py", "make_synthetic.py", "prepare_data.py", "benchmark.py",
            "export_checkpoint.py"} <= set(TOOLS)


@pytest.mark.parametrize("tool", TOOLS)
def test_help(tool):
    done = subprocess.run([sys.executable, str(REPO / "tools" / tool), "--help"], capture_output=True, text=True,
                          timeout=120, env=tool_env())
    assert done.returncode == 0, done.stderr[-1000:]
    assert done.stdout.startswith("usage:") and tool in done.stdout
