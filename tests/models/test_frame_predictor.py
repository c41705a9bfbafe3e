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
