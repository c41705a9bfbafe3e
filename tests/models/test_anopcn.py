"""The AnoPCN method: losses, streaming prediction, the config."""
from pathlib import Path

import pytest
import torch

from pyanomaly.models import AnoPCN
from pyanomaly.registry import MODELS, build

from testutils import moving_bar

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(pcm=dict(hidden_channels=(4,), base_channels=4), erm=dict(base_channels=4, depth=1))


def tiny(**kw):
    torch.manual_seed(0)
    return AnoPCN(**{**TINY, **kw})


@pytest.fixture
def clip():
    torch.manual_seed(1)
    return torch.rand(2, 5, 1, 8, 8)


def test_losses_are_finite_scalars_and_train_every_part(clip):
    model = tiny()
    losses = model({"frames": clip})
    assert set(losses) == {"loss_pcm", "loss_erm_intensity", "loss_erm_gradient"}
    assert all(v.dim() == 0 and torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert model.pcm.rnn.cells[0].conv.weight.grad.abs().sum() > 0
    assert model.erm.head.weight.grad.abs().sum() > 0


def test_loss_weights_scale_their_terms(clip):
    base = tiny()({"frames": clip})
    weighted = tiny(pcm_weight=2.0, erm_intensity_weight=0.5, erm_gradient_weight=0.0)({"frames": clip})
    torch.testing.assert_close(weighted["loss_pcm"], 2 * base["loss_pcm"])
    torch.testing.assert_close(weighted["loss_erm_intensity"], 0.5 * base["loss_erm_intensity"])
    assert weighted["loss_erm_gradient"] == 0


def test_training_steps_reduce_the_loss():
    model = tiny()
    frames = moving_bar(2, 6)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.train_step({"frames": frames}, opt)["loss"]
    for _ in range(15):
        last = model.train_step({"frames": frames}, opt)["loss"]
    assert last < 0.5 * first, (first, last)


def test_predict_stream_is_causal_chunk_invariant_and_marks_warmup():
    model = tiny(warmup=2).eval()
    torch.manual_seed(2)
    video = torch.rand(11, 1, 8, 8)
    whole, valid, state = model.predict_stream(video)
    assert whole.shape == video.shape and whole.min() >= 0 and whole.max() <= 1
    assert valid.tolist() == [False, False] + [True] * 9
    assert state["seen"] == 11
    parts, valids, st = [], [], None
    for s, e in ((0, 1), (1, 2), (2, 6), (6, 6), (6, 11)):
        p, v, st = model.predict_stream(video[s:e], st)
        parts.append(p)
        valids.append(v)
    torch.testing.assert_close(torch.cat(parts), whole, atol=1e-6, rtol=1e-5)
    assert torch.cat(valids).tolist() == valid.tolist()
    pv, vv = model.predict_video(video, chunk=4)
    torch.testing.assert_close(pv, whole, atol=1e-6, rtol=1e-5)
    changed = video.clone()
    changed[7:] = torch.rand_like(changed[7:])
    other, _, _ = model.predict_stream(changed)
    torch.testing.assert_close(other[:8], whole[:8])  # prediction[i] uses frames before i only
    assert not torch.allclose(other[8:], whole[8:])


def test_erm_context_can_be_switched_off(clip):
    model = tiny(erm_context=False)
    assert model.erm.context_channels == 0
    assert torch.isfinite(sum(model({"frames": clip}).values()))
    pred, valid, _ = model.eval().predict_stream(torch.rand(4, 1, 8, 8))
    assert pred.shape == (4, 1, 8, 8) and valid.sum() == 2


def test_bad_arguments_are_explained(clip):
    with pytest.raises(ValueError, match="warmup"):
        tiny(warmup=0)
    with pytest.raises(ValueError, match="longer than warmup=4"):
        tiny(warmup=4)({"frames": clip[:, :4]})


def test_registered_and_built_from_the_config():
    from pyanomaly.config import cfg_to_dict, load_cfg

    cfg = load_cfg(ROOT / "configs" / "anopcn.yaml")
    assert cfg.MODEL.NAME == "AnoPCN"
    # the engine offers clip_length to every method; AnoPCN does not take it
    model = build(MODELS, dict(type=cfg.MODEL.NAME, **cfg_to_dict(cfg.MODEL.ARGS)),
                  clip_length=cfg.DATASET.CLIP_LENGTH)
    assert isinstance(model, AnoPCN)
    losses = model({"frames": torch.rand(1, cfg.DATASET.CLIP_LENGTH, 1, 16, 16)})
    assert all(torch.isfinite(v) for v in losses.values())
