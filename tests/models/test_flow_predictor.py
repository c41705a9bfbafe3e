"""FlowPredictor: training on a clip's flows, the endpoint-error map, causal streaming, clear errors."""
import json

import pytest
import torch

from pyanomaly.engine.checkpoint import load_checkpoint
from pyanomaly.errors import ConfigError
from pyanomaly.flow import OpticalFlow
from pyanomaly.models import FlowPredictor, FlowSpeed
from testutils import REPO, assert_one_clear_error, moving_texture, run_tool_in_process, train_in_process

FLOW = dict(type="dis", preset="ultrafast")


def _model(**kw):
    torch.manual_seed(0)
    args = dict(network=dict(type="UNet", base_channels=4, depth=2), clip_length=4, flow=FLOW, flow_scale=1.0)
    return FlowPredictor(**{**args, **kw})


def _flows(video):
    """The causal flow into each frame ``(N, 2, H, W)``, NaN for frame 0 (as the method measures it)."""
    return OpticalFlow(**FLOW).stream(video)[0]


def _clips(starts, video, length=4):
    """Training batch of clips of ``video`` starting at ``starts``, with their flows (as DATASET.FLOW gives)."""
    flows = _flows(video)
    return {"frames": torch.stack([video[s:s + length] for s in starts]),
            "flow": torch.stack([flows[s + 1:s + length] for s in starts])}


def test_training_steps_on_clips_with_their_flow_lower_the_loss_and_move_the_weights():
    model = _model().train()
    batch = _clips([0, 2, 4], moving_texture(8, speed=2))
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = [float(model.train_step(batch, opt)["loss"]) for _ in range(4)]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses  # the same clips: each step fits them better
    assert all(not torch.equal(p, before[k]) for k, p in model.named_parameters() if p.requires_grad)


def test_a_batch_without_flow_is_one_clear_error():
    model = _model()
    with pytest.raises(ConfigError, match=r"FlowPredictor trains on each clip's optical flow.*set DATASET.FLOW"):
        model({"frames": torch.rand(2, 4, 1, 16, 16)})
    with pytest.raises(ValueError, match=r"batch\['flow'\] must be \(B, T-1, 2, H, W\)"):
        model({"frames": torch.rand(2, 4, 1, 16, 16), "flow": torch.rand(2, 4, 2, 16, 16)})


@pytest.mark.parametrize("kw, match", [(dict(clip_length=2), "2 <= history < clip_length"),
                                       (dict(flow_scale=0), "flow_scale must be > 0"),
                                       (dict(norm=3), "norm must be 1"),
                                       (dict(network=dict(type="UNet", in_channels=1, depth=2)),
                                        r"network.in_channels 1 differs .* \(7: frames and flows stacked")])
def test_bad_arguments_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        _model(**kw)


def test_the_map_of_a_moving_texture_is_valid_after_the_history_and_the_same_in_chunks():
    model = _model().eval()
    video = moving_texture(10, speed=1)
    whole, valid = model.predict_video(video, chunk=10)
    assert whole.shape == (10, 1, 32, 32) and valid.tolist() == [False] * 3 + [True] * 7
    assert torch.isnan(whole[~valid]).all()  # no history, no map: never a zero error
    assert torch.isfinite(whole[valid]).all() and (whole[valid] >= 0).all() and whole[valid].max() > 0
    for chunk in (1, 3, 4):
        maps, ok = model.predict_video(video, chunk=chunk)
        assert ok.tolist() == valid.tolist()
        torch.testing.assert_close(maps[valid], whole[valid], rtol=1e-5, atol=1e-5)


def test_training_and_streaming_give_the_network_the_same_frames_and_flows():
    """Frame t's map reads frames t-3..t-1 and the 2 flows between them, the inputs a training clip
    ending at t gives, and is the endpoint error of the network's flow against the flow into t."""
    model = _model().eval()
    video = moving_texture(8, speed=2, seed=1)
    seen = []
    model.net.register_forward_hook(lambda m, args, out: seen.append((args[0].clone(), out.clone())))
    maps, valid = model.predict_video(video, chunk=8)
    (inputs, outputs), = seen  # one forward pass: the 5 windows of frames 3..7
    t = 6
    model({**_clips([t - 3], video)})  # a training clip ending at frame t
    torch.testing.assert_close(seen[-1][0][0], inputs[t - 3])
    measured = _flows(video)[t]
    expected = torch.linalg.vector_norm(outputs[t - 3] * model.flow_scale - measured, dim=0, keepdim=True)
    torch.testing.assert_close(maps[t], expected)


def test_a_network_that_predicts_no_motion_maps_the_flow_speed():
    model = _model().eval()
    with torch.no_grad():
        model.net.head.weight.zero_()
        model.net.head.bias.zero_()
    video = moving_texture(7, speed=2)
    maps, valid = model.predict_video(video, chunk=3)
    speed, speed_valid = FlowSpeed(flow=FLOW).predict_video(video, chunk=7)
    assert speed_valid[valid].all()
    torch.testing.assert_close(maps[valid], speed[valid])
    assert speed[valid].mean() > 1  # the texture moves: the check compares real flows


# the recipe's run, tiny: 32x32 frames, 2 steps, no plots or report
_TINY_RUN = ("DATASET.IMAGE_SIZE", "[32, 32]", "TRAIN.MAX_STEPS", "2", "EVAL.PLOTS", "False", "EVAL.REPORT", "False",
             "TRAIN.TENSORBOARD", "False", "LOG.PROGRESS", "False")


def test_the_recipe_trains_on_the_generated_scene_and_scores_its_maps(tmp_path, tiny_synthetic):
    out = tmp_path / "run"
    train_in_process(REPO / "configs" / "flow_predictor.yaml", tiny_synthetic, out, *_TINY_RUN,
                     "DATASET.CACHE_DIR", str(tmp_path / "cache"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"]["error"].startswith("CELL_TOP")
    assert metrics["frames_unscored"] == 4 * 4  # 4 test videos, each without a map for its first 4 frames
    assert 0.0 <= metrics["auc_micro"] <= 1.0
    assert load_checkpoint(out / "checkpoints" / "last.pth")["meta"]["model_name"] == "FlowPredictor"


@pytest.mark.parametrize("flow, message", [
    (["DATASET.FLOW.type", "none"], "FlowPredictor trains on optical flow: set DATASET.FLOW to the flow it computes"),
    (["DATASET.FLOW.type", "farneback", "DATASET.FLOW.preset", "default"],
     "DATASET.FLOW {'type': 'farneback', 'preset': 'default'} differs from the flow FlowPredictor computes at test "
     "time, {'type': 'dis', 'preset': 'medium'}"),
])
def test_the_recipe_without_its_dataset_flow_ends_in_one_clear_error_before_reading_a_video(
        tmp_path, tiny_synthetic, capsys, monkeypatch, flow, message):
    code, err = run_tool_in_process(capsys, monkeypatch, "train.py", "--cfg", REPO / "configs" / "flow_predictor.yaml",
                                    "DATASET.ROOT", tiny_synthetic, "SYSTEM.OUTPUT_DIR", tmp_path / "run",
                                    "DATASET.CACHE_DIR", tmp_path / "cache", *flow, *_TINY_RUN)
    assert_one_clear_error(code, err, message)
    assert not (tmp_path / "cache").exists()  # refused at startup: no video decoded, no flow computed
