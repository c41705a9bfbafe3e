"""The walk-through's ConvLSTM API (convlstm-pytorch-walkthrough.txt), run through pyanomaly.compat.convlstm.

The calls are the document's; its example input (32, 10, 64, 128, 128) is shrunk in time,
batch and space so that it runs on a CPU in a moment (the constructor call is unchanged).
"""
import pytest
import torch

from pyanomaly.compat.convlstm import ConvLSTM, ConvLSTMCell
from pyanomaly.networks.meta.convlstm import ConvLSTM as OurConvLSTM


def _reference_run(state_dict, x, hidden_dims, kernels):
    """The document's equations on a state dict in its layout (gates i, f, o, g), batch-first input."""
    layer_input, outputs, states = x, [], []
    for l, hidden in enumerate(hidden_dims):
        w, b = state_dict[f"cell_list.{l}.conv.weight"], state_dict[f"cell_list.{l}.conv.bias"]
        bsz, steps, _, height, width = layer_input.shape
        h = torch.zeros(bsz, hidden, height, width)
        c = torch.zeros_like(h)
        hs = []
        for t in range(steps):
            combined = torch.cat([layer_input[:, t], h], dim=1)
            cc = torch.nn.functional.conv2d(combined, w, b, padding=(kernels[l][0] // 2, kernels[l][1] // 2))
            cc_i, cc_f, cc_o, cc_g = torch.split(cc, hidden, dim=1)
            c = torch.sigmoid(cc_f) * c + torch.sigmoid(cc_i) * torch.tanh(cc_g)
            h = torch.sigmoid(cc_o) * torch.tanh(c)
            hs.append(h)
        layer_input = torch.stack(hs, dim=1)
        outputs.append(layer_input)
        states.append((h, c))
    return outputs, states


def test_the_documented_example():
    x = torch.rand((2, 3, 64, 8, 8))                  # the document: torch.rand((32, 10, 64, 128, 128))
    convlstm = ConvLSTM(64, 16, 3, 1, True, True, False)
    _, last_states = convlstm(x)
    h = last_states[0][0]  # 0 for layer index, 0 for h index
    assert isinstance(last_states, list) and len(last_states) == 1
    assert isinstance(last_states[0], list) and len(last_states[0]) == 2
    assert h.shape == (2, 16, 8, 8)
    layer_output_list, last_state_list = convlstm(x)
    assert isinstance(layer_output_list, list) and len(layer_output_list) == 1
    assert layer_output_list[0].shape == (2, 3, 16, 8, 8)
    torch.testing.assert_close(layer_output_list[0][:, -1], last_state_list[0][0])
    assert isinstance(convlstm, OurConvLSTM)   # one implementation: ours


def test_keywords_defaults_and_all_layers():
    convlstm = ConvLSTM(input_dim=3, hidden_dim=[8, 4], kernel_size=[(3, 3), (5, 5)], num_layers=2)
    assert (convlstm.batch_first, convlstm.bias, convlstm.return_all_layers) == (False, True, False)
    assert convlstm.hidden_dim == [8, 4] and convlstm.kernel_size == [(3, 3), (5, 5)]
    assert len(convlstm.cell_list) == 2
    everything = ConvLSTM(3, [8, 4], [(3, 3), (5, 5)], 2, True, True, True)
    layer_output_list, last_state_list = everything(torch.rand(2, 4, 3, 10, 10))
    assert [o.shape for o in layer_output_list] == [(2, 4, 8, 10, 10), (2, 4, 4, 10, 10)]
    assert [[t.shape for t in s] for s in last_state_list] == [[(2, 8, 10, 10)] * 2, [(2, 4, 10, 10)] * 2]
    with pytest.raises(ValueError, match="num_layers"):
        ConvLSTM(3, [8, 4], 3, 3)
    with pytest.raises(ValueError, match="5-D"):
        everything(torch.rand(2, 3, 10, 10))


def test_time_first_input_gives_batch_first_outputs_as_in_the_document():
    torch.manual_seed(0)
    time_first = ConvLSTM(2, 5, (3, 3), 1)                        # batch_first=False
    batch_first = ConvLSTM(2, 5, (3, 3), 1, batch_first=True)
    batch_first.load_state_dict(time_first.state_dict())
    x = torch.rand(2, 6, 2, 7, 7)                                 # (B, T, C, H, W)
    out_t, states_t = time_first(x.transpose(0, 1))               # given (T, B, C, H, W)
    out_b, states_b = batch_first(x)
    assert out_t[0].shape == (2, 6, 5, 7, 7)                      # the document permutes once, to (B, T, ...)
    torch.testing.assert_close(out_t[0], out_b[0])
    torch.testing.assert_close(states_t[0][1], states_b[0][1])


def test_state_dicts_have_the_documents_layout_and_equations():
    torch.manual_seed(1)
    net = ConvLSTM(3, [4, 6], [(3, 3), (1, 1)], 2, True, True, True)
    sd = net.state_dict()
    assert sorted(sd) == ["cell_list.0.conv.bias", "cell_list.0.conv.weight",
                          "cell_list.1.conv.bias", "cell_list.1.conv.weight"]
    assert sd["cell_list.0.conv.weight"].shape == (16, 7, 3, 3)
    x = torch.rand(2, 5, 3, 6, 6)
    outputs, states = net(x)
    ref_outputs, ref_states = _reference_run(sd, x, [4, 6], [(3, 3), (1, 1)])
    for mine, ref in zip(outputs, ref_outputs):
        torch.testing.assert_close(mine, ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(states[1][1], ref_states[1][1], atol=1e-6, rtol=1e-5)
    # a state dict written in the document's layout (e.g. its checkpoints) loads and computes the same
    theirs = {k: torch.randn_like(v) for k, v in sd.items()}
    loaded = ConvLSTM(3, [4, 6], [(3, 3), (1, 1)], 2, True, True, True)
    loaded.load_state_dict(theirs)
    ref_outputs, _ = _reference_run(theirs, x, [4, 6], [(3, 3), (1, 1)])
    torch.testing.assert_close(loaded(x)[0][1], ref_outputs[1], atol=1e-6, rtol=1e-5)
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, theirs[k])


def test_the_cell_and_its_hidden_state():
    cell = ConvLSTMCell(input_dim=3, hidden_dim=4, kernel_size=(3, 3), bias=True)
    assert (cell.input_dim, cell.hidden_dim, cell.padding, cell.bias) == (3, 4, (1, 1), True)
    h, c = cell.init_hidden(2, (5, 5))
    assert h.shape == c.shape == (2, 4, 5, 5) and not h.any()
    h_next, c_next = cell(input_tensor=torch.rand(2, 3, 5, 5), cur_state=[h, c])
    assert h_next.shape == c_next.shape == (2, 4, 5, 5)
    assert ConvLSTMCell(3, 4, (3, 3), False).conv.bias is None


def test_hidden_state_continues_a_sequence():
    torch.manual_seed(2)
    net = ConvLSTM(2, [3, 3], (3, 3), 2, batch_first=True, return_all_layers=True)
    x = torch.rand(1, 6, 2, 5, 5)
    whole, _ = net(x)
    first, states = net(x[:, :4])
    rest, _ = net(x[:, 4:], hidden_state=states)
    torch.testing.assert_close(torch.cat([first[1], rest[1]], dim=1), whole[1])
    init = net._init_hidden(batch_size=1, image_size=(5, 5))
    torch.testing.assert_close(net(x, hidden_state=init)[0][1], whole[1])
