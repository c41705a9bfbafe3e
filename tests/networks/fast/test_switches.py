"""FastPath: the switches are held by each model, set on all its parts at once, never shared."""
import copy
import dataclasses

import pytest
import torch

from pyanomaly.networks.fast import FastPath, set_fast_path, using_fast_path
from pyanomaly.networks.meta import ConvLSTMCell, ConvLSTMForecaster, PredNet, SAConvLSTMForecaster, UNet


def holders(model):
    return [m for m in model.modules() if isinstance(getattr(m, "fast_path", None), FastPath)]


def test_defaults_reference_and_memory_format():
    assert FastPath() == FastPath(enabled=True, channels_last=True, fold=True, packed=True, zero_skip=True,
                                  subpixel=True, fused=False)
    assert FastPath.reference() == FastPath(enabled=False)
    assert FastPath().memory_format == torch.channels_last
    assert FastPath(channels_last=False).memory_format == torch.contiguous_format
    with pytest.raises(dataclasses.FrozenInstanceError):
        FastPath().fused = True
    with pytest.raises(TypeError, match="FastPath.fused must be a bool"):
        FastPath(fused="yes")


def test_set_fast_path_reaches_every_part_with_a_fast_step():
    model = torch.nn.ModuleDict({
        "forecaster": ConvLSTMForecaster(in_channels=1, hidden_channels=(4, 4), base_channels=4),
        "sa": SAConvLSTMForecaster(in_channels=1, hidden_channels=(4,)),
        "unet": UNet(in_channels=1, history=2, base_channels=4, depth=1)})
    parts = holders(model)
    # encoder, decoder, 2 + 2 cells of the forecaster; the SA forecaster's cells; the U-Net
    assert {type(m).__name__ for m in parts} >= {"StridedEncoder", "UpsamplingDecoder", "ConvLSTMCell", "UNet"}
    assert all(m.fast_path == FastPath() for m in parts)
    set_fast_path(model, FastPath(fused=True))
    assert all(m.fast_path == FastPath(fused=True) for m in parts)
    with pytest.raises(TypeError, match="FastPath"):
        set_fast_path(model, {"fused": True})


def test_using_fast_path_gives_each_part_its_own_switches_back():
    model = ConvLSTMForecaster(in_channels=1, hidden_channels=(4, 4), base_channels=4)
    set_fast_path(model.encoder, FastPath(packed=False))
    with using_fast_path(model, FastPath.reference()) as same:
        assert same is model and all(m.fast_path == FastPath.reference() for m in holders(model))
    assert model.encoder.fast_path == FastPath(packed=False)
    assert all(m.fast_path == FastPath() for m in holders(model) if m is not model.encoder)


def test_two_models_hold_their_own_switches_and_a_copy_keeps_them():
    torch.manual_seed(0)
    fast_net = PredNet((3, 4), (4, 4), (3,), (3, 3), (3, 3), output_mode="prediction", data_format="channels_first")
    plain_net = copy.deepcopy(fast_net)
    set_fast_path(plain_net, FastPath.reference())
    x = torch.rand(2, 3, 3, 8, 8)
    with torch.no_grad():
        fast_out, plain_out = fast_net(x), plain_net(x)
    assert fast_out.is_contiguous(memory_format=torch.channels_last)  # the fast path ran
    assert not plain_out.is_contiguous(memory_format=torch.channels_last)  # the plain code ran
    torch.testing.assert_close(fast_out, plain_out)
    assert copy.deepcopy(plain_net).fast_path == FastPath.reference()
    assert fast_net.fast_path == FastPath()


def test_a_cell_outside_any_model_has_the_default():
    cell = ConvLSTMCell(1, 2, 3)
    assert cell.fast_path == FastPath() and holders(cell) == [cell]
