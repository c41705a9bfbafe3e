"""STREAMER's documented API (streamer-api.txt) through pyanomaly.compat.streamer."""
import pytest
import torch

from pyanomaly.compat.streamer.layer import StreamerLayer, StreamerLayerArguments
from pyanomaly.compat.streamer.networks import CNNDecoder, CNNEncoder, HierarchicalPrediction, TemporalEncoding
from pyanomaly.networks.meta.streamer import prediction_loss


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_cnn_encoder_and_decoder():
    torch.manual_seed(0)
    z = CNNEncoder(32)(torch.rand(5, 3, 64, 64))
    assert z.shape == (5, 32)
    images = CNNDecoder(32)(z)
    assert images.shape == (5, 3, 64, 64) and images.min() >= 0 and images.max() <= 1


def test_temporal_encoding_outputs_and_attention():
    torch.manual_seed(0)
    te = TemporalEncoding(32, 8, 1e-3)                        # n_heads=4, num_layers=2, no encoder, no patch
    summary, attention = te(torch.rand(5, 32))
    assert summary.shape == (1, 32) and attention is None and te.attention == [None, None]
    patched = TemporalEncoding(feature_dim=32, buffer_size=8, lr=1e-3, n_heads=2, num_layers=3,
                               encoder=CNNEncoder, patch=True)
    summary, attention = patched(torch.rand(5, 3, 64, 64))
    assert summary.shape == (1, 32) and attention is None     # CNNEncoder reports no attention
    assert [a.shape for a in patched.attention] == [(1, 2, 6, 6)] * 3   # summary token + 5 inputs
    torch.testing.assert_close(patched.attention[0].sum(-1), torch.ones(1, 2, 6))

    class AttendingEncoder(torch.nn.Module):                  # a user's encoder that reports attention
        def __init__(self, feature_dim):
            super().__init__()
            self.proj = torch.nn.Linear(12, feature_dim)

        def forward(self, x):
            return self.proj(x.flatten(1)), torch.ones(x.shape[0], 4)

    _, attention = TemporalEncoding(32, 8, 1e-3, encoder=AttendingEncoder)(torch.rand(3, 3, 2, 2))
    assert attention.shape == (3, 4)


def test_module_optimisation_methods():
    torch.manual_seed(0)
    te = TemporalEncoding(16, 4, 1e-2)
    assert te.get_params() == list(te.parameters()) and te.lr == 1e-2
    x = torch.rand(3, 16)
    te(x)[0].pow(2).sum().backward()
    assert all(p.grad is not None for p in te.get_params())
    before = _params(te)
    te.step_params()
    assert _changed(before, te)
    te.zero_params()
    assert all(p.grad is None for p in te.get_params())
    before = _params(te)
    te.step_params()                                            # no gradients: nothing moves
    assert not _changed(before, te)


def test_hierarchical_prediction():
    torch.manual_seed(0)
    hp = HierarchicalPrediction(32, 3, 1e-3, 1)                # layer 1 of 3: reads up to 2 representations
    assert hp(torch.rand(2, 32)).shape == (1, 32)
    with pytest.raises(ValueError, match="1 <= S <= 2"):
        hp(torch.rand(3, 32))
    base = HierarchicalPrediction(feature_dim=32, max_layers=3, lr=1e-3, layer_num=0, n_heads=4, num_layers=2,
                                  decoder=CNNDecoder, patch=True)
    image = base(torch.rand(3, 32))
    assert image.shape == (1, 3, 64, 64)
    assert [a.shape for a in base.attention] == [(1, 4, 3, 3)] * 2
    assert len(base.get_params()) == len(list(base.parameters())) > len(list(base.decoder.parameters()))


def _args(**kwargs):
    values = dict(max_layers=3, feature_dim=16, evolve_every=2, buffer_size=4, loss_threshold=0.0, lr=1e-3,
                  reps_fn=None, snippet_size=0.5)
    values.update(kwargs)
    return StreamerLayerArguments(**values)


def test_layer_arguments_defaults_and_checks():
    args = StreamerLayerArguments(3, 64, 50, 10, 0.25, 1e-3, lambda reps: torch.stack(reps).mean(0), 0.5)
    assert (args.demarcation_mode, args.distance_mode, args.force_base_dist, args.window_size,
            args.modifier_type, args.modifier, args.force_fixed_buffer) == \
        ("average", "similarity", False, 50, "multiply", 1.0, False)
    assert callable(args.reps_fn) and args.to_settings().reps_fn == "stack"
    with pytest.raises(ValueError, match="modifier_type"):
        _args(modifier_type="power")


def test_optimize_layer_changes_the_parameters_and_lowers_the_loss():
    torch.manual_seed(0)
    layer = StreamerLayer(_args(max_layers=1, force_base_dist=True), 0, 1, encoder=CNNEncoder, decoder=CNNDecoder)
    frame = torch.rand(1, 3, 64, 64)
    layer(frame, 0)                                             # empty buffer: nothing to predict yet
    assert layer.last_loss is None and layer.losses == []
    layer(frame, 1)
    assert len(layer.losses) == 1 and layer.last_loss > 0
    with torch.no_grad():
        loss_before = float(prediction_loss(layer.predict(), frame, "distance"))
    before = _params(layer)
    layer.optimize_layer()
    assert _changed(before, layer) and layer.losses == []
    assert all(p.grad is None for p in layer.parameters())     # stepped, then zeroed
    with torch.no_grad():
        loss_after = float(prediction_loss(layer.predict(), frame, "distance"))
    assert loss_after < loss_before
    for t in range(2, 8):                                       # and keeps learning on the repeated input
        layer(frame, t)
        layer.optimize_layer()
    assert layer.last_loss < loss_before


def test_boundaries_grow_the_stack_and_layers_recurse():
    torch.manual_seed(0)
    logged = []

    class Logger:
        def add_scalar(self, tag, value, step):
            logged.append((tag, step))

    # feature input; "fixed" demarcation at threshold 0 closes an event at every predicted input
    layer = StreamerLayer(_args(demarcation_mode="fixed"), 0, 1, logger=Logger())
    assert layer.get_num_layers(0) == 1 and layer.parent is None
    x = torch.rand(4, 1, 16)
    layer(x[0], 0)
    layer(x[1], 1)                                              # boundary after evolve_every=2 inputs: a parent
    assert layer.boundaries == [(1, "loss")] and layer.get_num_layers(0) == 2
    assert len(layer.parent.buffer) == 1 and layer.buffer[0].shape == (16,)
    layer(x[2], 2)
    layer(x[3], 3)
    assert layer.get_num_layers(0) == 3                         # max_layers
    assert layer.parent.losses and layer.parent.parent.buffer
    before = _params(layer.parent.parent)
    layer.optimize_layer()                                      # recursively: every layer learns
    assert _changed(before, layer.parent.parent)
    assert not layer.parent.losses
    assert ("loss/layer0", 1) in logged and ("loss/layer1", 2) in logged
    layer.reset_layer()
    assert not layer.buffer and not layer.parent.buffer and layer.get_num_layers(0) == 3


def test_init_count_builds_the_stack_at_once():
    layer = StreamerLayer(_args(), layer_num=0, init_count=3, encoder=CNNEncoder, decoder=CNNDecoder)
    assert layer.get_num_layers(0) == 3
    assert isinstance(layer.temporal_encoding.encoder, CNNEncoder)
    assert layer.parent.temporal_encoding.encoder is None and layer.parent.hierarchical_prediction.layer_num == 1
    layer.create_parent(True)                                   # max_layers reached: no fourth layer
    assert StreamerLayer(_args(max_layers=2), 0, 5).get_num_layers(0) == 2
