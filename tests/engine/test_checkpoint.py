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
    # a list of parts (a Fusion's cues) names the item and the argument in it that differ
    cues = [{"name": "flow", "cell": 16}, {"name": "unet", "network": {"type": "UNet", "base_channels": 32}}]
    fused = {"model_name": "Fusion", "model_args": {"cues": cues}}
    other = [cues[0], {"name": "unet", "network": {"type": "UNet", "base_channels": 16}}]
    with pytest.raises(CheckpointError, match=r"MODEL.ARGS.cues\[1\].network.base_channels is 32 there but 16 in"):
        check_compatible({"meta": fused}, {**fused, "model_args": {"cues": other}}, "x.pth")
    with pytest.raises(CheckpointError, match=r"MODEL.ARGS.cues is \[.*\] there but \[.*\] in"):  # not the same cues
        check_compatible({"meta": fused}, {**fused, "model_args": {"cues": cues[:1]}}, "x.pth")


def test_a_model_argument_written_out_at_its_default_is_compatible():
    defaults = {"residual": False, "history": None}
    meta = {"model_name": "P", "model_args": {"clip_length": 5}, "model_defaults": defaults}
    explicit = {**meta, "model_args": {"clip_length": 5, "residual": False}}
    check_compatible({"meta": meta}, explicit, "x.pth")
    check_compatible({"meta": explicit}, meta, "x.pth")
    check_compatible({"meta": {"model_args": {"clip_length": 5}}}, explicit, "x.pth")  # saved without defaults
    with pytest.raises(CheckpointError, match="MODEL.ARGS.residual is False there but True"):
        check_compatible({"meta": meta}, {**meta, "model_args": {"clip_length": 5, "residual": True}}, "x.pth")


def test_stale_temporaries_are_removed(tmp_path):
    save_checkpoint(tmp_path / "last.pth", {"step": 1})
    (tmp_path / ".last.pth.abc123.tmp").write_bytes(b"half a checkpoint")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".last.pth.abc123.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_export_keeps_weights_meta_step_and_lists_the_digest(tmp_path):
    from pyanomaly.engine.checkpoint import SUMS_FILE, export_weights, sha256
    full = {"model": {"w": torch.arange(4.0)}, "optimizer": {"state": {0: {"exp_avg": torch.ones(1000)}}},
            "step": 7, "rng": rng_state(), "meta": {"model_name": "X"}, "metrics": {"auc_micro": 0.75},
            "metrics_step": 7}
    save_checkpoint(tmp_path / "run" / "last.pth", full)
    digest = export_weights(tmp_path / "run" / "last.pth", tmp_path / "zoo" / "x.pth")
    pub = load_checkpoint(tmp_path / "zoo" / "x.pth")
    assert sorted(pub) == ["meta", "metrics", "model", "step"] and pub["metrics"] == {"auc_micro": 0.75}
    assert digest == sha256(tmp_path / "zoo" / "x.pth")
    assert (tmp_path / "zoo" / SUMS_FILE).read_text() == f"{digest}  x.pth\n"  # sha256sum -c reads this
    # metrics measured at another step than the weights' are not published with them
    save_checkpoint(tmp_path / "run" / "last.pth", dict(full, metrics_step=5))
    digest_y = export_weights(tmp_path / "run" / "last.pth", tmp_path / "zoo" / "y.pth")
    assert "metrics" not in load_checkpoint(tmp_path / "zoo" / "y.pth")
    assert (tmp_path / "zoo" / SUMS_FILE).read_text() == f"{digest}  x.pth\n{digest_y}  y.pth\n"


def test_bf16_export_halves_the_weights_and_loads_into_a_float32_model(tmp_path):
    from pyanomaly.engine.checkpoint import export_weights, load_model_weights
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(64, 64, 3), torch.nn.BatchNorm2d(64))
    state = {**net.state_dict(), "mean": torch.tensor([0.1, 1 / 3], dtype=torch.float64)}  # a statistic in float64
    save_checkpoint(tmp_path / "run" / "last.pth", {"model": state, "step": 3, "meta": {},
                                                    "metrics": {"auc_micro": 0.9}, "metrics_step": 3})
    export_weights(tmp_path / "run" / "last.pth", tmp_path / "zoo" / "full.pth")
    export_weights(tmp_path / "run" / "last.pth", tmp_path / "zoo" / "half.pth", "bf16")
    half = load_checkpoint(tmp_path / "zoo" / "half.pth")
    assert half["weights_dtype"] == "bfloat16" and "metrics" not in half  # measured on other weights
    assert half["model"]["0.weight"].dtype == torch.bfloat16
    assert half["model"]["1.num_batches_tracked"].dtype == torch.int64  # integers stay as they are
    assert torch.equal(half["model"]["mean"], state["mean"])  # and so do float64 statistics
    assert (tmp_path / "zoo" / "half.pth").stat().st_size < 0.6 * (tmp_path / "zoo" / "full.pth").stat().st_size
    fresh = torch.nn.Sequential(torch.nn.Conv2d(64, 64, 3), torch.nn.BatchNorm2d(64))
    load_model_weights(fresh, {**half, "model": {k: v for k, v in half["model"].items() if k != "mean"}}, "half.pth")
    assert fresh[0].weight.dtype == torch.float32
    assert torch.equal(fresh[0].weight, net[0].weight.to(torch.bfloat16).float())
    assert (fresh[0].weight - net[0].weight).abs().max() < 1e-2 * net[0].weight.abs().max()
    with pytest.raises(ValueError, match="export dtype"):
        export_weights(tmp_path / "run" / "last.pth", tmp_path / "zoo" / "x.pth", "int8")


def test_a_file_that_differs_from_its_listed_digest_is_refused(tmp_path):
    from pyanomaly.engine.checkpoint import SUMS_FILE
    save_checkpoint(tmp_path / "x.pth", {"model": {"w": torch.zeros(3)}})
    (tmp_path / SUMS_FILE).write_text("0" * 64 + "  x.pth\n")
    with pytest.raises(CheckpointError, match=r"x.pth is damaged or was replaced: its SHA-256 \w+ differs from 0+ "
                                              r"listed in .*SHA256SUMS"):
        load_checkpoint(tmp_path / "x.pth")
    save_checkpoint(tmp_path / "unlisted.pth", {"step": 1})
    assert load_checkpoint(tmp_path / "unlisted.pth")["step"] == 1  # files not in the list load as before
    (tmp_path / SUMS_FILE).write_text("0" * 64 + "\n")
    with pytest.raises(CheckpointError, match=r"SHA256SUMS, line 1: expected '<sha256>  <file name>'"):
        load_checkpoint(tmp_path / "x.pth")
