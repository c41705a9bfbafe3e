"""Writes that fail: a full disk (torch's own ``RuntimeError`` as well as ``OSError``), a quota,
an I/O error, read-only folders, a write interrupted by a kill, a NaN loss before any checkpoint.
Each ends in one line ``error: ...`` naming the file, and what was there before is intact."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch


from testutils import PoisonWeightsAt  # noqa: F401 (registers the hook the NaN cases name)
from testutils import REPO, assert_one_clear_error, run_tool_in_process, tool_env

from conftest import FAST

FOUR_STEPS = [*FAST, "TRAIN.MAX_STEPS", "4"]  # checkpoints at steps 2 and 4
AS_ROOT = os.geteuid() == 0  # root ignores file modes: a read-only folder is writable to it


def _torch_full_disk():
    # what torch.save raises when its zip writer cannot write (ENOSPC seen as a short write)
    return RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 197248 vs 197168")


# (id, step whose checkpoint write fails, the exception, the part of the error line after the path)
FAILED_SAVES = [
    ("torch_runtime_error_full_disk", 4, _torch_full_disk,
     ": [enforce fail at inline_container.cc:672] . unexpected pos 197248 vs 197168; the previous last.pth, if any, "
     "is intact"),
    ("no_space_left", 4, lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
     ": No space left on device; the previous last.pth, if any, is intact"),
    ("quota_exceeded", 4, lambda: OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)), ": Disk quota exceeded;"),
    ("io_error", 4, lambda: OSError(errno.EIO, os.strerror(errno.EIO)), ": Input/output error;"),
    ("full_at_the_first_checkpoint", 2, _torch_full_disk, ": [enforce fail at inline_container.cc:672]"),
]


@pytest.mark.parametrize("step,exc,expect", [c[1:] for c in FAILED_SAVES], ids=[c[0] for c in FAILED_SAVES])
def test_failed_checkpoint_write(step, exc, expect, cfg_file, tiny_synthetic, tmp_path, capsys, monkeypatch):
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("step") == step:
            with open(f, "wb") as fh:
                fh.write(b"PK\x03\x04" + b"\0" * 100)  # the part that fitted
            raise exc()
        real_save(obj, f, *args, **kwargs)

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(torch, "save", save)
        code, err = run_tool_in_process(capsys, m, "train.py", "--cfg", cfg_file, "DATASET.ROOT", tiny_synthetic,
                                        "SYSTEM.OUTPUT_DIR", out, *FOUR_STEPS)
    last = out / "checkpoints/last.pth"
    assert_one_clear_error(code, err, f"could not write checkpoint {last}{expect}")
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    if step == 2:
        assert names == []  # no temporary file, no partial checkpoint
    else:
        assert names == ["last.pth"] and torch.load(last, weights_only=True)["step"] == 2
    assert f"error: could not write checkpoint {last}" in (out / "log.txt").read_text().strip().splitlines()[-1]


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux) for a private tmpfs")
def test_really_full_disk_during_export(finished, tmp_path):
    """A real 200 KiB file system (tmpfs in a user namespace, no root needed): torch's own error."""
    small = tmp_path / "small"
    small.mkdir()
    script = (f"mount -t tmpfs -o size=200k tmpfs {small} || exit 77; "
              f"{sys.executable} tools/export_checkpoint.py {finished / 'checkpoints/last.pth'} {small / 'model.pth'};"
              f" code=$?; ls -A {small}; exit $code")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=REPO, env=tool_env(), capture_output=True,
                       text=True, timeout=300)
    if r.returncode == 77 or "unshare:" in r.stderr:
        pytest.skip(f"cannot mount a private tmpfs here: {r.stderr.strip()[:200]}")
    assert_one_clear_error(r.returncode, r.stderr, f"could not write checkpoint {small / 'model.pth'}: ")
    assert r.stdout.strip() == ""  # neither the checkpoint nor its temporary file is left


def test_export_disk_full_while_listing_the_digest(finished, tmp_path, capsys, monkeypatch):
    import pyanomaly.engine.checkpoint as checkpoint

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint, "atomic_write_text", full)
    dst = tmp_path / "release/model.pth"
    code, err = run_tool_in_process(capsys, monkeypatch, "export_checkpoint.py", finished / "checkpoints/last.pth", dst)
    assert_one_clear_error(code, err, f"wrote {dst} but could not update {dst.parent / 'SHA256SUMS'}: No space left "
                                      "on device; its SHA-256 is ")


@pytest.mark.parametrize("poisoned_after,expect", [
    (1, "non-finite loss at step 2: loss_prediction=nan, loss=nan. Lower TRAIN.LR or set TRAIN.GRAD_CLIP; no "
        "checkpoint was written before it ({last} does not exist yet)"),
    (2, "non-finite loss at step 3: loss_prediction=nan, loss=nan. Lower TRAIN.LR or set TRAIN.GRAD_CLIP; {last} "
        "holds the last good state"),
], ids=["before_any_checkpoint", "after_a_checkpoint"])
def test_nan_loss_names_what_was_saved(poisoned_after, expect, cfg_file, tiny_synthetic, tmp_path, capsys,
                                       monkeypatch):
    out = tmp_path / "run"
    code, err = run_tool_in_process(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.ROOT", tiny_synthetic,
                                    "SYSTEM.OUTPUT_DIR", out, *FOUR_STEPS, "TRAIN.CUSTOM_HOOKS",
                                    f"[{{'type': 'PoisonWeightsAt', 'step': {poisoned_after}}}]")
    last = out / "checkpoints/last.pth"
    assert_one_clear_error(code, err, expect.format(last=last))
    assert last.is_file() == (poisoned_after >= 2)


def test_kill_during_a_checkpoint_write_leaves_a_temporary_that_resume_removes(finished, cfg_file, tiny_synthetic,
                                                                              tmp_path, capsys, monkeypatch):
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    stale = run / "checkpoints/.last.pth.k1ll3d.tmp"
    stale.write_bytes(b"PK\x03\x04 half a checkpoint")
    code, err = run_tool_in_process(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.ROOT", tiny_synthetic,
                                    "SYSTEM.OUTPUT_DIR", run, *FAST, "TRAIN.MAX_STEPS", "3", "--resume")
    assert code == 0, err
    assert not stale.exists()
    assert f"removed {stale}, left by a write that was interrupted" in (run / "log.txt").read_text()
    assert torch.load(run / "checkpoints/last.pth", weights_only=True)["step"] == 3


needs_modes = pytest.mark.skipif(AS_ROOT, reason="runs as root, which writes into read-only folders anyway")


@needs_modes
def test_read_only_output_folder(cfg_file, tiny_synthetic, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        code, err = run_tool_in_process(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.ROOT",
                                        tiny_synthetic, "SYSTEM.OUTPUT_DIR", locked / "run", *FAST)
    finally:
        locked.chmod(0o700)
    assert_one_clear_error(code, err, f"output directory {locked / 'run'} is not writable: Permission denied")


@needs_modes
def test_read_only_checkpoint_folder_on_resume(finished, cfg_file, tiny_synthetic, tmp_path, capsys, monkeypatch):
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    (run / "checkpoints").chmod(0o500)
    try:
        code, err = run_tool_in_process(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.ROOT",
                                        tiny_synthetic, "SYSTEM.OUTPUT_DIR", run, *FAST, "TRAIN.MAX_STEPS", "4",
                                        "--resume")
    finally:
        (run / "checkpoints").chmod(0o700)
    assert_one_clear_error(code, err, f"could not write checkpoint {run / 'checkpoints/last.pth'}: Permission denied")
    assert torch.load(run / "checkpoints/last.pth", weights_only=True)["step"] == 2


@needs_modes
def test_export_into_a_read_only_folder(finished, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "release"
    locked.mkdir(mode=0o500)
    try:
        code, err = run_tool_in_process(capsys, monkeypatch, "export_checkpoint.py",
                                        finished / "checkpoints/last.pth", locked / "model.pth")
    finally:
        locked.chmod(0o700)
    assert_one_clear_error(code, err, f"could not write checkpoint {locked / 'model.pth'}: Permission denied")
