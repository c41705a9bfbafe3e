"""The failure catalogue: every way a run can go wrong ends in one line ``error: ...``, exit
code 2 and no traceback, and leaves what the run directory held before intact.

The tools run in this process (``runpy``, as ``python tools/train.py`` would run them) to
save a Python start per case; ``tests/tools/test_end_to_end.py`` checks a few of the same
cases in real subprocesses.
"""
from __future__ import annotations

import errno
import hashlib
import shutil
from pathlib import Path

import pytest
import torch


from testutils import PoisonWeightsAt  # noqa: F401 (registers the hook the NaN cases name)
from testutils import TINY, assert_one_clear_error, run_tool_in_process as run_tool, train_in_process

FAST = ["TRAIN.MAX_STEPS", "4", "TRAIN.CHECKPOINT_PERIOD", "2", "TRAIN.EVAL_PERIOD", "0", "EVAL.PLOTS", "False",
        "TRAIN.TENSORBOARD", "False"]


pytestmark = pytest.mark.usefixtures("restore_logging")  # the runs reconfigure the pyanomaly logger


def snapshot(folder: Path) -> dict[str, str]:
    """Hash of every file under ``folder`` but the log (which records the error)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "log.txt"}


@pytest.fixture(scope="module")
def cfg_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cfg_file, tiny_synthetic) -> Path:
    """A finished tiny run directory (4 steps, checkpoints at 2 and 4)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    train_in_process(cfg_file, tiny_synthetic, out, *FAST)
    assert torch.load(out / "checkpoints/last.pth", weights_only=True)["step"] == 4
    return out


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    """A private copy of the finished run, to fail against."""
    return Path(shutil.copytree(finished, tmp_path / "run"))


# (name, extra arguments, expected part of the error line); each runs against a copy of a
# finished run directory and must leave it as it was.
AGAINST_A_RUN = [
    ("unknown_key", ["TRAIN.MAX_STEP", "8"], "unknown config key 'TRAIN.MAX_STEP' (did you mean 'MAX_STEPS'?)"),
    ("wrong_type", ["TRAIN.MAX_STEPS", "many"], "config key 'TRAIN.MAX_STEPS' expects int"),
    ("wrong_type_list", ["DATASET.IMAGE_SIZE", "32"], "config key 'DATASET.IMAGE_SIZE' expects list"),
    ("bad_choice", ["SYSTEM.DEVICE", "gpu"], "config key 'SYSTEM.DEVICE' must be one of"),
    ("unknown_hook", ["TRAIN.CUSTOM_HOOKS", "[{'type': 'LogerHook'}]", "--resume"],
     "unknown hook 'LogerHook'. Did you mean 'LoggerHook'?"),
    ("missing_plugin", ["SYSTEM.IMPORTS", "['no_such_plugin_module']"], "no_such_plugin_module"),
    ("run_exists", [], "already holds a run"),
    ("other_method", ["MODEL.NAME", "FramePredictor", "--resume"],
     "different model: MODEL.NAME is 'PredNetPredictor' there but 'FramePredictor'"),
    ("other_image_size", ["DATASET.IMAGE_SIZE", "[24, 24]", "--resume"],
     "different input: DATASET.IMAGE_SIZE is [32, 32] there but [24, 24] in this config"),
    ("other_channels", ["DATASET.CHANNELS", "3", "--resume"], "DATASET.CHANNELS is 1 there but 3"),
    ("other_model", ["MODEL.ARGS.network.stack_sizes", "[1, 4, 16]", "--resume"],
     "different model: MODEL.ARGS.network.stack_sizes is [1, 8, 16] there but [1, 4, 16]"),
    ("resume_other_clips", ["DATASET.CLIP_LENGTH", "61", "TRAIN.LR", "0.5", "--resume"],
     "DATASET.CLIP_LENGTH 6 -> 61; TRAIN.LR 0.003 -> 0.5"),
]


@pytest.mark.parametrize("name,extra,expect", AGAINST_A_RUN, ids=[c[0] for c in AGAINST_A_RUN])
def test_bad_input_leaves_the_run_intact(name, extra, expect, run_copy, cfg_file, tiny_synthetic, capsys, monkeypatch):
    before = snapshot(run_copy)
    code, err = run_tool(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.ROOT", tiny_synthetic,
                         "SYSTEM.OUTPUT_DIR", run_copy, *FAST, *extra)
    assert_one_clear_error(code, err, expect)
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("extra,expect", [
    (["MODEL.NAME", "PredNetPredicter"], "unknown model 'PredNetPredicter'. Did you mean 'PredNetPredictor'?"),
    (["MODEL.ARGS.network.type", "PredNot"], "unknown network 'PredNot'. Did you mean 'PredNet'?"),
], ids=["unknown_model", "unknown_network"])
def test_unknown_registry_names(extra, expect, tmp_path, cfg_file, capsys, monkeypatch):
    # A misnamed part fails before any data is read: the synthetic set is not even generated.
    code, err = run_tool(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.ROOT", tmp_path / "data",
                         "SYSTEM.OUTPUT_DIR", tmp_path / "run", *FAST, *extra)
    assert_one_clear_error(code, err, expect)
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "run/config.yaml").exists()  # nothing but the log before every part is built


def test_missing_config_and_checkpoints(tmp_path, cfg_file, tiny_synthetic, capsys, monkeypatch):
    code, err = run_tool(capsys, monkeypatch, "train.py", "--cfg", tmp_path / "nope.yaml")
    assert_one_clear_error(code, err, "config file not found")
    code, err = run_tool(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.ROOT", tiny_synthetic,
                         "SYSTEM.OUTPUT_DIR", tmp_path / "o", "--resume")
    assert_one_clear_error(code, err, "no checkpoint to resume from")
    code, err = run_tool(capsys, monkeypatch, "test.py", "--cfg", cfg_file, "--checkpoint", tmp_path / "x.pth",
                         "DATASET.ROOT", tiny_synthetic, "SYSTEM.OUTPUT_DIR", tmp_path / "o")
    assert_one_clear_error(code, err, "checkpoint not found")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_asked_for_without_a_gpu(tmp_path, cfg_file, tiny_synthetic, capsys, monkeypatch):
    code, err = run_tool(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.ROOT", tiny_synthetic,
                         "SYSTEM.OUTPUT_DIR", tmp_path / "run", "SYSTEM.DEVICE", "cuda")
    assert_one_clear_error(code, err, "SYSTEM.DEVICE is 'cuda' but no CUDA device is available")


def test_unknown_key_in_the_yaml_file(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("TRAIN:\n  BATCH: 4\n")
    code, err = run_tool(capsys, monkeypatch, "train.py", "--cfg", bad)
    assert_one_clear_error(code, err, "unknown config key 'TRAIN.BATCH'")


def test_truncated_checkpoint_on_resume(run_copy, cfg_file, tiny_synthetic, capsys, monkeypatch):
    last = run_copy / "checkpoints/last.pth"
    last.write_bytes(last.read_bytes()[:1000])
    before = snapshot(run_copy)
    code, err = run_tool(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.ROOT", tiny_synthetic,
                         "SYSTEM.OUTPUT_DIR", run_copy, *FAST, "--resume")
    assert_one_clear_error(code, err, "cannot load checkpoint")
    assert snapshot(run_copy) == before


def test_output_dir_not_writable(tmp_path, cfg_file, tiny_synthetic, capsys, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, err = run_tool(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.ROOT", tiny_synthetic,
                         "SYSTEM.OUTPUT_DIR", blocker / "run")
    assert_one_clear_error(code, err, "is not writable")


def test_disk_full_during_a_checkpoint_write(tmp_path, cfg_file, tiny_synthetic, capsys, monkeypatch):
    """The second checkpoint (step 4) hits a full disk: the run stops, step 2's file survives."""
    real_save, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(obj.get("step"))
        if obj.get("step") == 4:
            with open(f, "wb") as fh:
                fh.write(b"\0" * 100)  # the part that fitted
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "run"
    code, err = run_tool(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.ROOT", tiny_synthetic,
                         "SYSTEM.OUTPUT_DIR", out, *FAST)
    monkeypatch.undo()
    assert_one_clear_error(code, err, "last.pth: No space left on device; the previous last.pth, if any, is intact")
    assert calls == [2, 4]
    assert torch.load(out / "checkpoints/last.pth", weights_only=True)["step"] == 2
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.pth"]  # no temp file left
    assert (out / "config.yaml").is_file()
    assert (out / "log.txt").read_text().strip().splitlines()[-1].endswith("No space left on device; the previous "
                                                                          "last.pth, if any, is intact")


def test_nan_loss_stops_naming_step_and_terms(tmp_path, cfg_file, tiny_synthetic, capsys, monkeypatch):
    out = tmp_path / "run"
    code, err = run_tool(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.ROOT", tiny_synthetic,
                         "SYSTEM.OUTPUT_DIR", out, *FAST, "TRAIN.CUSTOM_HOOKS", "[{'type': 'PoisonWeightsAt', 'step': 2}]")
    assert_one_clear_error(code, err, "non-finite loss at step 3: loss_prediction=nan, loss=nan")
    last = torch.load(out / "checkpoints/last.pth", weights_only=True)
    assert last["step"] == 2 and all(torch.isfinite(v).all() for v in last["model"].values())
    assert not (out / "checkpoints/best.pth").exists() and not (out / "metrics.json").exists()


def test_options_may_follow_the_overrides():
    from pyanomaly.cli import config_parser
    parser = config_parser("x")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(["--cfg", "a.yaml", "TRAIN.LR", "-1e-3", "--resume", "SYSTEM.SEED", "-1"])
    assert (args.cfg, args.resume, args.opts) == ("a.yaml", True, ["TRAIN.LR", "-1e-3", "SYSTEM.SEED", "-1"])
