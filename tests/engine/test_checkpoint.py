import random

import numpy as np
import pytest
import torch

from pyanomaly.engine.checkpoint import (CheckpointError, check_compatible, load_checkpoint,
                                         remove_stale_temporaries, rng_state, save_checkpoint, set_rng_state)


def test_round_trip_with_weights_only(tmp_path):
    state = {"model": {"w": torch.arange(4.0)}, "step": 3, "rng": rng_state(), "meta": {"model_name": "X"}}
    save_checkpoint(tmp_path / "c.pth", state)
    back = load_checkpoint(tmp_path / "c.pth")  # weights_only=True inside
    assert torch.equal(back["model"]["w"], torch.arange(4.0)) and back["step"] == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_rng_state_restores_every_generator():
    s = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(s)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pth"
    save_checkpoint(path, {"step": 1})

    def broken_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(CheckpointError, match=r"could not write checkpoint .*last.pth: No space left"):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert not list(tmp_path.glob(".last.pth.*"))


def test_missing_truncated_and_foreign_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pth")
    (tmp_path / "bad.pth").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="cannot load checkpoint"):
        load_checkpoint(tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="MODEL.NAME is 'A' there but 'B'"):
        check_compatible({"meta": {"model_name": "A"}}, {"model_name": "B"}, "x.pth")


def test_compatibility_names_the_first_differing_key():
    meta = {"model_name": "P", "model_args": {"network": {"type": "PredNet", "stack_sizes": [1, 8]}},
            "image_size": [32, 32], "channels": 1}
    check_compatible({"meta": meta}, dict(meta), "x.pth")
    check_compatible({"meta": {"model_name": "P"}}, meta, "x.pth")  # an older checkpoint's meta: fewer keys
    cases = {"model_args": ({"network": {"type": "PredNet", "stack_sizes": [1, 4]}},
                            r"MODEL.ARGS.network.stack_sizes is \[1, 8\] there but \[1, 4\]"),
             "image_size": ([64, 64], r"DATASET.IMAGE_SIZE is \[32, 32\] there but \[64, 64\]"),
             "channels": (3, "DATASET.CHANNELS is 1 there but 3")}
    for key, (value, message) in cases.items():
        with pytest.raises(CheckpointError, match=message):
            check_compatible({"meta": meta}, {**meta, key: value}, "x.pth")


def test_stale_temporaries_are_removed(tmp_path):
    save_checkpoint(tmp_path / "last.pth", {"step": 1})
    (tmp_path / ".last.pth.abc123.tmp").write_bytes(b"half a checkpoint")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".last.pth.abc123.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]
