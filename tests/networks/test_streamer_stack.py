"""STREAMER parts and the growing stack: shapes, growth, boundaries at scene changes, exact resume."""
import io

import pytest
import torch
import torch.nn.functional as F

from pyanomaly.networks.meta.streamer import (StreamerCNNDecoder, StreamerCNNEncoder, StreamerHierarchicalPrediction,
                                              StreamerSettings, StreamerStack, StreamerTemporalEncoding)
from pyanomaly.networks.meta.streamer.layer import prediction_loss

SIZE = 32
TOLERANCE = 2  # frames between a scene change and the base boundary that marks it (documented in docs/streamer.md)


def scene_video(n_scenes: int = 4, length: int = 25, seed: int = 0):
    """``n_scenes`` textured scenes of ``length`` frames, each drifting slowly: ((N, 1, 32, 32), change frames)."""
    g = torch.Generator().manual_seed(seed)
    frames, changes = [], []
    for s in range(n_scenes):
        low = F.interpolate(torch.rand(1, 1, 6, 6, generator=g), size=(SIZE + 16,) * 2, mode="bicubic",
                            align_corners=False)
        tex = (low - low.min()) / (low.max() - low.min())
        tex = (0.8 * tex + 0.2 * torch.rand(1, 1, SIZE + 16, SIZE + 16, generator=g))[0]
        if s:
            changes.append(len(frames))
        dx, dy = (1, 0) if s % 2 == 0 else (0, 1)
        for t in range(length):
            step = min(t // 4, 8)
            ox, oy = 8 + dx * step, 8 + dy * step
            noise = 0.01 * torch.randn(1, SIZE, SIZE, generator=g)
            frames.append((tex[:, oy:oy + SIZE, ox:ox + SIZE] + noise).clamp(0, 1))
    return torch.stack(frames), changes


def settings(**kw):
    base = dict(feature_dim=32, buffer_size=8, max_layers=3, evolve_every=10, window_size=20, modifier=1.5,
                force_base_dist=True, lr=3e-3)
    return StreamerSettings(**{**base, **kw})


def stream(stack, frames, learn=True):
    return [stack.step(f, learn=learn) for f in frames]


# -- parts ----------------------------------------------------------------------------------
def test_encoder_decoder_shapes_at_any_size():
    enc, dec = StreamerCNNEncoder(16, channels=3, width=4), StreamerCNNDecoder(16, channels=3, width=4)
    z = enc(torch.rand(5, 3, 48, 40))
    assert z.shape == (5, 16)
    img = dec(z, size=(48, 40))
    assert img.shape == (5, 3, 48, 40) and 0 <= img.min() and img.max() <= 1
    with pytest.raises(ValueError, match=r"expects images \(N, 3, H, W\)"):
        enc(torch.rand(5, 1, 32, 32))
    assert StreamerCNNDecoder(16, width=4, grid=2)(z).shape == (5, 1, 32, 32)   # drawn at 16 * grid, no resize
    stack = StreamerStack(settings(cnn_grid=2), seed=0)
    stack.step(torch.rand(1, 32, 32))
    assert stack.step(torch.rand(1, 32, 32)).shape == (1, 32, 32)


def test_temporal_encoding_summarises_a_buffer_of_features_or_images():
    te = StreamerTemporalEncoding(16, buffer_size=6, n_heads=2, num_layers=1)
    assert te(torch.rand(4, 16)).shape == (1, 16)
    with pytest.raises(ValueError, match="1 to 6 inputs"):
        te(torch.rand(7, 16))
    img = StreamerTemporalEncoding(16, 6, 2, 1, encoder=dict(type="StreamerCNNEncoder", feature_dim=16, width=4))
    assert img(torch.rand(3, 1, 32, 32)).shape == (1, 16)


def test_the_summary_depends_on_order_through_the_positional_encoding():
    torch.manual_seed(0)
    te = StreamerTemporalEncoding(16, buffer_size=4, n_heads=2, num_layers=1)
    x = torch.rand(3, 16)
    assert not torch.allclose(te(x), te(x.flip(0)))


def test_hierarchical_prediction_reads_the_layers_above():
    torch.manual_seed(0)
    hp = StreamerHierarchicalPrediction(16, max_layers=3, layer_num=1, n_heads=2, num_layers=1)
    own = torch.rand(1, 16)
    alone, with_context = hp(own), hp(torch.cat([own, torch.rand(1, 16)]))
    assert alone.shape == with_context.shape == (1, 16)
    assert not torch.allclose(alone, with_context)
    with pytest.raises(ValueError, match="1 <= S <= 2"):
        hp(torch.rand(3, 16))  # layer 1 of 3: itself and one layer above at most


def test_prediction_losses():
    a = torch.tensor([1.0, 0.0])
    assert prediction_loss(a, a, "similarity") == 0
    assert prediction_loss(a, -a, "similarity") == pytest.approx(2.0)
    assert prediction_loss(a, torch.tensor([0.0, 0.0]), "distance") == pytest.approx(0.5)
    with pytest.raises(ValueError, match="distance_mode: unknown value 'l1'"):
        prediction_loss(a, a, "l1")


# -- the stack --------------------------------------------------------------------------------
def test_base_boundaries_fall_on_scene_changes_and_the_stack_grows_one_layer():
    frames, changes = scene_video()
    stack = StreamerStack(settings(), seed=0)
    preds = stream(stack, frames)
    assert preds[0] is None and all(p is not None and p.shape == (1, SIZE, SIZE) for p in preds[1:])
    video = stack.events()[-1]
    starts = [e["start"] for e in video["layers"][0]]
    matched = [c for c in changes if any(abs(s - c) <= TOLERANCE for s in starts)]
    assert len(matched) >= len(changes) - 1, (starts, changes)   # most changes (all of them, as measured)
    spurious = [s for s in starts[1:] if all(abs(s - c) > TOLERANCE for c in changes)]
    assert len(spurious) <= 1, (starts, changes)
    assert all(e["closed_by"] == "loss" for e in video["layers"][0][:-1])
    # layer 1 is stacked at the first base boundary (the base has seen >= evolve_every frames); it sees too few
    # scene events to close one of its own, so no third layer grows
    assert stack.num_layers == 2
    top = video["layers"][1]
    assert len(top) == 1 and top[0]["children"] == list(range(len(starts)))
    assert (top[0]["start"], top[0]["end"]) == (0, len(frames) - 1)


def test_evolve_every_delays_the_new_layer():
    frames, changes = scene_video()
    stack = StreamerStack(settings(evolve_every=changes[0] + 5), seed=0)
    stream(stack, frames)
    base, top = stack.events()[-1]["layers"]
    # the first base event closes before the base has seen evolve_every frames: it has no parent
    first_child = top[0]["children"][0]
    assert first_child >= 1 and base[first_child]["start"] > changes[0] - TOLERANCE - 1


def test_stack_grows_to_max_layers_and_records_a_consistent_hierarchy():
    torch.manual_seed(3)
    frames = torch.rand(12, 1, 16, 16)
    # every loss is above 0: every input with a prediction closes an event, so each layer stacks a new one
    stack = StreamerStack(settings(demarcation_mode="fixed", loss_threshold=0.0, evolve_every=1, max_layers=3), seed=0)
    counts = []
    for f in frames:
        stack.step(f)
        counts.append(stack.num_layers)
    assert counts[:4] == [1, 2, 3, 3] and counts[-1] == 3
    layers = stack.events()[-1]["layers"]
    assert [e["start"] for e in layers[0]] == list(range(12))   # one base event per frame
    for level in (1, 2):
        covered = []
        for e in layers[level]:
            kids = [layers[level - 1][k] for k in e["children"]]
            assert e["start"] == kids[0]["start"] and e["end"] == kids[-1]["end"]
            assert all(a["end"] + 1 == b["start"] for a, b in zip(kids, kids[1:]))   # contiguous children
            covered += e["children"]
        assert covered == sorted(set(covered))   # each child belongs to one parent


def test_reset_keeps_weights_and_layers_but_restarts_the_stream():
    frames, _ = scene_video(n_scenes=2, length=20)
    stack = StreamerStack(settings(evolve_every=5), seed=0)
    stream(stack, frames)
    n, weights = stack.num_layers, {k: v.clone() for k, v in stack.state_dict().items() if torch.is_tensor(v)}
    stack.reset_stream()
    assert stack.num_layers == n and all(not layer.buffer for layer in stack.layers)
    assert all(torch.equal(v, stack.state_dict()[k]) for k, v in weights.items())
    assert stack.step(frames[0]) is None   # first frame of the new video: nothing to predict from
    assert len(stack.events()) == 2


def test_learning_lowers_the_base_loss_on_a_steady_scene():
    frames, _ = scene_video(n_scenes=1, length=40)
    stack = StreamerStack(settings(), seed=0)
    losses = []
    for f in frames:
        stack.step(f)
        losses.append(stack.last_base_loss)
    assert sum(losses[-10:]) < 0.5 * sum(losses[1:11])


def test_resume_from_a_state_dict_continues_exactly():
    frames, _ = scene_video(n_scenes=3, length=20)
    cut = 28  # inside the second scene, with two layers and open events on both
    whole = StreamerStack(settings(evolve_every=5), seed=0)
    expected = stream(whole, frames)

    first = StreamerStack(settings(evolve_every=5), seed=0)
    head = stream(first, frames[:cut])
    assert first.num_layers == 2
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)   # what engine/checkpoint.py allows: tensors and plain types
    resumed = StreamerStack(settings(evolve_every=5), seed=0)
    assert resumed.num_layers == 1
    resumed.load_state_dict(state)
    assert resumed.num_layers == 2
    tail = stream(resumed, frames[cut:])

    for a, b in zip(expected[1:], head[1:] + tail):
        assert torch.equal(a, b)
    assert whole.events() == resumed.events()
    for (k, v), (k2, v2) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert k == k2
        if torch.is_tensor(v):
            assert torch.equal(v, v2), k


def test_learning_off_changes_no_weight():
    frames, _ = scene_video(n_scenes=2, length=10)
    stack = StreamerStack(settings(), seed=0)
    before = {k: v.clone() for k, v in stack.state_dict().items() if torch.is_tensor(v)}
    stream(stack, frames, learn=False)
    assert all(torch.equal(v, stack.state_dict()[k]) for k, v in before.items())
    assert len(stack.events()[-1]["layers"][0]) >= 1


def test_a_frame_of_the_wrong_shape_is_refused():
    stack = StreamerStack(settings(channels=3), seed=0)
    with pytest.raises(ValueError, match=r"expects one frame \(3, H, W\)"):
        stack.step(torch.rand(1, 32, 32))
