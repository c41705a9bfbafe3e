"""Where a test run writes: a new folder beside the run, or an empty one the user names."""
import re

import pytest

from pyanomaly.engine.outputs import choose_output_dir, scores_run, source_run
from pyanomaly.errors import ConfigError


@pytest.fixture
def run(tmp_path):
    (tmp_path / "run/checkpoints").mkdir(parents=True)
    (tmp_path / "run/config.yaml").write_text("{}\n")
    (tmp_path / "run/checkpoints/best.pth").write_bytes(b"")
    return tmp_path / "run"


def test_a_new_folder_beside_the_run_named_for_config_and_time(run):
    src = source_run(run / "checkpoints/best.pth")
    assert src == run
    out = choose_output_dir(str(run), src, "test", "configs/tiny.yaml", new=True)
    assert out.parent == run.parent and re.fullmatch(r"run_test_tiny_\d{8}-\d{6}", out.name), out
    out.mkdir()
    again = choose_output_dir(str(run), src, "test", "configs/tiny.yaml", new=True)
    assert again != out and again.name.startswith(out.name)


def test_a_published_checkpoint_uses_the_configs_output_dir(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    assert source_run(tmp_path / "checkpoints/x.pth") is None
    out = choose_output_dir(str(tmp_path / "outputs/prednet"), None, "test", "prednet.yaml", new=True)
    assert out.parent == tmp_path / "outputs" and out.name.startswith("prednet_test_prednet_")


def test_a_given_folder_must_be_empty_unless_overwrite_and_never_the_run(run, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "metrics.json").write_text("{}")
    with pytest.raises(ConfigError, match=f"SYSTEM.OUTPUT_DIR {full} exists and is not empty; pass --overwrite"):
        choose_output_dir(str(full), run, "test", None, new=False)
    assert choose_output_dir(str(full), run, "test", None, new=False, overwrite=True) == full
    assert choose_output_dir(str(tmp_path / "fresh"), run, "test", None, new=False) == tmp_path / "fresh"
    with pytest.raises(ConfigError, match="is the run this test reads the checkpoint from"):
        choose_output_dir(str(run), run, "test", None, new=False, overwrite=True)


def test_the_run_of_exported_scores(run):
    (run / "scores/npy").mkdir(parents=True)
    (run / "scores/frame_scores.csv").write_text("")
    assert scores_run(run / "scores/frame_scores.csv") == scores_run(run / "scores/npy") == run
