"""Reconstructor: windows ending at the frame, frame and flow modalities, losses, streaming, a recipe's run."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from pyanomaly.errors import ConfigError
from pyanomaly.flow import OpticalFlow
from pyanomaly.networks.meta import Memory
from pyanomaly.registry import MODELS, build

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from testutils import REPO, run_tool_in_process, train_in_process  # noqa: E402

H, W = 16, 16
FLOW = dict(type="dis", preset="ultrafast")


def _video(n=10, seed=0):
    """``(n, 1, H, W)``: a bright square moving right a pixel a frame over noise."""
    g = torch.Generator().manual_seed(seed)
    x = 0.2 + 0.1 * torch.rand(n, 1, H, W, generator=g)
    for t in range(n):
        x[t, :, 5:10, t % W:t % W + 4] = 0.9
    return x


def _model(modality="frame", network="MemAE", frames=3, **kw):
    torch.manual_seed(0)
    net = dict(type=network, base_channels=4, depth=2)
    if network == "MemAE":
        net.update(slots=16, threshold=0.02)
    if modality == "frame":
        net["in_channels"] = 1
    extra = dict(flow=FLOW) if modality == "flow" else {}
    return build(MODELS, dict(type="Reconstructor", network=net, modality=modality, frames=frames, batch_windows=4,
                              **extra, **kw))


def test_frame_modality_reconstructs_the_window_ending_at_each_frame():
    model = _model("frame").eval()
    assert model.output == "frame" and model.reconstructs
    video = _video()
    recon, valid = model.predict_video(video)
    assert valid.tolist() == [False, False] + [True] * 8  # frames 0 and 1 have no full window of 3
    assert (recon[~valid] == 0).all()  # not valid: never scored (the protocol counts these frames)
    for t in (2, 6, 9):
        torch.testing.assert_close(recon[t], model.net(video[None, t - 2:t + 1])[0, -1])


def test_flow_modality_maps_the_endpoint_error_of_the_reconstructed_flow():
    model = _model("flow", flow_scale=2.0).eval()
    assert model.output == "anomaly_map" and not model.reconstructs
    video = _video()
    maps, valid = model.predict_video(video)
    assert maps.shape == (10, 1, H, W)
    assert valid.tolist() == [False] * 3 + [True] * 7  # frame 0 has no flow, then 3 flows make a window
    flow, _, _ = OpticalFlow(**FLOW).stream(video)  # frame t's row: the flow from t-1 into t
    for t in (3, 9):
        rebuilt = model.net(flow[None, t - 2:t + 1] / 2.0)[0, -1] * 2.0
        torch.testing.assert_close(maps[t, 0], (rebuilt - flow[t]).norm(dim=0))


@pytest.mark.parametrize("modality", ["frame", "flow"])
def test_chunked_streams_equal_the_whole_video(modality):
    model = _model(modality).eval()
    video = _video(11)
    whole, valid = model.predict_video(video, chunk=11)
    for chunk in (1, 2, 4):
        part, ok = model.predict_video(video, chunk=chunk)
        assert ok.tolist() == valid.tolist()
        torch.testing.assert_close(part[valid], whole[valid], atol=1e-6, rtol=1e-5)
    # two videos streamed together give what each gives alone
    other = _video(7, seed=3)
    both, oks, _ = model.predict_streams([video, other], [None, None])
    alone, alone_ok = model.predict_video(other, chunk=7)
    torch.testing.assert_close(both[0][valid], whole[valid], atol=1e-6, rtol=1e-5)
    assert oks[1].tolist() == alone_ok.tolist()
    torch.testing.assert_close(both[1][alone_ok], alone[alone_ok], atol=1e-6, rtol=1e-5)


def _clips(b=2, length=4):
    frames = torch.stack([_video(length, seed=s) for s in range(b)])
    flow = OpticalFlow(**FLOW)
    return {"frames": frames, "flow": torch.stack([flow.stream(c)[0][1:] for c in frames])}


def test_memae_adds_the_weighted_entropy_of_its_addressing_and_a_conv_ae_does_not():
    model = _model("frame", frames=3, entropy_weight=0.5).train()
    batch = _clips()
    losses = model(batch)
    assert set(losses) == {"loss_mse", "loss_entropy"}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    torch.testing.assert_close(losses["loss_entropy"], 0.5 * Memory.entropy(model.net.weights))
    assert losses["loss_entropy"] > 0
    assert model.net.weights.shape[:2] == (2, 16)  # per clip, per slot (then per location)
    assert set(_model("frame", network="ConvAE")(batch)) == {"loss_mse"}
    assert set(_model("frame", entropy_weight=0.0)(batch)) == {"loss_mse"}


@pytest.mark.parametrize("modality", ["frame", "flow"])
def test_a_few_training_steps_lower_the_reconstruction_loss(modality):
    model = _model(modality).train()
    batch = _clips()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = model.net.memory.items.detach().clone()
    first = model.train_step(batch, opt)["loss_mse"]
    for _ in range(2):
        last = model.train_step(batch, opt)["loss_mse"]
    assert last < first, f"{modality}: mse {float(first):.5f} -> {float(last):.5f}"
    assert not torch.equal(model.net.memory.items, before)


def test_flow_targets_are_the_last_flows_divided_by_the_scale():
    model = _model("flow", flow_scale=4.0)
    batch = _clips(length=5)
    torch.testing.assert_close(model.target(batch), batch["flow"][:, -3:] / 4.0)
    frames_model = _model("frame")
    torch.testing.assert_close(frames_model.target(batch), batch["frames"][:, -3:])


def test_flow_modality_without_flow_in_the_batch_says_to_set_dataset_flow():
    model = _model("flow")
    with pytest.raises(ConfigError, match="set DATASET.FLOW"):
        model({"frames": torch.rand(2, 4, 1, H, W)})


def test_training_on_flow_without_dataset_flow_is_one_error_line(tiny_synthetic, tmp_path, capsys, monkeypatch,
                                                                   restore_logging):
    code, err = run_tool_in_process(capsys, monkeypatch, "train.py", "--cfg", REPO / "configs" / "memae.yaml",
                                    "DATASET.ROOT", tiny_synthetic, "SYSTEM.OUTPUT_DIR", tmp_path / "run",
                                    "DATASET.IMAGE_SIZE", "[32, 32]", "DATASET.CLIP_LENGTH", "5",
                                    "MODEL.ARGS.modality", "flow", "MODEL.ARGS.network.slots", "8",
                                    "MODEL.ARGS.network.in_channels", "2", "MODEL.ARGS.network.activation", "none",
                                    "SCORE.ERROR", "CELL_TOP", "SCORE.PATCH", "8",
                                    "TRAIN.MAX_STEPS", "1", "LOG.PROGRESS", "False")
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1, err
    assert "set DATASET.FLOW" in lines[0]


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="modality must be one of"):
        _model("depth")
    with pytest.raises(ValueError, match="CLIP_LENGTH >= 4"):
        _model("flow", clip_length=3)  # 3 frames hold 2 flows, the window is 3
    with pytest.raises(ValueError, match="network.frames 5 differs"):
        build(MODELS, dict(type="Reconstructor", frames=3, network=dict(type="ConvAE", frames=5)))
    with pytest.raises(ValueError, match="network.activation 'sigmoid' differs"):
        build(MODELS, dict(type="Reconstructor", modality="flow",
                           network=dict(type="ConvAE", activation="sigmoid")))
    with pytest.raises(ConfigError, match="needs 3 frames per clip"):
        _model("frame")({"frames": torch.rand(2, 2, 1, H, W)})


def test_memae_recipe_trains_and_scores(tiny_synthetic, tmp_path):
    """configs/memae.yaml, made tiny on the command line, trains, writes checkpoints and metrics."""
    out = tmp_path / "run"
    train_in_process(REPO / "configs" / "memae.yaml", tiny_synthetic, out, "DATASET.IMAGE_SIZE", "[32, 32]",
                     "TRAIN.MAX_STEPS", "2", "TRAIN.BATCH_SIZE", "2", "TRAIN.EVAL_PERIOD", "0",
                     "TRAIN.CHECKPOINT_PERIOD", "0", "MODEL.ARGS.network.base_channels", "4",
                     "MODEL.ARGS.network.slots", "32", "EVAL.PLOTS", "False", "EVAL.REPORT", "False",
                     "TRAIN.TENSORBOARD", "False", "LOG.PROGRESS", "False")
    ckpt = torch.load(out / "checkpoints" / "last.pth", weights_only=True)
    assert ckpt["step"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["auc_micro"] <= 1.0
    # 4 test videos, the first 3 frames of each without a full window of 4
    assert metrics["frames_unscored"] == 4 * 3
