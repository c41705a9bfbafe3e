"""FlowConditionedPredictor: a frame predicted from frames and the flows between them, trained and streamed."""
import pytest
import torch

from pyanomaly.deploy.graphs import graph_of
from pyanomaly.errors import ConfigError, ExportError
from pyanomaly.flow import OpticalFlow
from pyanomaly.models import FlowConditionedPredictor
from testutils import moving_texture

FLOW = dict(type="dis", preset="ultrafast")


def _model(**kw):
    torch.manual_seed(0)
    args = dict(network=dict(type="UNet", base_channels=4, depth=2), clip_length=4, flow=FLOW, flow_scale=1.0)
    return FlowConditionedPredictor(**{**args, **kw})


def _clips(starts, video, length=4):
    """Training batch of clips of ``video`` starting at ``starts``, with their flows (as DATASET.FLOW gives)."""
    flows = OpticalFlow(**FLOW).stream(video)[0]
    return {"frames": torch.stack([video[s:s + length] for s in starts]),
            "flow": torch.stack([flows[s + 1:s + length] for s in starts])}


@pytest.mark.parametrize("residual", [False, True])
def test_training_steps_on_clips_with_their_flow_lower_the_loss_and_move_the_weights(residual):
    model = _model(residual=residual, losses={"IntensityLoss": 1.0, "GradientLoss": 1.0}).train()
    batch = _clips([0, 2, 4], moving_texture(8, speed=2))
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = [float(model.train_step(batch, opt)["loss"]) for _ in range(3)]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert all(not torch.equal(p, before[k]) for k, p in model.named_parameters() if p.requires_grad)


def test_a_batch_without_flow_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"FlowConditionedPredictor trains on .*set DATASET.FLOW"):
        _model()({"frames": torch.rand(2, 4, 1, 16, 16)})


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="history >= 2"):
        _model(history=1)
    with pytest.raises(ValueError, match=r"network.out_channels 3 differs .* \(1: frames and flows"):
        _model(network=dict(type="UNet", out_channels=3, depth=2))
    with pytest.raises(ValueError, match=r"built for frames of 1 channels \(MODEL.ARGS.channels\), got 3"):
        _model().predict_from(torch.rand(1, 3, 3, 16, 16), torch.rand(1, 2, 2, 16, 16))


def test_the_prediction_reads_the_flows():
    model = _model().eval()
    frames, flows = torch.rand(2, 3, 1, 16, 16), torch.randn(2, 2, 2, 16, 16)
    with torch.no_grad():
        base = model.predict_from(frames, flows)
        assert base.shape == (2, 1, 16, 16) and 0 <= base.min() and base.max() <= 1
        assert not torch.allclose(model.predict_from(frames, flows + 2.0), base)


def test_streaming_is_causal_the_same_in_chunks_and_reads_what_training_reads():
    model = _model().eval()
    video = moving_texture(9, speed=1, seed=2)
    seen = []
    model.net.register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    whole, valid = model.predict_video(video, chunk=9)
    assert whole.shape == video.shape and valid.tolist() == [False] * 3 + [True] * 6
    assert torch.isfinite(whole[valid]).all()
    for chunk in (1, 2, 5):
        pred, ok = model.predict_video(video, chunk=chunk)
        assert ok.tolist() == valid.tolist()
        torch.testing.assert_close(pred[valid], whole[valid], rtol=1e-5, atol=1e-5)
    inputs = seen[0]  # the first pass: windows of frames 3..8
    t = 7
    model({**_clips([t - 3], video)})  # a training clip ending at frame t
    torch.testing.assert_close(seen[-1][0], inputs[t - 3])


def test_export_refuses_it_rather_than_export_the_network_without_its_flows():
    with pytest.raises(ExportError, match="FlowConditionedPredictor cannot be exported to ONNX: it reads optical flow"):
        graph_of(_model())
