"""PyAnomaly's pcn_parts API (pyanomaly-pcn-parts-api.txt) at its documented import paths."""
import importlib

import pytest
import torch

import pyanomaly.networks.meta as meta
from pyanomaly.networks.meta.pcn_parts.convolution_lstm import ConvLSTM, ConvLSTMCell
from pyanomaly.networks.meta.pcn_parts.prednet import PredNet, batch_flatten, get_activationFunc, hard_sigmoid


def test_the_documented_modules_hold_our_classes():
    for name in ("convolution_lstm", "prednet", "pcm", "erm"):
        importlib.import_module(f"pyanomaly.networks.meta.pcn_parts.{name}")
    from pyanomaly.networks.meta.pcn_parts.erm import ErrorRefinementModule
    from pyanomaly.networks.meta.pcn_parts.pcm import PredictiveCodingModule
    # re-exports, not copies: one class each, registered once in NETWORKS
    assert (ConvLSTM, ConvLSTMCell, PredNet) == (meta.ConvLSTM, meta.ConvLSTMCell, meta.PredNet)
    assert (PredictiveCodingModule, ErrorRefinementModule) == (meta.PredictiveCodingModule,
                                                               meta.ErrorRefinementModule)
    assert get_activationFunc is meta.get_activation and hard_sigmoid is meta.hard_sigmoid


def test_convolution_lstm_signature_and_effective_step():
    x = torch.rand(2, 3, 8, 8)
    outputs, (h, c) = ConvLSTM(3, [8, 4], 3)(x)               # step=1, effective_step=[1]
    assert len(outputs) == 1 and outputs[0].shape == (2, 4, 8, 8)
    torch.testing.assert_close(outputs[0], h)
    torch.manual_seed(0)
    net = ConvLSTM(input_channels=3, hidden_channels=[8, 4], kernel_size=3, step=5, effective_step=[1, 3, 5])
    outputs, (h, c) = net(x)
    assert len(outputs) == 3 and c.shape == (2, 4, 8, 8)
    torch.testing.assert_close(outputs[-1], h)
    # steps are counted from 1: effective step 1 is the output after the first step
    one = ConvLSTM(3, [8, 4], 3, step=1, effective_step=[1])
    one.load_state_dict(net.state_dict())
    torch.testing.assert_close(one(x)[0][0], outputs[0])
    with pytest.raises(ValueError, match="effective_step"):
        ConvLSTM(3, [8], 3, step=2, effective_step=[0])


def test_convolution_lstm_cell_forward_x_h_c():
    cell = ConvLSTMCell(3, 6, 3)
    h, c = cell(torch.rand(2, 3, 8, 8), torch.zeros(2, 6, 8, 8), torch.zeros(2, 6, 8, 8))
    assert h.shape == c.shape == (2, 6, 8, 8)


def _prednet(**kwargs):
    torch.manual_seed(0)
    return PredNet(stack_sizes=(3, 8, 16), R_stack_sizes=(8, 8, 16), A_filter_sizes=(3, 3),
                   Ahat_filter_sizes=(3, 3, 3), R_filter_sizes=(3, 3, 3), **kwargs)


def test_prednet_defaults_and_output_modes():
    net = _prednet()
    assert (net.pixel_max, net.output_mode, net.extrap_start_time, net.data_format, net.return_sequences) == \
        (1.0, "error", None, "channels_last", False)
    assert net.activation_names == ("relu", "relu", "tanh", "hard_sigmoid")
    A0_withTimeStep = torch.rand(2, 4, 16, 16, 3)              # channels_last (B, T, H, W, C)
    initial_states = net.get_initial_states(A0_withTimeStep.shape)
    assert net(A0_withTimeStep, initial_states).shape == (2, 3)            # 'error': (B, num_layers)
    prediction = _prednet(output_mode="prediction")
    assert prediction(A0_withTimeStep, initial_states).shape == (2, 16, 16, 3)
    everything = _prednet(output_mode="all", data_format="channels_first", return_sequences=True)
    frames = torch.rand(2, 4, 3, 16, 16)
    assert everything(frames, everything.get_initial_states(frames.shape)).shape == (2, 4, 3 * 16 * 16 + 3)
    r0 = _prednet(output_mode="R0", data_format="channels_first")
    assert r0(frames, r0.get_initial_states(frames.shape)).shape == (2, 8, 16, 16)
    e1 = _prednet(output_mode="E1", data_format="channels_first")
    assert e1(frames, e1.get_initial_states(frames.shape)).shape == (2, 16, 8, 8)


def test_prednet_step_layers_and_extrapolation():
    net = _prednet(output_mode="prediction", data_format="channels_first", extrap_start_time=2,
                   return_sequences=True)
    assert net.isNotTopestLayer(0) and not net.isNotTopestLayer(2)
    assert len(net.conv_r) == 3 and len(net.conv_a) == 2
    frames = torch.rand(1, 4, 3, 16, 16)
    states = net.get_initial_states(frames.shape)
    units, states = net.step(frames[:, 0], states)
    assert units["prediction"].shape == (1, 3, 16, 16) and len(units["E"]) == 3
    # from extrap_start_time on the input is ignored: the previous prediction is used instead
    out = net(frames, net.get_initial_states(frames.shape))
    other = frames.clone()
    other[:, 2:] = torch.rand(1, 2, 3, 16, 16)
    torch.testing.assert_close(net(other, net.get_initial_states(other.shape)), out)
    assert (out <= 1.0).all()                                   # pixel_max clips the frame prediction


def test_helpers():
    x = torch.tensor([-3.0, -2.5, 0.0, 1.0, 2.5, 3.0])
    torch.testing.assert_close(hard_sigmoid(x), torch.tensor([0.0, 0.0, 0.5, 0.7, 1.0, 1.0]))
    assert batch_flatten(torch.rand(2, 3, 4, 5)).shape == (2, 60)
    assert get_activationFunc("hard_sigmoid") is hard_sigmoid
    torch.testing.assert_close(get_activationFunc("relu")(torch.tensor([-1.0, 2.0])), torch.tensor([0.0, 2.0]))
    with pytest.raises(ValueError, match="unknown activation"):
        get_activationFunc("swish")
