"""The optimised inference path (``pyanomaly.networks.fast``) equals the plain code within float tolerance."""
import copy
import io
import pickle

import pytest
import torch

from pyanomaly.networks.meta import (ConvLSTM, ConvLSTMCell, ConvLSTMForecaster, ErrorRefinementModule, PredNet,
                                     PredictiveCodingModule, UNet)
from pyanomaly.networks.fast import FastPath, set_fast_path, using_fast_path
from pyanomaly.networks.fast import ops as fast
from pyanomaly.networks.fast import prednet as prednet_fast
from pyanomaly.registry import MODELS, build
from testutils import convlstm_cell

B, T, C, H, W = 2, 5, 3, 16, 24


@pytest.fixture(autouse=True)
def _subpixel_for_small_nets(monkeypatch):
    """Tiny nets would not reach the channel count from which the sub-pixel form is used."""
    monkeypatch.setattr(prednet_fast, "SUBPIXEL_MIN_CHANNELS", 0)


def prednet(**kw):
    torch.manual_seed(0)
    kw.setdefault("data_format", "channels_first")
    return PredNet((C, 8, 16), (4, 8, 16), (3, 3), (3, 3, 3), (3, 3, 3), output_mode="prediction", **kw).eval()


def reference(module):
    """Within it ``module`` runs its plain code (the fast path's numerical reference)."""
    return using_fast_path(module, FastPath.reference())


def run_steps(step, net, x, ctx):
    states, units = net.get_initial_states(x.shape), []
    with ctx:
        for t in range(x.shape[1]):
            u, states = step(x[:, t], states)
            units.append(u)
    return units, states


def assert_units_close(ref, out, **tol):
    for a, b in zip(ref, out):
        torch.testing.assert_close(b["prediction"].float(), a["prediction"], **tol)
        for k in ("R", "Ahat", "A", "E"):
            for ta, tb in zip(a[k], b[k]):
                torch.testing.assert_close(tb.float(), ta.float(), **tol)


@pytest.fixture
def frames():
    torch.manual_seed(1)
    return torch.rand(B, T, C, H, W)


@pytest.mark.parametrize("kw", [
    {},
    {"LSTM_inner_activation": "sigmoid"},
    {"A_activation": "tanh", "error_activation": "elu", "LSTM_activation": "relu"},
    {"extrap_start_time": 3},
])
def test_prednet_step_equals_reference_step(kw, frames):
    net = prednet(**kw)
    ref, ref_states = run_steps(net.reference_step, net, frames, torch.no_grad())
    out, out_states = run_steps(net.step, net, frames, torch.inference_mode())
    assert out[-1]["prediction"].is_contiguous(memory_format=torch.channels_last)  # the fast path ran
    assert_units_close(ref, out)
    for field in ("R", "c", "E", "prediction"):
        torch.testing.assert_close(getattr(out_states, field), getattr(ref_states, field))
    assert out_states.t == ref_states.t == T


@pytest.mark.parametrize("switch", ["channels_last", "packed", "fold", "subpixel", "zero_skip"])
def test_prednet_each_switch_off_gives_the_same_values(switch, frames):
    net = prednet()
    ref, _ = run_steps(net.reference_step, net, frames, torch.no_grad())
    set_fast_path(net, FastPath(**{switch: False}))
    out, _ = run_steps(net.step, net, frames, torch.no_grad())
    assert_units_close(ref, out)


def test_prednet_with_grad_runs_the_reference_step(frames):
    net = prednet()
    with torch.no_grad():
        ref, _ = run_steps(net.reference_step, net, frames, torch.no_grad())
    out, _ = run_steps(net.step, net, frames, torch.enable_grad())
    assert out[-1]["prediction"].requires_grad
    for a, b in zip(ref, out):
        assert torch.equal(a["prediction"], b["prediction"].detach())


def test_prednet_bf16_autocast_is_close_and_opt_in(frames):
    net = prednet()
    ref, _ = run_steps(net.reference_step, net, frames, torch.no_grad())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, states = run_steps(net.step, net, frames, torch.inference_mode())
    assert out[-1]["prediction"].dtype == torch.bfloat16
    assert states.c[0].dtype == torch.float32  # cell states stay float32
    for a, b in zip(ref, out):
        torch.testing.assert_close(b["prediction"].float(), a["prediction"], atol=2e-2, rtol=0)


def test_prednet_next_prediction_is_the_next_steps_prediction(frames):
    net = prednet()
    _, states = run_steps(net.step, net, frames[:, :3], torch.no_grad())
    with torch.no_grad():
        expected = net.reference_step(frames[:, 3], states)[0]["prediction"]
        torch.testing.assert_close(net.next_prediction(states), expected)
        with reference(net):
            torch.testing.assert_close(net.next_prediction(states), expected)


def test_prednet_forward_channels_last_data_format(frames):
    net = prednet(return_sequences=True)
    with torch.no_grad():
        with reference(net):
            ref = net(frames)
        other = prednet(return_sequences=True, data_format="channels_last")
        torch.testing.assert_close(other(frames.permute(0, 1, 3, 4, 2)).permute(0, 1, 4, 2, 3), ref)


def test_cached_weights_follow_parameter_updates(frames):
    net = prednet()
    with torch.no_grad():
        before = net(frames)
        for p in net.parameters():
            p.mul_(1.1)  # an optimizer step changes parameters in place
        after = net(frames)
        with reference(net):
            torch.testing.assert_close(after, net(frames))
        net.load_state_dict(prednet().state_dict())
        torch.testing.assert_close(net(frames), before)


@pytest.mark.parametrize("peephole", [False, True])
def test_convlstm_cell_and_stack_equal_reference(peephole):
    cell = convlstm_cell(peephole)
    x, h, c = torch.randn(2, 3, 8, 10), torch.randn(2, 6, 8, 10), torch.randn(2, 6, 8, 10)
    with torch.no_grad():
        with reference(cell):
            h_ref, c_ref = cell(x, h, c)
        h_new, c_new = cell(x, h, c)
        torch.testing.assert_close(h_new, h_ref)
        torch.testing.assert_close(c_new, c_ref)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            h_bf, c_bf = cell(x, h, c)
        assert h_bf.dtype == torch.bfloat16 and c_bf.dtype == torch.float32
        torch.testing.assert_close(h_bf.float(), h_ref, atol=3e-2, rtol=0)
        lstm = ConvLSTM(3, [4, 5], 3, return_all_layers=True, peephole=peephole)
        seq = torch.rand(2, 4, 3, 8, 10)
        with reference(lstm):
            out_ref, st_ref = lstm(seq)
        out, st = lstm(seq)
        for a, b in zip(out_ref + [s for p in st_ref for s in p], out + [s for p in st for s in p]):
            torch.testing.assert_close(b, a)


@pytest.mark.parametrize("zero_skip", [True, False])
def test_convlstm_fresh_state_skips_its_zeros_with_the_same_values(zero_skip, monkeypatch):
    torch.manual_seed(0)
    cell = ConvLSTMCell(3, 6, 3, peephole=True)
    x = torch.randn(2, 3, 8, 10)
    shapes = []
    real = fast.conv
    monkeypatch.setattr(fast, "conv", lambda inputs, *a, **k: shapes.append(inputs.shape[1]) or real(inputs, *a, **k))
    lstm = ConvLSTM(3, [4, 5], 3, return_all_layers=True)
    for module in (cell, lstm):
        set_fast_path(module, FastPath(zero_skip=zero_skip))
    with torch.no_grad():
        with reference(cell):
            h_ref, c_ref = cell(x)
        h_new, c_new = cell(x)
        seq = torch.rand(2, 3, 3, 8, 10)
        with reference(lstm):
            out_ref, _ = lstm(seq)
        out, _ = lstm(seq)
    torch.testing.assert_close(h_new, h_ref)
    torch.testing.assert_close(c_new, c_ref)
    for a, b in zip(out_ref, out):
        torch.testing.assert_close(b, a)
    # the cell's first step reads x alone (3 channels), or x and the zero h (3 + 6); the stack's
    # first steps read 3 and 4 channels, later ones 3 + 4 and 4 + 5
    first = [3, 3, 3 + 4, 3 + 4, 4, 4 + 5, 4 + 5] if zero_skip else [9, 7, 7, 7, 9, 9, 9]
    assert shapes == first


@pytest.mark.parametrize("make,inputs", [
    (lambda: ConvLSTMForecaster(in_channels=1, hidden_channels=(4, 4), base_channels=4), lambda: (torch.rand(2, 3, 1, 16, 16),)),
    (lambda: PredictiveCodingModule(in_channels=1, hidden_channels=(4,), base_channels=4), lambda: (torch.rand(2, 3, 1, 16, 16),)),
    (lambda: ErrorRefinementModule(in_channels=1, context_channels=2, base_channels=4),
     lambda: (torch.rand(2, 1, 16, 16).clamp(0.05, 0.95), torch.rand(2, 2, 16, 16))),
])
def test_encoder_decoder_networks_equal_reference(make, inputs):
    torch.manual_seed(0)
    net, args = make().eval(), inputs()
    with torch.no_grad():
        for p in net.parameters():  # e.g. the ERM's head starts at zero, which would hide its path
            p.add_(0.05 * torch.randn_like(p))
        with reference(net):
            ref = net(*args)
        out = net(*args)
    ref, out = (ref[0], out[0]) if isinstance(ref, tuple) else (ref, out)
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_unet_fast_path_equals_reference_and_batch_statistics_run_the_plain_code(batch_norm, monkeypatch):
    calls, real = [], fast.conv
    monkeypatch.setattr(fast, "conv", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    net = UNet(in_channels=1, history=3, base_channels=4, depth=2, batch_norm=batch_norm)
    x = torch.rand(2, 3, 1, 16, 24)
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(4, 3, 1, 16, 24))  # training mode: the running statistics move off 0 and 1
        if batch_norm:
            train_out = net(x)
            with reference(net):
                assert torch.equal(net(x), train_out)  # batch statistics: never folded
            assert calls == []
        net.eval()
        calls.clear()
        with reference(net):
            ref = net(x)
        out = net(x)
        assert len(calls) == 2 * (1 + 2 + 2) + 1  # the fast path ran: two convolutions per level, and the head
        torch.testing.assert_close(out, ref)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf = net(x)
        torch.testing.assert_close(out_bf.float(), ref, atol=2e-2, rtol=0)
        for p in net.parameters():
            p.mul_(1.1)  # cached folded weights follow a parameter change
        with reference(net):
            ref = net(x)
        torch.testing.assert_close(net(x), ref)


@pytest.mark.parametrize("test_window", [None, 0])
def test_prednet_predictor_streams_equal_reference(test_window):
    torch.manual_seed(0)
    model = build(MODELS, dict(type="PredNetPredictor", test_window=test_window, clip_length=4, network=dict(
        type="PredNet", stack_sizes=(1, 8, 16), R_stack_sizes=(8, 8, 16), A_filter_sizes=(3, 3),
        Ahat_filter_sizes=(3, 3, 3), R_filter_sizes=(3, 3, 3)))).eval()
    video = torch.rand(9, 1, 16, 16)
    with reference(model):
        ref, valid_ref = model.predict_video(video, chunk=4)
    out, valid = model.predict_video(video, chunk=4)
    assert torch.equal(valid, valid_ref)
    torch.testing.assert_close(out, ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_bf, _ = model.predict_video(video, chunk=4)
    assert out_bf.dtype == video.dtype  # predictions come back in the frames' dtype
    torch.testing.assert_close(out_bf, ref, atol=2e-2, rtol=0)


def test_a_model_that_ran_can_be_copied_and_pickled(frames):
    net = prednet()
    with torch.no_grad():
        out = net(frames)  # fills the caches (prepacked weights cannot be copied)
        twin = copy.deepcopy(net)
        torch.testing.assert_close(twin(frames), out)
        buf = io.BytesIO()
        torch.save(net, buf)
        buf.seek(0)
        torch.testing.assert_close(torch.load(buf, weights_only=False)(frames), out)
        torch.testing.assert_close(pickle.loads(pickle.dumps(net))(frames), out)


def test_a_dtype_the_packed_convolution_refuses_leaves_the_others_packed(monkeypatch):
    """A bf16 run on a CPU whose oneDNN refuses bf16 must not move fp32 runs off the packed
    convolution (their numerics would change for the rest of the process)."""
    from pyanomaly.networks.fast import FastPath, ops
    if not ops._PACKED:
        pytest.skip("this torch has no oneDNN prepacked convolution")
    monkeypatch.setattr(ops, "_PACKED_REFUSED", set())
    real = torch.ops.mkldnn._convolution_pointwise
    used = []

    def refuse_bf16(x, *args):
        used.append(x.dtype)
        if x.dtype == torch.bfloat16:
            raise RuntimeError("bf16 is not supported on this CPU")
        return real(x, *args)

    monkeypatch.setattr(torch.ops.mkldnn, "_convolution_pointwise", refuse_bf16)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    switches, x = FastPath(), torch.rand(1, 3, 8, 8)
    w16 = ops.conv_weights(conv, torch.bfloat16, switches)
    ops.conv(x.bfloat16(), w16, conv, switches)  # refused: falls back to F.conv2d
    assert ops._PACKED_REFUSED == {torch.bfloat16}
    used.clear()
    y = ops.conv(x, ops.conv_weights(conv, torch.float32, switches), conv, switches)
    assert used == [torch.float32]  # fp32 still goes through the packed op
    torch.testing.assert_close(y, conv(x), rtol=1e-5, atol=1e-5)
