"""AnoPCN parts: the predictive coding module and the error refinement module."""
import pytest
import torch

from pyanomaly.networks.meta import ErrorRefinementModule, PredictiveCodingModule


def tiny_pcm(**kw):
    kw = {"hidden_channels": (4,), "base_channels": 4, **kw}
    return PredictiveCodingModule(**kw)


@pytest.fixture
def frames():
    torch.manual_seed(0)
    return torch.rand(2, 6, 1, 8, 8)


# -- PCM -----------------------------------------------------------------------------------
def test_pcm_predictions_shapes_range_and_first_frame(frames):
    torch.manual_seed(0)
    pcm = tiny_pcm()
    preds, state = pcm(frames)
    assert preds.shape == frames.shape
    assert torch.equal(preds[:, 0], torch.zeros_like(preds[:, 0]))  # nothing to predict from yet
    assert preds[:, 1:].min() > 0 and preds[:, 1:].max() < 1
    assert torch.equal(state["frame"], frames[:, -1])
    assert state["prediction"].shape == (2, 1, 8, 8)
    assert state["rnn"][0][0].shape == (2, 4, 4, 4)  # ConvLSTM at H/2


def test_pcm_is_causal(frames):
    torch.manual_seed(0)
    pcm = tiny_pcm(hidden_channels=(4, 4), downsample=4)
    preds, _ = pcm(frames)
    changed = frames.clone()
    changed[:, 3:] = torch.rand_like(changed[:, 3:])
    preds2, _ = pcm(changed)
    torch.testing.assert_close(preds2[:, :4], preds[:, :4])  # made before frame 3 was read
    assert not torch.allclose(preds2[:, 4:], preds[:, 4:])


def test_pcm_chunked_stream_equals_one_pass(frames):
    torch.manual_seed(0)
    pcm = tiny_pcm(peephole=True)
    whole, final = pcm(frames)
    state, parts = None, []
    for s, e in ((0, 1), (1, 4), (4, 6)):
        p, state = pcm(frames[:, s:e], state)
        parts.append(p)
    torch.testing.assert_close(torch.cat(parts, dim=1), whole)
    torch.testing.assert_close(state["prediction"], final["prediction"])


def test_pcm_reads_its_previous_prediction_error(frames):
    torch.manual_seed(0)
    pcm = tiny_pcm()
    _, state = pcm(frames[:, :3])
    nxt, _ = pcm.step(frames[:, 3], state)
    wrong = dict(state, prediction=1 - state["prediction"])  # same memory, different error
    nxt_wrong, _ = pcm.step(frames[:, 3], wrong)
    assert not torch.allclose(nxt, nxt_wrong)


@pytest.mark.parametrize("motion", [True, False])
def test_pcm_motion_input_and_gradients(frames, motion):
    torch.manual_seed(0)
    pcm = tiny_pcm(motion=motion, in_channels=2)
    assert pcm.encoder.stem[0].in_channels == 2 * (4 if motion else 3)
    x = torch.rand(1, 4, 2, 8, 8)
    preds, _ = pcm(x)
    (preds[:, 1:] - x[:, 1:]).pow(2).mean().backward()
    for name, p in pcm.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert pcm.rnn.cells[0].conv.weight.grad.abs().sum() > 0


def test_pcm_checks_inputs():
    pcm = tiny_pcm()
    with pytest.raises(ValueError, match=r"\(B, T, 1, H, W\)"):
        pcm(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="multiples of 2"):
        pcm(torch.rand(1, 2, 1, 7, 8))


# -- ERM -----------------------------------------------------------------------------------
def test_erm_starts_as_identity_and_learns_a_residual():
    torch.manual_seed(0)
    erm = ErrorRefinementModule(in_channels=1, context_channels=2, base_channels=4, depth=2)
    coarse, context = torch.rand(3, 1, 8, 12).clamp(0.01, 0.99), torch.rand(3, 2, 8, 12)
    torch.testing.assert_close(erm(coarse, context), coarse)
    target = torch.rand(3, 1, 8, 12)
    opt = torch.optim.Adam(erm.parameters(), lr=1e-2)
    before = (erm(coarse, context) - target).pow(2).mean().item()
    for _ in range(5):
        opt.zero_grad()
        (erm(coarse, context) - target).pow(2).mean().backward()
        opt.step()
    out = erm(coarse, context)
    assert out.shape == (3, 1, 8, 12) and out.min() >= 0 and out.max() <= 1
    assert (out - target).pow(2).mean().item() < before


def test_erm_uses_its_context():
    torch.manual_seed(0)
    erm = ErrorRefinementModule(in_channels=1, context_channels=1, base_channels=4, depth=1)
    torch.nn.init.normal_(erm.head.weight)
    coarse = torch.rand(2, 1, 4, 4)
    assert not torch.allclose(erm(coarse, torch.zeros(2, 1, 4, 4)), erm(coarse, torch.ones(2, 1, 4, 4)))


def test_erm_checks_inputs():
    erm = ErrorRefinementModule(in_channels=1, context_channels=2, base_channels=4, depth=2)
    with pytest.raises(ValueError, match="2 context channels, got 0"):
        erm(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="multiples of 4"):
        erm(torch.rand(1, 1, 6, 8), torch.rand(1, 2, 6, 8))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        erm(torch.rand(1, 3, 8, 8), torch.rand(1, 2, 8, 8))
