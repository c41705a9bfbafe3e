"""ConvAE, Memory and MemAE: shapes, the memory's sparse addressing, and learning to reconstruct."""
import math

import pytest
import torch
import torch.nn.functional as F

from pyanomaly.networks.meta import ConvAE, MemAE, Memory
from pyanomaly.networks.meta.memory import hard_shrink
from pyanomaly.registry import NETWORKS, build


@pytest.mark.parametrize("activation", ["sigmoid", "none"])
def test_conv_ae_reconstructs_a_window_of_the_same_shape(activation):
    net = ConvAE(in_channels=2, frames=4, base_channels=4, depth=3, latent_channels=5, activation=activation)
    x = torch.randn(3, 4, 2, 16, 32)
    code = net.encode(x)
    assert code.shape == (3, 5, 2, 4)  # 16x32 halved 3 times, latent_channels channels
    out = net.decode(code)
    assert out.shape == x.shape
    if activation == "sigmoid":
        assert out.min() >= 0 and out.max() <= 1
    else:
        assert out.min() < 0  # flow: an unbounded output


def test_conv_ae_refuses_a_window_of_another_shape():
    net = ConvAE(in_channels=1, frames=4, base_channels=4, depth=2)
    with pytest.raises(ValueError, match=r"expects \(B, 4, 1, H, W\)"):
        net(torch.rand(2, 3, 1, 16, 16))
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.rand(2, 4, 1, 18, 16))
    with pytest.raises(ValueError, match="activation must be one of"):
        ConvAE(activation="tanh")


def test_hard_shrink_cuts_below_the_threshold_and_keeps_the_rest():
    w = torch.tensor([0.0, 0.01, 0.02, 0.5])
    out = hard_shrink(w, 0.02)
    assert out[:3].tolist() == [0.0, 0.0, 0.0]
    assert out[3] == pytest.approx(0.5, rel=1e-6)


def test_memory_addressing_is_sparse_sums_to_one_and_reads_the_slots():
    torch.manual_seed(0)
    memory = Memory(slots=50, dim=8, threshold=0.025)
    codes = torch.randn(2, 8, 3, 4)
    read, weights = memory(codes)
    assert read.shape == (2, 8, 3, 4) and weights.shape == (2, 50, 3, 4)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, 3, 4))
    dense = F.softmax(F.normalize(codes.permute(0, 2, 3, 1).reshape(-1, 8), dim=1)
                      @ F.normalize(memory.items, dim=1).t() / memory.temperature, dim=1)
    assert (dense > 0).all()  # without shrinkage every slot is used...
    zeros = (weights == 0).float().mean()
    assert 0.2 < zeros < 1.0, f"shrinkage cut {zeros:.0%} of the weights"  # ...with it, many are not
    # each location reads the weighted sum of the slots
    flat = weights.permute(0, 2, 3, 1).reshape(-1, 50)
    torch.testing.assert_close(read.permute(0, 2, 3, 1).reshape(-1, 8), flat @ memory.items)
    # entropy: finite, lower than that of the dense weights
    assert torch.isfinite(Memory.entropy(weights))
    assert Memory.entropy(weights) < Memory.entropy(dense)


def test_a_lower_temperature_peaks_the_addressing():
    torch.manual_seed(0)
    codes = torch.randn(64, 8)
    flat, peaked = Memory(slots=200, dim=8, threshold=0.0), Memory(slots=200, dim=8, threshold=0.0, temperature=0.1)
    peaked.load_state_dict(flat.state_dict())
    flat.temperature = 1.0
    # a softmax of cosines over 200 slots cannot exceed e^2 / (e^2 + 199)
    assert flat(codes)[1].max() <= math.exp(2) / (math.exp(2) + 199)
    assert peaked(codes)[1].max(dim=1).values.min() > 0.05
    assert Memory.entropy(peaked(codes)[1]) < Memory.entropy(flat(codes)[1])


def test_memory_keeps_the_weights_of_a_code_equally_close_to_every_slot():
    memory = Memory(slots=10, dim=4, threshold=0.2)  # above 1/10: a uniform row would vanish
    read, weights = memory(torch.zeros(1, 4, 1, 1))
    torch.testing.assert_close(weights.flatten(), torch.full((10,), 0.1))


def test_memae_exposes_its_addressing_weights_and_learns():
    torch.manual_seed(0)
    net = build(NETWORKS, dict(type="MemAE", in_channels=1, frames=2, base_channels=4, depth=2, slots=16,
                               threshold=0.02))
    assert net.weights is None
    x = torch.rand(4, 2, 1, 16, 16)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    items = net.memory.items.detach().clone()
    losses = []
    for _ in range(3):
        out = net(x)
        assert net.weights.shape == (4, 16, 4, 4)
        loss = F.mse_loss(out, x) + 0.0002 * Memory.entropy(net.weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert not torch.equal(net.memory.items, items), "the memory slots did not learn"
    assert losses[-1] < losses[0], f"the loss did not fall: {losses}"
