"""Every registered network: build by name, forward, backward, finite values, shapes.

A network registered in ``NETWORKS`` without an entry in ``CASES`` fails here: add tiny
constructor arguments, an input and the expected output shape for it.
"""
import pytest
import torch

from pyanomaly.registry import NETWORKS, build, registered_names


def _main(out):
    """The first tensor of a (possibly nested) output."""
    while not isinstance(out, torch.Tensor):
        out = out[0]
    return out


# name -> (constructor kwargs, inputs (args tuple), expected shape of the main output)
CASES = {
    "ConvLSTMCell": (dict(input_channels=2, hidden_channels=3, kernel_size=3, peephole=True),
                     lambda: (torch.rand(2, 2, 6, 6), torch.rand(2, 3, 6, 6), torch.rand(2, 3, 6, 6)),
                     (2, 3, 6, 6)),
    "ConvLSTM": (dict(input_channels=2, hidden_channels=[3, 4], kernel_size=3, peephole=True),
                 lambda: (torch.rand(2, 3, 2, 6, 6),),
                 (2, 3, 4, 6, 6)),
    "ConvLSTMForecaster": (dict(in_channels=1, hidden_channels=(4, 4), base_channels=4, downsample=2),
                           lambda: (torch.rand(2, 3, 1, 8, 8),),
                           (2, 1, 8, 8)),
    "ConvLSTMRNN": (dict(input_size=2, hidden_size=3, num_layers=2, bidirectional=True, kernel_size=3),
                    lambda: (torch.rand(4, 2, 2, 6, 6),),
                    (4, 2, 6, 6, 6)),
    "SAConvLSTMCell": (dict(input_channels=2, hidden_channels=4, kernel_size=3, attention_channels=2),
                       lambda: (torch.rand(2, 2, 6, 6), torch.rand(2, 4, 6, 6), torch.rand(2, 4, 6, 6),
                                torch.rand(2, 4, 6, 6)),
                       (2, 4, 6, 6)),
    "SAConvLSTM": (dict(input_channels=2, hidden_channels=[3, 4], kernel_size=3),
                   lambda: (torch.rand(2, 3, 2, 6, 6),),
                   (2, 3, 4, 6, 6)),
    "SAConvLSTMForecaster": (dict(in_channels=1, hidden_channels=(4, 4), base_channels=4, downsample=2),
                             lambda: (torch.rand(2, 3, 1, 8, 8),),
                             (2, 1, 8, 8)),
    "UNet": (dict(in_channels=2, history=3, base_channels=4, depth=2),
             lambda: (torch.rand(2, 3, 2, 8, 12),),
             (2, 2, 8, 12)),
    "ConvAE": (dict(in_channels=2, frames=3, base_channels=4, depth=2),
               lambda: (torch.rand(2, 3, 2, 8, 12),),
               (2, 3, 2, 8, 12)),
    "Memory": (dict(slots=6, dim=4, threshold=0.1), lambda: (torch.randn(2, 4, 3, 5),), (2, 4, 3, 5)),
    "MemAE": (dict(in_channels=1, frames=3, base_channels=4, depth=2, slots=6, threshold=0.1),
              lambda: (torch.rand(2, 3, 1, 8, 12),),
              (2, 3, 1, 8, 12)),
    "PredNet": (dict(stack_sizes=(1, 4, 8), R_stack_sizes=(4, 4, 8), A_filter_sizes=(3, 3),
                     Ahat_filter_sizes=(3, 3, 3), R_filter_sizes=(3, 3, 3), output_mode="prediction",
                     data_format="channels_first", return_sequences=True),
                lambda: (torch.rand(2, 3, 1, 8, 8),),
                (2, 3, 1, 8, 8)),
    "PredictiveCodingModule": (dict(in_channels=1, hidden_channels=(4,), base_channels=4),
                               lambda: (torch.rand(2, 3, 1, 8, 8),),
                               (2, 3, 1, 8, 8)),
    "ErrorRefinementModule": (dict(in_channels=1, context_channels=2, base_channels=4, depth=2),
                              lambda: (torch.rand(2, 1, 8, 8).clamp(0.05, 0.95), torch.rand(2, 2, 8, 8)),
                              (2, 1, 8, 8)),
    "StreamerCNNEncoder": (dict(feature_dim=8, channels=1, width=4), lambda: (torch.rand(2, 1, 16, 16),), (2, 8)),
    "StreamerCNNDecoder": (dict(feature_dim=8, channels=1, width=4), lambda: (torch.rand(2, 8), (16, 16)),
                           (2, 1, 16, 16)),
    "StreamerTemporalEncoding": (dict(feature_dim=8, buffer_size=4, n_heads=2, num_layers=1,
                                      encoder=dict(type="StreamerCNNEncoder", feature_dim=8, width=4)),
                                 lambda: (torch.rand(3, 1, 16, 16),),
                                 (1, 8)),
    "StreamerHierarchicalPrediction": (dict(feature_dim=8, max_layers=3, n_heads=2, num_layers=1,
                                            decoder=dict(type="StreamerCNNDecoder", feature_dim=8, width=4)),
                                       lambda: (torch.rand(2, 8), (16, 16)),
                                       (1, 1, 16, 16)),
}


def _tensors(out):
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, dict):
        for v in out.values():
            yield from _tensors(v)
    elif isinstance(out, (list, tuple)):
        for v in out:
            yield from _tensors(v)


@pytest.mark.parametrize("name", registered_names(NETWORKS))
def test_forward_backward(name):
    if name not in CASES:
        pytest.fail(f"registered network '{name}' has no entry in CASES of {__file__}")
    kwargs, make_inputs, shape = CASES[name]
    torch.manual_seed(0)
    net = build(NETWORKS, dict(type=name, **kwargs))
    out = net(*make_inputs())
    main = _main(out)
    assert tuple(main.shape) == shape
    outputs = [t for t in _tensors(out) if t.is_floating_point()]
    assert all(torch.isfinite(t).all() for t in outputs)
    # a loss that touches every output (the PCM's state, the LSTM's c, ...)
    sum(t.pow(2).mean() for t in outputs if t.requires_grad).backward()
    params = list(net.named_parameters())
    assert params, name
    for pname, p in params:
        assert p.grad is not None, f"{name}.{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}.{pname} has a non-finite gradient"
    assert any(p.grad.abs().sum() > 0 for _, p in params)


def test_cases_name_registered_networks_only():
    stale = set(CASES) - set(registered_names(NETWORKS))
    assert not stale, f"CASES names unregistered networks: {sorted(stale)}"
