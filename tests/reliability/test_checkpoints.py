"""Bad checkpoints given to tools/test.py and tools/export_checkpoint.py: empty, cut short, not a
checkpoint, unsafe to unpickle, non-finite weights, damaged SHA256SUMS, and exports that would
write over training state. Each ends in one line ``error: ...`` naming the file and what is
wrong (never torch's hint to load with ``weights_only=False``), or in the correct result."""
from __future__ import annotations

import hashlib
import math
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from testutils import assert_one_clear_error, run_tool_in_process


def _cut(n: int):
    return lambda data: data[:n]


def _save(obj):
    def make(data: bytes, path: Path) -> None:
        torch.save(obj, path)
    return make


def _weights(change):
    """A copy of the run's checkpoint with ``change(name, tensor)`` applied to its weights."""
    def make(data: bytes, path: Path) -> None:
        path.write_bytes(data)
        ckpt = torch.load(path, weights_only=True)
        for i, (name, value) in enumerate(ckpt["model"].items()):
            change(i, value)
        torch.save(ckpt, path)
    return make


def _old_format_cut(data: bytes, path: Path) -> None:
    """The checkpoint in torch.save's pre-1.6 format (a pickle), cut in half."""
    path.write_bytes(data)
    torch.save(torch.load(path, weights_only=True), path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def _pickle(obj):
    def make(data: bytes, path: Path) -> None:
        path.write_bytes(pickle.dumps(obj))
    return make


# (id, how the bad file is made from the run's last.pth bytes, the part of the error line)
BAD_CHECKPOINTS = [
    ("empty", _cut(0), "is empty (0 bytes): a write that did not finish?"),
    ("cut_to_1000_bytes", _cut(1000), "(1000 bytes): it is truncated or damaged (its zip archive is incomplete)"),
    ("cut_in_half", lambda d: d[:len(d) // 2], "it is truncated or damaged (its zip archive is incomplete)"),
    ("last_byte_missing", lambda d: d[:-1], "it is truncated or damaged (its zip archive is incomplete)"),
    ("text_file", lambda d: b"not a checkpoint\n", "it is not a PyTorch checkpoint (not a torch.save zip archive)"),
    ("random_bytes", lambda d: bytes(range(256)) * 8, "it is not a PyTorch checkpoint"),
    ("plain_pickle", _pickle({"model": {}}),
     "it is a Python pickle that does not load as a checkpoint (cut short, or not written by torch.save: "
     "UnpicklingError)"),
    ("old_format_cut_in_half", _old_format_cut,
     "it is a Python pickle that does not load as a checkpoint (cut short, or not written by torch.save: "
     "RuntimeError: unexpected EOF"),
    ("unsafe_object", _save({"model": {}, "where": Path("/tmp")}),
     "holds Python objects other than tensors and plain types (pathlib"),
    ("a_list", _save([1, 2, 3]), "holds a list, not a checkpoint (a dict with 'model' weights)"),
    ("no_weights", _save({"step": 3}), "holds no model weights (keys: step)"),
    ("all_nan", _weights(lambda i, v: v.fill_(math.nan)),
     "holds non-finite weights (NaN or inf) in 16 of 16 tensors: net.conv_r.0.weight, net.conv_r.0.bias, "
     "net.conv_r.1.weight and 13 more"),
    ("one_inf", _weights(lambda i, v: v.view(-1)[0].fill_(math.inf) if i == 2 else None),
     "holds non-finite weights (NaN or inf) in 1 of 16 tensors: net.conv_r.1.weight;"),
]


@pytest.fixture
def last_bytes(finished) -> bytes:
    return (finished / "checkpoints/last.pth").read_bytes()


@pytest.mark.parametrize("make,expect", [c[1:] for c in BAD_CHECKPOINTS], ids=[c[0] for c in BAD_CHECKPOINTS])
def test_test_tool_refuses_a_bad_checkpoint(make, expect, last_bytes, cfg_file, tiny_synthetic, tmp_path, capsys,
                                            monkeypatch):
    bad = tmp_path / "bad.pth"
    if make.__code__.co_argcount == 2:
        make(last_bytes, bad)
    else:
        bad.write_bytes(make(last_bytes))
    code, err = run_tool_in_process(capsys, monkeypatch, "test.py", "--cfg", cfg_file, "--checkpoint", bad,
                                    "DATASET.ROOT", tiny_synthetic, "SYSTEM.OUTPUT_DIR", tmp_path / "out")
    assert_one_clear_error(code, err, expect)
    assert str(bad) in err.strip().splitlines()[-1]
    assert "weights_only" not in err  # torch's hint to load it unsafely is never passed on
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_a_folder_given_as_the_checkpoint(finished, cfg_file, tiny_synthetic, tmp_path, capsys, monkeypatch):
    code, err = run_tool_in_process(capsys, monkeypatch, "test.py", "--cfg", cfg_file, "--checkpoint", finished,
                                    "DATASET.ROOT", tiny_synthetic, "SYSTEM.OUTPUT_DIR", tmp_path / "out")
    assert_one_clear_error(code, err, f"checkpoint {finished} is a folder; give a checkpoint file (e.g. "
                                      f"{finished / 'checkpoints/best.pth'})")


# (id, the SHA256SUMS beside the checkpoint, the part of the error line)
BAD_SUMS = [
    ("binary", bytes(range(256)), "SHA256SUMS is not a text file of '<sha256>  <file name>' lines (binary or damaged)"),
    ("one_field", b"deadbeef\n",
     "SHA256SUMS, line 1: expected '<sha256>  <file name>' (64 hex digits), got 'deadbeef'"),
    ("short_digest", b"deadbeef  last.pth\n", "SHA256SUMS, line 1: expected '<sha256>  <file name>' (64 hex digits)"),
    ("wrong_digest", b"0" * 64 + b"  last.pth\n", "is damaged or was replaced: its SHA-256"),
]


@pytest.mark.parametrize("sums,expect", [c[1:] for c in BAD_SUMS], ids=[c[0] for c in BAD_SUMS])
def test_bad_sha256sums_beside_the_checkpoint(sums, expect, finished, cfg_file, tiny_synthetic, tmp_path, capsys,
                                              monkeypatch):
    folder = tmp_path / "published"
    folder.mkdir()
    shutil.copy(finished / "checkpoints/last.pth", folder / "last.pth")
    (folder / "SHA256SUMS").write_bytes(sums)
    code, err = run_tool_in_process(capsys, monkeypatch, "test.py", "--cfg", cfg_file, "--checkpoint",
                                    folder / "last.pth", "DATASET.ROOT", tiny_synthetic, "SYSTEM.OUTPUT_DIR",
                                    tmp_path / "out")
    assert_one_clear_error(code, err, expect)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


def _same_path(run: Path, tmp: Path) -> tuple[Path, Path]:
    return run / "checkpoints/last.pth", run / "checkpoints/last.pth"


def _dotted_path(run: Path, tmp: Path) -> tuple[Path, Path]:
    return run / "checkpoints/last.pth", run / "checkpoints/../checkpoints/./last.pth"


def _symlink(run: Path, tmp: Path) -> tuple[Path, Path]:
    (tmp / "link.pth").symlink_to(run / "checkpoints/last.pth")
    return tmp / "link.pth", run / "checkpoints/last.pth"


def _hard_link(run: Path, tmp: Path) -> tuple[Path, Path]:
    os.link(run / "checkpoints/last.pth", tmp / "hard.pth")
    return run / "checkpoints/last.pth", tmp / "hard.pth"


def _over_best(run: Path, tmp: Path) -> tuple[Path, Path]:
    return run / "checkpoints/last.pth", run / "checkpoints/best.pth"


# (id, (source, destination) from the run copy, the part of the error line)
EXPORTS_OVER_TRAINING_STATE = [
    ("same_path", _same_path, "is the source checkpoint"),
    ("same_file_another_spelling", _dotted_path, "is the source checkpoint"),
    ("source_is_a_link_to_it", _symlink, "is the source checkpoint"),
    ("hard_link_of_the_source", _hard_link, "is the source checkpoint"),
    ("another_training_checkpoint", _over_best,
     "is a training checkpoint (it holds optimizer and rng state that --resume needs); write the export to another "
     "file"),
]


@pytest.mark.parametrize("paths,expect", [c[1:] for c in EXPORTS_OVER_TRAINING_STATE],
                         ids=[c[0] for c in EXPORTS_OVER_TRAINING_STATE])
def test_export_never_writes_over_training_state(paths, expect, run_copy, tmp_path, capsys, monkeypatch):
    src, dst = paths(run_copy, tmp_path)
    before = {p: digest(p) for p in (run_copy / "checkpoints").iterdir()}
    code, err = run_tool_in_process(capsys, monkeypatch, "export_checkpoint.py", src, dst)
    assert_one_clear_error(code, err, f"export destination {dst} {expect}")
    assert {p: digest(p) for p in (run_copy / "checkpoints").iterdir()} == before
    assert "optimizer" in torch.load(run_copy / "checkpoints/last.pth", weights_only=True)


def test_pyanomaly_export_command_refuses_the_same_file(run_copy, capsys):
    from pyanomaly.cli import main
    last = run_copy / "checkpoints/last.pth"
    before = digest(last)
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(last), str(last)])
    err = capsys.readouterr().err
    assert_one_clear_error(exit_.value.code, err, f"export destination {last} is the source checkpoint {last}")
    assert digest(last) == before


def test_export_to_a_folder(run_copy, tmp_path, capsys, monkeypatch):
    code, err = run_tool_in_process(capsys, monkeypatch, "export_checkpoint.py", run_copy / "checkpoints/last.pth",
                                    tmp_path)
    assert_one_clear_error(code, err, f"export destination {tmp_path} is a folder; give the file to write, e.g. "
                                      f"{tmp_path / 'last.pth'}")


def test_export_refuses_non_finite_weights(last_bytes, tmp_path, capsys, monkeypatch):
    src = tmp_path / "nan.pth"
    _weights(lambda i, v: v.fill_(math.nan))(last_bytes, src)
    code, err = run_tool_in_process(capsys, monkeypatch, "export_checkpoint.py", src, tmp_path / "out/model.pth")
    assert_one_clear_error(code, err, f"checkpoint {src} holds non-finite weights (NaN or inf) in 16 of 16 tensors")
    assert not (tmp_path / "out/model.pth").exists()


def test_export_over_a_published_file_replaces_it(run_copy, tmp_path, capsys, monkeypatch):
    """A published file (no training state) may be replaced; SHA256SUMS lists the new digest."""
    dst = tmp_path / "release/model.pth"
    for _ in range(2):
        code, err = run_tool_in_process(capsys, monkeypatch, "export_checkpoint.py",
                                        run_copy / "checkpoints/last.pth", dst)
        assert code == 0, err
    assert (tmp_path / "release/SHA256SUMS").read_text() == f"{digest(dst)}  model.pth\n"
    assert "optimizer" not in torch.load(dst, weights_only=True)
