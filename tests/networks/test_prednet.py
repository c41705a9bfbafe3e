"""PredNet (Lotter et al. 2017): output modes, extrapolation, data formats, errors."""
import pytest
import torch

from pyanomaly.networks.meta import PredNet, PredNetState, hard_sigmoid

B, T, C, H, W = 2, 4, 1, 8, 8
STACK, R_STACK = (1, 4, 8), (4, 4, 8)


def make(output_mode="prediction", source=None, **kw):
    kw.setdefault("data_format", "channels_first")
    net = PredNet(STACK, R_STACK, (3, 3), (3, 3, 3), (3, 3, 3), output_mode=output_mode, **kw)
    if source is not None:  # same weights: the output mode does not change the parameters
        net.load_state_dict(source.state_dict())
    return net


@pytest.fixture
def frames():
    torch.manual_seed(0)
    return torch.rand(B, T, C, H, W)


def run_steps(net, x):
    """Every step's units, by calling ``step`` directly."""
    states = net.get_initial_states(x.shape)
    units = []
    for t in range(x.shape[1]):
        u, states = net.step(x[:, t], states)
        units.append(u)
    return units


@pytest.mark.parametrize("mode,shape", [
    ("error", (B, 3)),
    ("prediction", (B, C, H, W)),
    ("all", (B, C * H * W + 3)),
    ("R0", (B, 4, H, W)),
    ("E1", (B, 8, H // 2, W // 2)),
    ("A1", (B, 4, H // 2, W // 2)),
    ("Ahat2", (B, 8, H // 4, W // 4)),
])
def test_output_mode_shapes(mode, shape, frames):
    torch.manual_seed(0)
    assert make(mode)(frames).shape == shape
    assert make(mode, return_sequences=True)(frames).shape == (B, T) + shape[1:]


def test_units_mean_what_they_say(frames):
    torch.manual_seed(0)
    base = make("E0", return_sequences=True)
    units = run_steps(base, frames)
    e0 = base(frames)
    torch.testing.assert_close(e0, torch.stack([u["E"][0] for u in units], dim=1))
    # E0 holds the rectified positive and negative errors of the frame prediction
    for t, u in enumerate(units):
        diff = frames[:, t] - u["prediction"]
        torch.testing.assert_close(e0[:, t], torch.cat([diff.clamp(max=0).neg(), diff.clamp(min=0)], dim=1))
    err = make("error", base, return_sequences=True)(frames)
    expected = torch.stack([torch.stack([e.mean(dim=(1, 2, 3)) for e in u["E"]], dim=1) for u in units], dim=1)
    torch.testing.assert_close(err, expected)
    pred = make("prediction", base, return_sequences=True)(frames)
    torch.testing.assert_close(pred, torch.stack([u["prediction"] for u in units], dim=1))
    torch.testing.assert_close(make("A0", base)(frames), frames[:, -1])  # layer-0 target = the frame


def test_all_splits_into_prediction_and_errors(frames):
    torch.manual_seed(0)
    net = make("all")
    out = net(frames)
    pred = make("prediction", net)(frames)
    err = make("error", net)(frames)
    torch.testing.assert_close(out[:, :C * H * W].reshape(B, C, H, W), pred)
    torch.testing.assert_close(out[:, C * H * W:], err)


def test_first_prediction_is_made_without_the_frame(frames):
    torch.manual_seed(0)
    net = make("prediction", return_sequences=True)
    other = frames.clone()
    other[:, 0] = 1 - other[:, 0]
    out, out_other = net(frames), net(other)
    torch.testing.assert_close(out[:, 0], out_other[:, 0])
    assert not torch.allclose(out[:, 1], out_other[:, 1])


def test_extrap_start_time_stops_reading_the_input(frames):
    torch.manual_seed(0)
    free = make("prediction", return_sequences=True)
    extrap = make("prediction", free, return_sequences=True, extrap_start_time=2)
    changed = frames.clone()
    changed[:, 2:] = torch.rand_like(changed[:, 2:])
    torch.testing.assert_close(extrap(frames), extrap(changed))
    # without extrapolation the same change does reach later predictions
    assert not torch.allclose(free(frames)[:, 3], free(changed)[:, 3])
    # and before the start time the extrapolating net equals the free one
    torch.testing.assert_close(extrap(frames)[:, :3], free(frames)[:, :3])


def test_channels_last_equals_channels_first(frames):
    torch.manual_seed(0)
    first = make("prediction", return_sequences=True)
    last = make("prediction", first, return_sequences=True, data_format="channels_last")
    out = last(frames.permute(0, 1, 3, 4, 2))
    assert out.shape == (B, T, H, W, C)
    torch.testing.assert_close(out.permute(0, 1, 4, 2, 3), first(frames))
    torch.testing.assert_close(make("error", first, data_format="channels_last")(frames.permute(0, 1, 3, 4, 2)),
                               make("error", first)(frames))


def test_streaming_in_chunks_equals_one_pass(frames):
    torch.manual_seed(0)
    net = make("prediction", return_sequences=True)
    whole = net(frames)
    a, states = net(frames[:, :1], return_states=True)
    b, states = net(frames[:, 1:], initial_states=states, return_states=True)
    torch.testing.assert_close(torch.cat([a, b], dim=1), whole)
    assert states.t == T


def test_state_is_named_and_a_flat_list_is_refused(frames):
    net = make("prediction", return_sequences=True)
    _, state = net(frames[:, :2], return_states=True)
    assert isinstance(state, PredNetState) and state.t == 2 and state.prediction.shape == (B, C, H, W)
    assert [tuple(c.shape) for c in state.c] == [tuple(r.shape) for r in state.R]
    flat = [*state.R, *state.c, *state.E, state.prediction, state.t]  # the Keras-style list
    with pytest.raises(TypeError, match="PredNetState"):
        net(frames[:, 2:], initial_states=flat)


def test_initial_state_shapes(frames):
    states = make().get_initial_states(frames.shape)
    assert [tuple(s.shape) for s in states.R] == [(B, 4, 8, 8), (B, 4, 4, 4), (B, 8, 2, 2)]
    assert [tuple(s.shape) for s in states.E] == [(B, 2, 8, 8), (B, 8, 4, 4), (B, 16, 2, 2)]
    assert states.t == 0


def test_hard_sigmoid_values():
    x = torch.tensor([-10.0, -2.5, -1.0, 0.0, 1.0, 2.5, 10.0])
    torch.testing.assert_close(hard_sigmoid(x), torch.tensor([0.0, 0.0, 0.3, 0.5, 0.7, 1.0, 1.0]))


def test_size_that_cannot_be_pooled_evenly_is_explained():
    net = make()
    with pytest.raises(ValueError, match=r"multiples of 4; got 10x8"):
        net(torch.rand(1, 2, 1, 10, 8))


@pytest.mark.parametrize("kwargs,match", [
    (dict(output_mode="R3"), "output_mode"),
    (dict(output_mode="bogus"), "output_mode"),
    (dict(data_format="nchw"), "data_format"),
    (dict(error_activation="swish"), "unknown activation"),
])
def test_bad_arguments_are_explained(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


def test_wrong_lengths_and_channels_are_explained():
    with pytest.raises(ValueError, match="R_stack_sizes"):
        PredNet((1, 4), (4,), (3,), (3, 3), (3, 3))
    with pytest.raises(ValueError, match="channels"):
        make()(torch.rand(1, 2, 3, 8, 8))
