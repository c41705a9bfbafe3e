"""ConvLSTMCell, ConvLSTM and the ConvLSTMForecaster (Shi et al. 2015)."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from pyanomaly.networks.meta import ConvLSTM, ConvLSTMCell, ConvLSTMForecaster

ROOT = Path(__file__).resolve().parents[2]


def _randomise_peepholes(module):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.split(".")[-1] in ("w_ci", "w_cf", "w_co"):
                p.normal_()


# -- the cell ------------------------------------------------------------------------------
def test_cell_shapes_and_zero_state():
    cell = ConvLSTMCell(3, 5, 3)
    h0, c0 = cell.init_hidden(2, (6, 7))
    assert h0.shape == c0.shape == (2, 5, 6, 7)
    assert h0.abs().sum() == 0 and c0.abs().sum() == 0
    assert h0.data_ptr() != c0.data_ptr()
    x = torch.rand(2, 3, 6, 7)
    h, c = cell(x, h0, c0)
    assert h.shape == c.shape == (2, 5, 6, 7)
    h2, c2 = cell(x)  # omitted state means zeros
    assert torch.equal(h, h2) and torch.equal(c, c2)


@pytest.mark.parametrize("peephole", [False, True])
def test_cell_matches_shi_equations(peephole):
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 3, (3, 5), peephole=peephole)
    _randomise_peepholes(cell)
    x, h, c = torch.randn(2, 2, 5, 6), torch.randn(2, 3, 5, 6), torch.randn(2, 3, 5, 6)
    w, b = cell.conv.weight, cell.conv.bias
    conv = lambda inp, k: F.conv2d(inp, w[k * 3:(k + 1) * 3], b[k * 3:(k + 1) * 3], padding=(1, 2))
    xh = torch.cat([x, h], 1)
    peep = (lambda name, state: getattr(cell, name) * state) if peephole else (lambda name, state: 0)
    i = torch.sigmoid(conv(xh, 0) + peep("w_ci", c))
    f = torch.sigmoid(conv(xh, 1) + peep("w_cf", c))
    c_ref = f * c + i * torch.tanh(conv(xh, 2))
    o = torch.sigmoid(conv(xh, 3) + peep("w_co", c_ref))
    h_ref = o * torch.tanh(c_ref)
    h_new, c_new = cell(x, h, c)
    torch.testing.assert_close(c_new, c_ref)
    torch.testing.assert_close(h_new, h_ref)


def test_cell_forget_bias_starts_at_one_and_bias_is_optional():
    cell = ConvLSTMCell(1, 4, 3)
    assert torch.equal(cell.conv.bias[4:8], torch.ones(4))
    assert torch.equal(cell.conv.bias[:4], torch.zeros(4))
    assert ConvLSTMCell(1, 4, 3, bias=False).conv.bias is None


@pytest.mark.parametrize("peephole", [False, True])
def test_cell_gradcheck(peephole):
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 2, 3, peephole=peephole).double()
    _randomise_peepholes(cell)
    names = [n for n, _ in cell.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in cell.named_parameters())
    x, h, c = (torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True) for _ in range(3))

    def f(x, h, c, *ps):
        return functional_call(cell, dict(zip(names, ps)), (x, h, c))

    assert torch.autograd.gradcheck(f, (x, h, c) + params, eps=1e-6, atol=1e-5)


def test_peephole_weights_receive_gradients():
    torch.manual_seed(0)
    lstm = ConvLSTM(1, [3, 3], 3, peephole=True)
    out, _ = lstm(torch.rand(2, 3, 1, 6, 6))
    out.pow(2).sum().backward()
    peepholes = {n: p for n, p in lstm.named_parameters() if n.split(".")[-1].startswith("w_c")}
    assert len(peepholes) == 6  # 3 per layer
    for name, p in peepholes.items():
        assert p.shape == (1, 3, 1, 1)
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert not any("w_c" in n for n, _ in ConvLSTM(1, [3, 3], 3).named_parameters())


def test_cell_rejects_even_kernels_and_wrong_channels():
    with pytest.raises(ValueError, match="odd"):
        ConvLSTMCell(1, 2, 4)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        ConvLSTMCell(3, 2, 3)(torch.rand(1, 2, 4, 4))


# -- the stack -----------------------------------------------------------------------------
def test_sequence_outputs_last_layer_or_all_layers():
    torch.manual_seed(0)
    x = torch.rand(2, 4, 1, 6, 8)
    lstm = ConvLSTM(1, [3, 5], 3)
    out, (h, c) = lstm(x)
    assert out.shape == (2, 4, 5, 6, 8)
    assert h.shape == c.shape == (2, 5, 6, 8)
    assert torch.equal(out[:, -1], h)
    lstm.return_all_layers = True
    outs, states = lstm(x)
    assert [o.shape for o in outs] == [(2, 4, 3, 6, 8), (2, 4, 5, 6, 8)]
    assert len(states) == 2 and states[0][0].shape == (2, 3, 6, 8)
    assert torch.equal(outs[-1], out)
    assert torch.equal(outs[0][:, -1], states[0][0])


def test_int_hidden_channels_is_one_layer_and_per_layer_kernels():
    assert ConvLSTM(2, 4, 3).num_layers == 1
    lstm = ConvLSTM(2, [4, 4], [3, 5])
    assert [c.kernel_size for c in lstm.cells] == [(3, 3), (5, 5)]
    assert [c.kernel_size for c in ConvLSTM(2, [4, 4, 4], (3, 5)).cells] == [(3, 5)] * 3


@pytest.mark.parametrize("layers", [[4], [3, 4]])
def test_chunked_stream_equals_one_pass(layers):
    torch.manual_seed(0)
    lstm = ConvLSTM(2, layers, 3, return_all_layers=True, peephole=True)
    _randomise_peepholes(lstm)
    x = torch.rand(2, 7, 2, 5, 5)
    whole, final = lstm(x)
    state, parts = None, []
    for s, e in ((0, 3), (3, 4), (4, 7)):
        out, state = lstm(x[:, s:e], hidden_state=state)
        parts.append(out[-1])
    torch.testing.assert_close(torch.cat(parts, dim=1), whole[-1])
    for (h1, c1), (h2, c2) in zip(state, final):
        torch.testing.assert_close(h1, h2)
        torch.testing.assert_close(c1, c2)


def test_one_layer_accepts_a_bare_state_and_the_state_matters():
    torch.manual_seed(0)
    lstm = ConvLSTM(1, 3, 3)
    x = torch.rand(1, 5, 1, 4, 4)
    whole, _ = lstm(x)
    _, state = lstm(x[:, :2])
    rest, _ = lstm(x[:, 2:], hidden_state=state)
    torch.testing.assert_close(rest, whole[:, 2:])
    fresh, _ = lstm(x[:, 2:])
    assert not torch.allclose(fresh, whole[:, 2:])


def test_multi_layer_state_mismatch_is_explained():
    lstm = ConvLSTM(1, [2, 2], 3)
    x = torch.rand(2, 2, 1, 4, 4)  # a batch of 2 must not pass for a list of 2 layers
    _, last_layer_only = lstm(x)
    with pytest.raises(ValueError, match="return_all_layers=True"):
        lstm(x, hidden_state=last_layer_only)


def test_batch_first_false_is_the_transposed_problem():
    torch.manual_seed(0)
    a = ConvLSTM(1, [2, 3], 3, batch_first=True, return_all_layers=True)
    b = ConvLSTM(1, [2, 3], 3, batch_first=False, return_all_layers=True)
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 4, 1, 5, 5)
    out_a, st_a = a(x)
    out_b, st_b = b(x.transpose(0, 1))
    assert out_b[1].shape == (4, 2, 3, 5, 5)
    for oa, ob in zip(out_a, out_b):
        torch.testing.assert_close(ob, oa.transpose(0, 1))
    torch.testing.assert_close(st_b[1][1], st_a[1][1])


def test_step_and_effective_step_on_a_4d_input():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 5, 5)
    lstm = ConvLSTM(1, [2, 3], 3, step=4, effective_step=[4, 2])
    outputs, (h, c) = lstm(x)
    assert len(outputs) == 2 and outputs[0].shape == (2, 3, 5, 5)
    ref = ConvLSTM(1, [2, 3], 3)
    ref.load_state_dict(lstm.state_dict())
    seq, (h_ref, _) = ref(x.unsqueeze(1).repeat(1, 4, 1, 1, 1))
    torch.testing.assert_close(outputs[0], seq[:, 1])  # step 2 (sorted, counted from 1)
    torch.testing.assert_close(outputs[1], seq[:, 3])  # step 4
    torch.testing.assert_close(h, h_ref)
    assert not torch.allclose(outputs[0], outputs[1])


def test_default_step_returns_the_single_output():
    torch.manual_seed(0)
    lstm = ConvLSTM(1, 4, 3)
    x = torch.rand(2, 1, 5, 5)
    outputs, (h, c) = lstm(x)
    h_cell, c_cell = lstm.cells[0](x)
    assert len(outputs) == 1
    torch.testing.assert_close(outputs[0], h_cell)
    torch.testing.assert_close(c, c_cell)


def test_effective_step_out_of_range_and_bad_ranks_raise():
    with pytest.raises(ValueError, match="effective_step"):
        ConvLSTM(1, 2, 3, step=2, effective_step=[3])
    with pytest.raises(ValueError, match="effective_step"):
        ConvLSTM(1, 2, 3, step=2, effective_step=[0])
    with pytest.raises(ValueError, match="4-D"):
        ConvLSTM(1, 2, 3)(torch.rand(2, 4, 4))


# -- the encoder-forecaster ----------------------------------------------------------------
@pytest.mark.parametrize("downsample,skip", [(1, True), (2, False), (4, True)])
def test_forecaster_shapes_range_and_gradients(downsample, skip):
    torch.manual_seed(0)
    net = ConvLSTMForecaster(in_channels=2, hidden_channels=(4, 4), downsample=downsample,
                             base_channels=4, skip=skip)
    x = torch.rand(3, 4, 2, 16, 8)
    y = net(x)
    assert y.shape == (3, 2, 16, 8)
    assert y.min() >= 0 and y.max() <= 1
    y.mean().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert net.encoding_rnn.cells[0].conv.weight.grad.abs().sum() > 0


def test_forecaster_reads_the_whole_history_and_checks_sizes():
    torch.manual_seed(0)
    net = ConvLSTMForecaster(hidden_channels=(4,), base_channels=4)
    x = torch.rand(1, 4, 1, 8, 8)
    y = net(x)
    x2 = x.clone()
    x2[:, 0] = 1 - x2[:, 0]  # only the oldest frame changes
    assert not torch.allclose(net(x2), y)
    with pytest.raises(ValueError, match="multiples of 2"):
        net(torch.rand(1, 4, 1, 9, 8))
    with pytest.raises(ValueError, match="power of two"):
        ConvLSTMForecaster(downsample=3)


def test_convlstm_config_builds_a_working_frame_predictor():
    from pyanomaly.config import cfg_to_dict, load_cfg
    from pyanomaly.registry import MODELS, build

    cfg = load_cfg(ROOT / "configs" / "convlstm.yaml")
    assert cfg.MODEL.NAME == "FramePredictor"
    model = build(MODELS, dict(type=cfg.MODEL.NAME, **cfg_to_dict(cfg.MODEL.ARGS)),
                  clip_length=cfg.DATASET.CLIP_LENGTH)
    assert isinstance(model.net, ConvLSTMForecaster)
    frames = torch.rand(1, cfg.DATASET.CLIP_LENGTH, 1, 16, 16)
    losses = model({"frames": frames})
    assert set(losses) == {"loss_IntensityLoss", "loss_GradientLoss"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    pred, valid, _ = model.predict_stream(torch.rand(7, 1, 16, 16))
    assert pred.shape == (7, 1, 16, 16)
    assert valid.tolist() == [False] * 4 + [True] * 3
