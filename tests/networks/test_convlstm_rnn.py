"""ConvLSTMRNN: the nn.LSTM-style ConvLSTM, checked against torch.nn.LSTM on 1x1 maps."""
import pytest
import torch

from pyanomaly.networks.meta.convlstm_rnn import ConvLSTMRNN
from pyanomaly.registry import NETWORKS, build


def _pair(num_layers=2, bidirectional=False, batch_first=False, input_size=3, hidden_size=4):
    """A torch.nn.LSTM and the kernel-1 ConvLSTMRNN made from it by ``from_lstm``."""
    torch.manual_seed(0)
    ref = torch.nn.LSTM(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                        batch_first=batch_first)
    return ref, ConvLSTMRNN.from_lstm(ref)


def _spatial(t):
    return t[..., None, None]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_hx", [False, True])
def test_kernel_one_on_1x1_maps_equals_torch_lstm(bidirectional, batch_first, with_hx):
    ref, net = _pair(num_layers=2, bidirectional=bidirectional, batch_first=batch_first)
    d = 2 if bidirectional else 1
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 3, generator=gen) if batch_first else torch.randn(5, 2, 3, generator=gen)
    hx = (torch.randn(2 * d, 2, 4, generator=gen), torch.randn(2 * d, 2, 4, generator=gen)) if with_hx else None
    out_ref, (h_ref, c_ref) = ref(x, hx)
    out, (h, c) = net(_spatial(x), None if hx is None else tuple(_spatial(t) for t in hx))
    assert out.shape == (*out_ref.shape, 1, 1) and h.shape == (*h_ref.shape, 1, 1)
    torch.testing.assert_close(out[..., 0, 0], out_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h[..., 0, 0], h_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c[..., 0, 0], c_ref, atol=1e-6, rtol=1e-5)
    # gradients agree too (the same function of the same weights)
    out_ref.pow(2).sum().backward()
    out.pow(2).sum().backward()
    torch.testing.assert_close(net.cells[0].conv.weight.grad[:, :3, 0, 0], ref.weight_ih_l0.grad, atol=1e-5, rtol=1e-4)


def test_equals_torch_lstm_without_grad_and_unbatched():
    ref, net = _pair(num_layers=2, bidirectional=True)
    x = torch.randn(6, 3)  # unbatched (T, C)
    with torch.no_grad():  # the cell's inference fast path
        out_ref, (h_ref, c_ref) = ref(x)
        out, (h, c) = net(_spatial(x))
    assert out.shape == (6, 8, 1, 1) and h.shape == (4, 4, 1, 1)
    torch.testing.assert_close(out[..., 0, 0], out_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c[..., 0, 0], c_ref, atol=1e-6, rtol=1e-5)


def test_spatial_shapes_directions_and_final_states():
    torch.manual_seed(0)
    net = build(NETWORKS, dict(type="ConvLSTMRNN", input_size=2, hidden_size=3, num_layers=2, bidirectional=True,
                               kernel_size=3, batch_first=True))
    x = torch.rand(4, 6, 2, 5, 7)  # (B, T, C, H, W)
    out, (h, c) = net(x)
    assert out.shape == (4, 6, 6, 5, 7)
    assert h.shape == c.shape == (4, 4, 3, 5, 7)  # (D * layers, B, hidden, H, W), never batch-first
    # last layer: forward direction ends at the last step, backward at the first
    torch.testing.assert_close(out[:, -1, :3], h[2])
    torch.testing.assert_close(out[:, 0, 3:], h[3])
    # the backward direction reads the reversed sequence with the reverse cell
    single = ConvLSTMRNN(2, 3, kernel_size=3, batch_first=True)
    single.cells[0].load_state_dict(net.cells[1].state_dict())
    back, _ = single(x.flip(1))
    layer0, _ = _first_layer(net)(x)
    torch.testing.assert_close(layer0[:, :, 3:], back.flip(1))


def _first_layer(net):
    one = ConvLSTMRNN(net.input_size, net.hidden_size, num_layers=1, bidirectional=True, batch_first=True,
                      kernel_size=net.kernel_size)
    one.cells[0].load_state_dict(net.cells[0].state_dict())
    one.cells[1].load_state_dict(net.cells[1].state_dict())
    return one


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    plain = ConvLSTMRNN(2, 3, num_layers=2, kernel_size=3)
    dropped = ConvLSTMRNN(2, 3, num_layers=2, kernel_size=3, dropout=0.5)
    dropped.load_state_dict(plain.state_dict())
    x = torch.rand(4, 2, 2, 5, 5)
    ref, (h_ref, _) = plain(x)
    torch.testing.assert_close(dropped.eval()(x)[0], ref)
    out, (h, _) = dropped.train()(x)
    assert not torch.allclose(out, ref)
    torch.testing.assert_close(h[0], h_ref[0])  # the first layer's output is not dropped
    with pytest.warns(UserWarning, match="between layers"):
        ConvLSTMRNN(2, 3, num_layers=1, dropout=0.3)


def test_state_continues_a_stream():
    torch.manual_seed(0)
    net = ConvLSTMRNN(2, 3, num_layers=2, kernel_size=3)
    x = torch.rand(8, 2, 2, 5, 5)
    whole, (h, c) = net(x)
    first, state = net(x[:3])
    second, (h2, c2) = net(x[3:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole)
    torch.testing.assert_close(h2, h)
    torch.testing.assert_close(c2, c)


def test_bad_inputs_are_explained():
    net = ConvLSTMRNN(2, 3, num_layers=2, kernel_size=3)
    with pytest.raises(ValueError, match="h_0 must have shape"):
        net(torch.rand(4, 2, 2, 5, 5), (torch.zeros(1, 2, 3, 5, 5), torch.zeros(1, 2, 3, 5, 5)))
    with pytest.raises(ValueError, match="input channels"):
        net(torch.rand(4, 2, 3, 5, 5))
    with pytest.raises(ValueError, match="5-D"):
        net(torch.rand(4, 2))
    with pytest.raises(ValueError, match="odd"):
        ConvLSTMRNN(2, 3, kernel_size=2)


@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("batch_first", [False, True])
def test_from_lstm_copies_layers_layout_and_weights(num_layers, batch_first):
    ref, net = _pair(num_layers=num_layers, batch_first=batch_first)
    assert (net.num_layers, net.batch_first, net.kernel_size) == (num_layers, batch_first, (1, 1))
    x = torch.randn(2, 7, 3) if batch_first else torch.randn(7, 2, 3)
    out_ref, (h_ref, c_ref) = ref(x)
    out, (h, c) = net(_spatial(x))
    torch.testing.assert_close(out[..., 0, 0], out_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h[..., 0, 0], h_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c[..., 0, 0], c_ref, atol=1e-6, rtol=1e-5)
    # the weights are copies: changing the LSTM leaves the ConvLSTMRNN as it was
    with torch.no_grad():
        ref.weight_ih_l0.add_(1.0)
    torch.testing.assert_close(net(_spatial(x))[0], out)


def test_from_lstm_without_bias_and_refusals():
    torch.manual_seed(0)
    ref = torch.nn.LSTM(3, 4, num_layers=2, bias=False, bidirectional=True, dropout=0.25).eval()
    net = ConvLSTMRNN.from_lstm(ref)
    assert net.cells[0].conv.bias is None and net.dropout == 0.25 and not net.training
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(net(_spatial(x))[0][..., 0, 0], ref(x)[0], atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="proj_size"):
        ConvLSTMRNN.from_lstm(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(TypeError, match="torch.nn.LSTM"):
        ConvLSTMRNN.from_lstm(torch.nn.GRU(3, 4))
