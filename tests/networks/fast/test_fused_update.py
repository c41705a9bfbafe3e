"""The fused LSTM update (``TEST.FUSED_UPDATE``: one ``torch.compile``'d pass) equals the
eager fast path and the plain code; compiled once per set of activations, for any shape."""
import shutil

import pytest
import torch

from pyanomaly.networks.fast import FastPath, set_fast_path, using_fast_path
from pyanomaly.networks.fast import lstm as fast
from pyanomaly.networks.meta import ConvLSTMCell, PredNet
from testutils import convlstm_cell

pytestmark = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                reason="torch.compile on CPU needs a C++ compiler; none on PATH")


def fused(module):
    """Within it ``module`` runs the fused LSTM update."""
    return using_fast_path(module, FastPath(fused=True))


def counted(monkeypatch) -> list:
    """Calls of the compiled update are appended to the returned list."""
    calls, real = [], fast._fused_update

    def spy(*args):
        calls.append(args[0].shape)
        return real(*args)
    monkeypatch.setattr(fast, "_fused_update", spy)
    return calls


@pytest.mark.parametrize("peephole", [False, True])
def test_convlstm_cell_fused_equals_plain(peephole, monkeypatch):
    cell = convlstm_cell(peephole)
    calls = counted(monkeypatch)
    for shape in ((2, 8, 10), (3, 5, 7)):  # a second shape reuses the dynamic kernel
        x = torch.randn(shape[0], 3, *shape[1:])
        h, c = torch.randn(shape[0], 6, *shape[1:]), torch.randn(shape[0], 6, *shape[1:])
        with torch.no_grad():
            with using_fast_path(cell, FastPath.reference()):
                h_ref, c_ref = cell(x, h, c)
            with fused(cell):
                h_new, c_new = cell(x, h, c)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    h_bf, c_bf = cell(x, h, c)
        torch.testing.assert_close(h_new, h_ref)
        torch.testing.assert_close(c_new, c_ref)
        assert h_bf.dtype == torch.bfloat16 and c_bf.dtype == torch.float32
        torch.testing.assert_close(h_bf.float(), h_ref, atol=3e-2, rtol=0)
    assert len(calls) == 4  # the fused path ran, in fp32 and bf16, for both shapes


@pytest.mark.parametrize("kw", [{}, {"LSTM_inner_activation": "sigmoid", "LSTM_activation": "relu"}])
def test_prednet_fused_equals_plain(kw, monkeypatch):
    torch.manual_seed(0)
    net = PredNet((3, 8, 16), (4, 8, 16), (3, 3), (3, 3, 3), (3, 3, 3), output_mode="prediction",
                  return_sequences=True, **kw).eval()
    frames = torch.rand(2, 4, 16, 24, 3)  # channels_last data format, PredNet's default
    calls = counted(monkeypatch)
    with torch.no_grad():
        with using_fast_path(net, FastPath.reference()):
            ref = net(frames)
        with fused(net):
            out = net(frames)
    torch.testing.assert_close(out, ref)
    assert len(calls) == 3 * 4  # every layer at every step


def test_fused_update_is_opt_in_and_restored(monkeypatch):
    calls = counted(monkeypatch)
    cell = ConvLSTMCell(1, 2, 3)
    x = torch.rand(1, 1, 4, 4)
    with torch.no_grad():
        cell(x)
        assert calls == []
        with fused(cell):
            cell(x)
        cell(x)
        set_fast_path(cell, FastPath(fused=False))
        cell(x)
    assert len(calls) == 1


def test_a_failed_compile_names_the_setting(monkeypatch):
    def broken(*args):
        raise OSError("no compiler")
    monkeypatch.setitem(fast._FUSED, "fn", broken)
    cell = ConvLSTMCell(1, 2, 3)
    with torch.no_grad(), fused(cell), pytest.raises(RuntimeError, match="TEST.FUSED_UPDATE.*no compiler"):
        cell(torch.rand(1, 1, 4, 4))
