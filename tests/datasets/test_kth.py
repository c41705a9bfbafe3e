"""kth: the KTH layout and person split, on tiny generated trees of real MJPG .avi files."""
import shutil

import cv2
import numpy as np
import pytest
import torch

from pyanomaly.config import load_cfg
from pyanomaly.datasets import build_dataset
from pyanomaly.datasets.kth import ACTIONS, SPLIT_PERSONS, KTHDataset, make_motion_digits
from pyanomaly.datasets.video import DatasetError

PERSONS = (2, 11, 12, 19, 22)  # testing, training, training, validation, testing


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("kth") / "kth"
    return make_motion_digits(root, seed=0, persons=PERSONS, scenarios=(1, 3), frames=14, size=(48, 64),
                              digit_size=20)


def _ds(root, split, **kw):
    return KTHDataset(root, split=split, clip_length=kw.pop("clip_length", 4), image_size=(24, 32), cache_dir=None,
                      **kw)


def test_layout_and_person_split(tree):
    assert sorted(p.name for p in tree.iterdir() if p.is_dir()) == sorted(ACTIONS)
    assert (tree / "boxing" / "person11_boxing_d3_uncomp.avi").is_file()
    persons = {}
    for split in ("training", "validation", "testing"):
        ds = _ds(tree, split)
        persons[split] = {int(n[6:8]) for n in ds.names}
        assert persons[split] <= set(SPLIT_PERSONS[split])
        assert len(ds.videos) == 6 * 2 * len(persons[split])
        for name, target in zip(ds.names, ds.targets):
            assert name.split("_")[1] == ds.classes[target]
    assert persons == {"training": {11, 12}, "validation": {19}, "testing": {2, 22}}


def test_samples_carry_frames_and_class(tree):
    ds = _ds(tree, "training", clip_stride=3)
    assert len(ds) == len(ds.videos) * 4  # starts 0, 3, 6, 9 of 14 frames
    s = ds[len(ds) - 1]
    assert s["frames"].shape == (4, 1, 24, 32) and s["frames"].dtype == torch.float32
    assert s["target"] == ds.targets[s["video"]] == ACTIONS.index("walking")
    # validation and testing clips do not overlap unless asked to
    assert len(_ds(tree, "testing")) == len(_ds(tree, "testing").videos) * 3  # starts 0, 4, 8
    assert len(_ds(tree, "testing", eval_clip_stride=2)) == len(_ds(tree, "testing").videos) * 6
    rgb = KTHDataset(tree, split="validation", clip_length=4, image_size=(24, 32), channels=3, cache_dir=None)
    assert rgb[0]["frames"].shape == (4, 3, 24, 32)


def test_persons_override_and_strangers(tree, tmp_path, caplog):
    with caplog.at_level("WARNING"):
        ds = _ds(tree, "testing", persons={"testing": [11]})
    assert {int(n[6:8]) for n in ds.names} == {11}
    assert "persons [11] are in split 'testing' and in another split" in caplog.text  # 11 also trains
    caplog.clear()
    with pytest.raises(DatasetError, match="unknown split"):
        _ds(tree, "testing", persons={"test": [1]})
    root = tmp_path / "kth"
    shutil.copytree(tree, root)
    shutil.copy(root / "boxing" / "person22_boxing_d1_uncomp.avi", root / "boxing" / "person26_boxing_d1_uncomp.avi")
    with caplog.at_level("WARNING"):
        _ds(root, "testing")
    assert "[26]" in caplog.text


def test_layout_errors_name_the_problem(tree, tmp_path):
    root = tmp_path / "kth"
    shutil.copytree(tree, root)
    shutil.rmtree(root / "running")
    with pytest.raises(DatasetError, match=r"\['running'\]"):
        _ds(root, "training")
    shutil.copytree(tree / "running", root / "running")
    shutil.copy(root / "boxing" / "person11_boxing_d1_uncomp.avi", root / "walking" / "person11_boxing_d1_uncomp.avi")
    with pytest.raises(DatasetError, match="person<NN>_walking"):
        _ds(root, "training")


def _centres(ds, action):
    """Per video of ``action``: the bright pixels' centre (x) and count per frame."""
    out = []
    for i, t in enumerate(ds.targets):
        if ds.classes[t] == action and ds.names[i].endswith("d1_uncomp"):
            f = ds.video_frames(i)[:, 0].numpy()
            mask = f > 0.5
            xs = np.array([np.argwhere(m)[:, 1].mean() for m in mask])
            out.append((xs, mask.sum(axis=(1, 2))))
    return out


def test_generated_classes_differ_by_motion(tree):
    ds = KTHDataset(tree, split="training", clip_length=4, image_size=(48, 64), cache_dir=None)
    speed = {a: np.mean([np.median(np.abs(np.diff(xs))) for xs, _ in _centres(ds, a)])
             for a in ("walking", "jogging", "running", "handwaving", "handclapping")}
    assert speed["walking"] < speed["jogging"] < speed["running"]
    assert speed["handwaving"] < 0.5 * speed["walking"]  # waves up and down, in place
    for xs, _ in _centres(ds, "boxing"):  # back and forth: the direction changes within a period
        assert (np.diff(np.sign(np.diff(xs))) != 0).any()
    for _, size in _centres(ds, "handclapping"):  # pulsing size
        assert size.max() > 1.3 * size.min()


def test_motion_digits_generated_once_on_first_use(tmp_path):
    root = tmp_path / "md"
    yaml = tmp_path / "md.yaml"
    yaml.write_text(f"""DATASET:
  NAME: motion_digits
  ROOT: {root}
  CLIP_LENGTH: 4
  IMAGE_SIZE: [24, 32]
  ARGS:
    generator: {{persons: [11, 22], scenarios: [1], frames: 8, size: [24, 32], digit_size: 10}}
""")
    cfg = load_cfg(yaml)
    ds = build_dataset(cfg, "testing")
    assert len(ds.videos) == 6 and {int(n[6:8]) for n in ds.names} == {22}
    cap = cv2.VideoCapture(str(root / "jogging" / "person22_jogging_d1_uncomp.avi"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 32
    cap.release()
    stamp = (root / "README.txt").stat().st_mtime_ns
    build_dataset(cfg, "training")
    assert (root / "README.txt").stat().st_mtime_ns == stamp
