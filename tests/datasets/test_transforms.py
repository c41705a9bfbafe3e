"""Training-time clip transforms: one draw per clip, every frame alike, errors that name the problem."""
import pytest
import torch

from pyanomaly.datasets.transforms import RandomBrightness, RandomCrop, RandomHorizontalFlip, build_transforms
from pyanomaly.registry import RegistryError


def clips(b=6, t=3, c=2, h=8, w=10):
    """Pixel values that say where they are: frame, channel, row, column all differ."""
    return torch.arange(b * t * c * h * w, dtype=torch.float32).view(b, t, c, h, w) / (b * t * c * h * w)


def test_random_crop_takes_one_window_per_clip():
    torch.manual_seed(0)
    x = clips()
    y = RandomCrop([4, 5])(x)
    assert y.shape == (6, 3, 2, 4, 5)
    offsets = set()
    for i in range(6):
        # the window's top-left value locates it in the clip's first frame ...
        top, left = [int(v) for v in torch.nonzero(x[i, 0, 0] == y[i, 0, 0, 0, 0])[0]]
        offsets.add((top, left))
        # ... and every frame and channel of the clip is cut at the same place
        assert torch.equal(y[i], x[i, :, :, top:top + 4, left:left + 5])
    assert len(offsets) > 1  # clips draw separately


def test_random_crop_errors():
    with pytest.raises(ValueError, match=r"RandomCrop size \[9, 5\] is larger than the frames \[8, 10\]"):
        RandomCrop([9, 5])(clips())
    with pytest.raises(ValueError, match=r"expects clips \(B, T, C, H, W\)"):
        RandomCrop(4)(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="positive"):
        RandomCrop([0, 4])


def test_flip_mirrors_whole_clips():
    x = clips()
    assert torch.equal(RandomHorizontalFlip(1.0)(x), x.flip(-1))
    assert torch.equal(RandomHorizontalFlip(0.0)(x), x)
    torch.manual_seed(1)
    y = RandomHorizontalFlip(0.5)(x)
    flipped = [torch.equal(y[i], x[i].flip(-1)) for i in range(6)]
    assert all(f or torch.equal(y[i], x[i]) for i, f in enumerate(flipped)) and 0 < sum(flipped) < 6
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        RandomHorizontalFlip(1.5)


def test_brightness_shifts_a_clip_by_one_offset_within_range():
    torch.manual_seed(2)
    x = torch.full((4, 3, 1, 5, 5), 0.5)
    y = RandomBrightness(0.2)(x)
    for i in range(4):
        offset = y[i] - x[i]
        assert torch.allclose(offset, offset.flatten()[0].expand_as(offset)) and abs(float(offset.flatten()[0])) <= 0.2
    assert float(RandomBrightness(0.5)(torch.ones(2, 1, 1, 2, 2)).max()) <= 1.0  # clipped to [0, 1]


def test_draws_depend_only_on_the_torch_generator_state():
    chain = build_transforms([{"type": "RandomCrop", "size": [4, 4]}, {"type": "RandomHorizontalFlip"},
                              {"type": "RandomBrightness", "delta": 0.1}])
    x = clips()
    torch.manual_seed(5)
    a = chain(x)
    torch.manual_seed(5)
    assert torch.equal(chain(x), a) and a.shape == (6, 3, 2, 4, 4)


def test_build_from_config_specs():
    assert build_transforms([]) is None
    with pytest.raises(RegistryError, match="unknown transform 'RandomCorp'. Did you mean 'RandomCrop'"):
        build_transforms([{"type": "RandomCorp", "size": 4}])


def test_a_run_trains_on_crops_and_scores_whole_frames(tmp_path, tiny_synthetic):
    import json
    from pathlib import Path

    from pyanomaly.config import load_cfg
    from pyanomaly.engine.launch import train
    repo = Path(__file__).resolve().parents[2]
    cfg = load_cfg(str(repo / "configs" / "convlstm.yaml"), [
        "DATASET.ROOT", str(tiny_synthetic), "DATASET.IMAGE_SIZE", "[32, 32]", "SYSTEM.OUTPUT_DIR", str(tmp_path / "run"),
        "DATASET.TRAIN_TRANSFORMS", "[{'type': 'RandomCrop', 'size': [16, 16]}, {'type': 'RandomBrightness'}]",
        "TRAIN.MAX_STEPS", "2", "TRAIN.EVAL_PERIOD", "0", "EVAL.PLOTS", "False", "EVAL.REPORT", "False",
        "TRAIN.IMAGE_PERIOD", "1"])
    metrics = train(cfg)
    assert metrics["frames_evaluated"] + metrics["frames_unscored"] == 4 * 60  # every test frame, uncropped
    written = (tmp_path / "run" / "config.yaml").read_text()
    assert "RandomCrop" in written and json.loads((tmp_path / "run" / "metrics.json").read_text())["auc_micro"] >= 0
