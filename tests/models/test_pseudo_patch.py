"""Moving-patch pseudo-anomalies: what is pasted, where it goes, and the training switch."""
from __future__ import annotations

import pytest
import torch

from pyanomaly.models import FramePredictor
from pyanomaly.models.pseudo_patch import MovingPatch


def _pasted(out: torch.Tensor) -> torch.Tensor:
    """Boolean mask of changed pixels of a history that was all zeros: (B, T, H, W)."""
    return out.abs().sum(2) > 0


def test_a_patch_from_the_next_clip_slides_through_every_frame_and_the_input_is_kept():
    torch.manual_seed(0)
    history = torch.zeros(3, 4, 1, 64, 64)
    sources = torch.stack([torch.full((1, 64, 64), float(v)) for v in (0.2, 0.5, 0.8)])
    out = MovingPatch(prob=1.0, size=10, speed=3.0, alpha=1.0)(history, sources)
    assert history.abs().sum() == 0
    mask = _pasted(out)
    for b in range(3):
        assert torch.all(mask[b].sum((1, 2)) == 100)  # a 10 x 10 patch in every frame
        values = out[b, :, 0][mask[b]]
        assert torch.allclose(values, torch.full_like(values, (0.2, 0.5, 0.8)[(b + 1) % 3]))
        centres = [torch.nonzero(mask[b, k]).float().mean(0) for k in range(4)]
        steps = [float((centres[k + 1] - centres[k]).norm()) for k in range(3)]
        # 3 pixels a frame, rounded to the pixel grid, or less where the border stops it
        assert max(steps) <= 3.0 + 1.5 and (sum(steps) > 0 or any(c.min() == 0 or c.max() >= 54 for c in centres))


def test_alpha_blends_and_prob_zero_leaves_every_clip_alone():
    torch.manual_seed(1)
    history = torch.full((2, 3, 1, 32, 32), 0.4)
    sources = torch.ones(2, 1, 32, 32)
    out = MovingPatch(prob=1.0, size=8, speed=0.0, alpha=0.25)(history, sources)
    changed = out[out != 0.4]
    assert changed.numel() == 2 * 3 * 64 and torch.allclose(changed, torch.full_like(changed, 0.4 * 0.75 + 0.25))
    assert torch.equal(MovingPatch(prob=0.0)(history, sources), history)


def test_the_same_seed_draws_the_same_patches():
    history, sources = torch.rand(4, 4, 1, 48, 48), torch.rand(4, 1, 48, 48)
    torch.manual_seed(5)
    a = MovingPatch(prob=0.5)(history, sources)
    torch.manual_seed(5)
    b = MovingPatch(prob=0.5)(history, sources)
    assert torch.equal(a, b) and not torch.equal(a, history)


@pytest.mark.parametrize("spec, message", [({"prob": 1.5}, "pseudo_patch.prob"),
                                           ({"prob": [0.2, 0.5]}, "pseudo_patch.prob"),
                                           ({"size": [48, 16]}, "pseudo_patch.size"),
                                           ({"alpha": 0.0}, "pseudo_patch.alpha"),
                                           ({"speed": [1, 2, 3]}, "pseudo_patch.speed"),
                                           ({"colour": 1}, "unknown \\['colour'\\]")])
def test_bad_settings_are_refused_by_name(spec, message):
    with pytest.raises(ValueError, match=message):
        MovingPatch.from_config(spec)


def test_the_predictor_pastes_in_training_only():
    net = dict(type="UNet", in_channels=1, history=2, base_channels=4, depth=1)
    frames = torch.rand(2, 3, 1, 16, 16)
    plain = FramePredictor(network=net, clip_length=3)
    patched = FramePredictor(network=net, clip_length=3, pseudo_patch={"prob": 1.0, "size": 8, "alpha": 1.0})
    patched.load_state_dict(plain.state_dict())
    assert MovingPatch.from_config(None) is None and plain.pseudo_patch is None
    plain.eval(), patched.eval()  # first, before training steps move the batch-norm statistics
    assert torch.equal(plain.predict_stream(frames[0])[0], patched.predict_stream(frames[0])[0])
    assert torch.equal(plain(dict(frames=frames))["loss_IntensityLoss"], patched(dict(frames=frames))["loss_IntensityLoss"])
    plain.train(), patched.train()
    torch.manual_seed(0)
    with_patch = patched(dict(frames=frames))["loss_IntensityLoss"]
    assert not torch.allclose(with_patch, plain(dict(frames=frames))["loss_IntensityLoss"])
