"""SA-ConvLSTM (Lin et al. 2020): the memory module's equations, the stack, the forecaster swap."""
import math
from pathlib import Path

import pytest
import torch

from pyanomaly.networks.meta.convlstm import ConvLSTMCell
from pyanomaly.networks.meta.sa_convlstm import SAConvLSTM, SAConvLSTMCell, SAConvLSTMForecaster

ROOT = Path(__file__).resolve().parents[2]


def _reference_sam(sam, h, m):
    """The SAM of the paper written out with explicit matrices (scaled softmax, as implemented)."""
    b, c, hh, ww = h.shape
    flat = lambda conv, x: conv(x).flatten(2)  # (B, K, N)  # noqa: E731
    q = flat(sam.query, h)
    d = q.shape[1]
    a_h = torch.softmax(q.transpose(1, 2) @ flat(sam.key_h, h) / math.sqrt(d), dim=-1)  # (B, N, N)
    a_m = torch.softmax(q.transpose(1, 2) @ flat(sam.key_m, m) / math.sqrt(d), dim=-1)
    z_h = (flat(sam.value_h, h) @ a_h.transpose(1, 2)).view(b, c, hh, ww)
    z_m = (flat(sam.value_m, m) @ a_m.transpose(1, 2)).view(b, c, hh, ww)
    z = sam.fuse(torch.cat([z_h, z_m], 1))
    i, g, o = sam.gates(torch.cat([z, h], 1)).chunk(3, 1)
    m_new = (1 - torch.sigmoid(i)) * m + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * m_new, m_new


def test_cell_is_convlstm_then_memory_module():
    torch.manual_seed(0)
    cell = SAConvLSTMCell(2, 4, 3, attention_channels=2)
    assert isinstance(cell.lstm, ConvLSTMCell)  # the one ConvLSTM cell, reused
    x, h, c, m = torch.randn(2, 2, 5, 6), torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6)
    h_new, c_new, m_new = cell(x, h, c, m)
    h_lstm, c_lstm = cell.lstm(x, h, c)
    torch.testing.assert_close(c_new, c_lstm)
    h_ref, m_ref = _reference_sam(cell.memory, h_lstm, m)
    torch.testing.assert_close(h_new, h_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(m_new, m_ref, atol=1e-5, rtol=1e-4)
    zeros = cell.init_hidden(2, (5, 6))
    assert len(zeros) == 3 and all(z.shape == (2, 4, 5, 6) and z.abs().sum() == 0 for z in zeros)
    torch.testing.assert_close(cell(x), cell(x, *zeros))


def test_attention_reaches_every_position_in_one_step():
    """A ConvLSTM step is local (3x3); the memory module mixes all positions."""
    torch.manual_seed(0)
    cell = SAConvLSTMCell(1, 4, 3)
    x = torch.rand(1, 1, 12, 12)
    changed = x.clone()
    changed[..., 11, 11] += 1.0  # far corner
    plain = lambda inp: cell.lstm(inp)[0][..., 0, 0]  # noqa: E731
    torch.testing.assert_close(plain(x), plain(changed))
    assert not torch.allclose(cell(x)[0][..., 0, 0], cell(changed)[0][..., 0, 0])


def test_stack_matches_the_convlstm_sequence_api():
    torch.manual_seed(0)
    stack = SAConvLSTM(2, [3, 4], kernel_size=3, return_all_layers=True)
    x = torch.rand(2, 7, 2, 6, 6)
    outs, states = stack(x)
    assert [o.shape for o in outs] == [(2, 7, 3, 6, 6), (2, 7, 4, 6, 6)]
    assert [len(s) for s in states] == [3, 3]
    torch.testing.assert_close(outs[1][:, -1], states[1][0])
    # a stream in chunks equals one pass
    first, st = stack(x[:, :3])
    second, _ = stack(x[:, 3:], hidden_state=st)
    torch.testing.assert_close(torch.cat([first[1], second[1]], 1), outs[1])
    # time-major layout and last-layer-only outputs
    tm = SAConvLSTM(2, [3, 4], kernel_size=3, batch_first=False)
    tm.load_state_dict(stack.state_dict())
    out, (h, c, m) = tm(x.transpose(0, 1))
    torch.testing.assert_close(out.transpose(0, 1), outs[1])
    # repeated 4-D input
    rep = SAConvLSTM(2, 3, kernel_size=3, step=4, effective_step=[2, 4])
    picked, _ = rep(torch.rand(2, 2, 6, 6))
    assert len(picked) == 2 and picked[0].shape == (2, 3, 6, 6)
    with pytest.raises(ValueError, match=r"\(h, c, m\) triples"):
        stack(x, hidden_state=[(torch.zeros(2, 3, 6, 6), torch.zeros(2, 3, 6, 6))] * 2)


def test_forecaster_swaps_in_the_attention_stacks():
    torch.manual_seed(0)
    net = SAConvLSTMForecaster(hidden_channels=(4, 4), base_channels=4, downsample=2, attention_channels=2)
    assert isinstance(net.encoding_rnn, SAConvLSTM) and isinstance(net.forecasting_rnn, SAConvLSTM)
    assert net.encoding_rnn.cells[0].attention_channels == 2
    nxt = net(torch.rand(2, 4, 1, 16, 16))
    assert nxt.shape == (2, 1, 16, 16) and 0 <= nxt.min() and nxt.max() <= 1


def test_frame_predictor_config_uses_it_by_name(tmp_path):
    """configs/convlstm.yaml with the network swapped on the command line builds and trains."""
    from pyanomaly.config import load_cfg
    from pyanomaly.models.build import build_model
    cfg = load_cfg(str(ROOT / "configs" / "convlstm.yaml"),
                   ["MODEL.ARGS.network.type", "SAConvLSTMForecaster", "MODEL.ARGS.network.hidden_channels", "[4, 4]"])
    model = build_model(cfg, torch.device("cpu"))
    assert isinstance(model.net, SAConvLSTMForecaster)
    clip = torch.rand(2, cfg.DATASET.CLIP_LENGTH, 1, 16, 16)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    losses = model.train_step({"frames": clip}, opt)
    assert torch.isfinite(losses["loss"])
    pred, valid, _ = model.eval().predict_stream(clip[0])
    assert pred.shape == clip[0].shape and valid.tolist() == [False] * (cfg.DATASET.CLIP_LENGTH - 1) + [True]
