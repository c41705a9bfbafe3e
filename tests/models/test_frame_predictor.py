"""FramePredictor: the FFP-style next-frame method, plain and residual."""
import pytest
import torch

from pyanomaly.registry import MODELS, NETWORKS, build


class ConstantNet(torch.nn.Module):
    """History ``(B, T, C, H, W)`` -> a constant frame ``value`` (plus one learnable offset)."""

    def __init__(self, value: float = 0.5):
        super().__init__()
        self.value = value
        self.offset = torch.nn.Parameter(torch.zeros(()))

    def forward(self, history):
        return torch.full_like(history[:, -1], self.value) + self.offset


@pytest.fixture(autouse=True)
def _constant_net():
    """Registered for these tests only (tests/networks checks every registered network)."""
    NETWORKS.register_module(name="ConstantNet", module=ConstantNet, force=True)
    yield
    NETWORKS.module_dict.pop("ConstantNet", None)


def model(residual, value=0.5):
    return build(MODELS, dict(type="FramePredictor", network=dict(type="ConstantNet", value=value), clip_length=3,
                              residual=residual))


def test_residual_output_of_one_half_is_the_copy_last_baseline():
    torch.manual_seed(0)
    frames = torch.rand(7, 1, 8, 8)
    pred, valid, _ = model(True).predict_stream(frames)
    assert valid.tolist() == [False, False] + [True] * 5
    assert torch.equal(pred[2:], frames[1:-1])  # each frame predicted as the one before it, exactly
    plain, _, _ = model(False).predict_stream(frames)
    assert torch.allclose(plain[2:], torch.full_like(plain[2:], 0.5))


def test_residual_change_is_signed_and_clamped():
    history = torch.tensor([0.2, 0.9]).view(1, 2, 1, 1, 1).expand(1, 2, 1, 2, 2).clone()
    assert torch.allclose(model(True, value=0.6).predict(history), torch.full((1, 1, 2, 2), 1.0))  # 0.9 + 0.2, clamped
    assert torch.allclose(model(True, value=0.25).predict(history), torch.full((1, 1, 2, 2), 0.4))  # 0.9 - 0.5


def test_residual_trains_through_the_change():
    torch.manual_seed(0)
    m = model(True, value=0.5)
    clip = torch.rand(2, 3, 1, 8, 8) * 0.5
    losses = m({"frames": clip})
    sum(losses.values()).backward()
    assert m.net.offset.grad is not None and m.net.offset.grad.abs() > 0


def _indexed_clip(length, batch=64):
    """Clips whose frame ``i`` is filled with the value ``i``: ``(batch, length, 1, 2, 2)``."""
    return torch.arange(float(length)).view(1, length, 1, 1, 1).expand(batch, length, 1, 2, 2).clone()


def fast_model(prob, skips=(3,), clip_length=11, history=4):
    return build(MODELS, dict(type="FramePredictor", network=dict(type="ConstantNet"), clip_length=clip_length,
                              history=history, fast_history=dict(prob=prob, skips=list(skips))))


def test_fast_history_shows_every_skipth_frame_up_to_the_last_observed_one():
    torch.manual_seed(0)
    clip = _indexed_clip(11)
    always = fast_model(1.0).train()
    assert always.training_history(clip)[:, :, 0, 0, 0].tolist() == [[0.0, 3.0, 6.0, 9.0]] * 64  # target: frame 10
    never = fast_model(0.0).train()
    assert never.training_history(clip)[:, :, 0, 0, 0].tolist() == [[6.0, 7.0, 8.0, 9.0]] * 64
    mixed = fast_model(0.5, skips=(2, 3)).train().training_history(clip)[:, :, 0, 0, 0]
    kinds = {tuple(row) for row in mixed.tolist()}
    assert kinds == {(6.0, 7.0, 8.0, 9.0), (3.0, 5.0, 7.0, 9.0), (0.0, 3.0, 6.0, 9.0)}  # skips 1, 2 and 3 all drawn
    assert all(fast_model(1.0).eval().training_history(clip)[:, :, 0, 0, 0].tolist()[0] == [6.0, 7.0, 8.0, 9.0]
               for _ in range(3))  # evaluation sees the real history


def test_history_shorter_than_the_clip_sets_what_a_video_needs_before_its_first_prediction():
    m = fast_model(0.5)
    frames = torch.rand(9, 1, 4, 4)
    _, valid, _ = m.predict_stream(frames)
    assert valid.tolist() == [False] * 4 + [True] * 5  # history 4, not clip_length - 1 = 10
    losses = m.train()({"frames": torch.rand(2, 11, 1, 4, 4)})
    assert set(losses) == {"loss_IntensityLoss"} and losses["loss_IntensityLoss"].ndim == 0


def test_bad_fast_history_settings_are_refused():
    with pytest.raises(ValueError, match="DATASET.CLIP_LENGTH >= 11"):
        fast_model(0.5, skips=(3,), clip_length=10)
    with pytest.raises(ValueError, match="fast_history must be"):
        fast_model(0.5, skips=(1,))
    with pytest.raises(ValueError, match="fast_history must be"):
        fast_model(1.5)
    with pytest.raises(ValueError, match="1 <= history < clip_length"):
        fast_model(0.5, history=11)


def test_the_history_length_is_stated_once_and_reaches_a_network_that_takes_it():
    unet = dict(type="UNet", in_channels=1, base_channels=4, depth=2)
    m = build(MODELS, dict(type="FramePredictor", network=unet, clip_length=6))
    assert m.history == 5 and m.net.history == 5  # DATASET.CLIP_LENGTH - 1
    assert build(MODELS, dict(type="FramePredictor", network=unet, clip_length=6, history=3)).net.history == 3
    assert build(MODELS, dict(type="FramePredictor", network=dict(unet, history=5), clip_length=6)).net.history == 5
    with pytest.raises(ValueError, match="MODEL.ARGS.network.history 4 differs .* \\(5"):
        build(MODELS, dict(type="FramePredictor", network=dict(unet, history=4), clip_length=6))
    # a network without a history argument is built as given
    assert build(MODELS, dict(type="FramePredictor", network=dict(type="ConstantNet"), clip_length=6)).history == 5
