"""The Classifier method: losses, learning a motion, evaluation files, the KTH config end to end."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from pyanomaly.models.classifier import Classifier, ClipClassifier
from pyanomaly.networks.meta.sa_convlstm import SAConvLSTM
from pyanomaly.registry import MODELS, TASKS, build
from testutils import REPO, tool_env

TINY = dict(num_classes=3, hidden_channels=(6,), base_channels=4, downsample=2)


def _bars(direction: int, n: int = 4, t: int = 5, size: int = 8, seed: int = 0) -> torch.Tensor:
    """Clips of a bright bar moving right (+1), left (-1) or staying (0), random start columns."""
    g = torch.Generator().manual_seed(seed)
    clips = torch.zeros(n, t, 1, size, size)
    for k in range(n):
        x0 = int(torch.randint(1, size - 1, (1,), generator=g))
        for i in range(t):
            x = (x0 + direction * i) % size
            clips[k, i, 0, :, x] = 1.0
    return clips


def test_losses_logits_and_options():
    torch.manual_seed(0)
    model = build(MODELS, dict(type="Classifier", **TINY))
    clips = torch.rand(2, 4, 1, 8, 12)
    losses = model({"frames": clips, "target": torch.tensor([0, 2])})
    assert list(losses) == ["loss_ce"] and torch.isfinite(losses["loss_ce"])
    assert model.net(clips).shape == (2, 3)
    still = Classifier(motion=False, **TINY)
    assert still.net.encoder.stem[0].in_channels == 1 and model.net.encoder.stem[0].in_channels == 2
    sa = Classifier(cell="SAConvLSTM", cell_args={"attention_channels": 2}, **TINY)
    assert isinstance(sa.net.rnn, SAConvLSTM) and sa.net(clips).shape == (2, 3)
    with pytest.raises(KeyError, match="target"):
        model({"frames": clips})
    with pytest.raises(NotImplementedError):
        model.predict_stream(clips[0])


def test_learns_the_direction_of_motion():
    torch.manual_seed(0)
    model = Classifier(**TINY)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    train = {"frames": torch.cat([_bars(d, seed=s) for s in range(4) for d in (1, -1, 0)]),
             "target": torch.tensor([0] * 4 + [1] * 4 + [2] * 4).repeat(4)}
    for _ in range(40):
        model.train_step(train, opt)
    test = torch.cat([_bars(d, n=8, seed=99) for d in (1, -1, 0)])
    with torch.no_grad():
        pred = model.eval().net(test).argmax(1)
    assert (pred == torch.tensor([0] * 8 + [1] * 8 + [2] * 8)).float().mean() >= 0.9


class _Clips(torch.utils.data.Dataset):
    classes = ("right", "left", "still")

    def __init__(self):
        self.frames = torch.cat([_bars(d, n=3, seed=5) for d in (1, -1, 0)])
        self.targets = [0, 0, 0, 1, 1, 1, 2, 2, 2]

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return {"frames": self.frames[i], "target": self.targets[i], "video": i // 2, "frame": 4}


def test_evaluate_counts_the_confusion_and_writes_files(tmp_path):
    torch.manual_seed(0)
    model = Classifier(eval_batch=4, **TINY)
    data = _Clips()
    probs, targets, videos = model.predict_clips(data, torch.device("cpu"))
    assert model.task == "classification"
    metrics = build(TASKS, dict(type=model.task)).evaluate(model, data, torch.device("cpu"), tmp_path)
    pred = probs.argmax(1)
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.sum() == 9 and confusion.sum(1).tolist() == [3, 3, 3]
    for t, p in zip(targets, pred):
        assert confusion[t, p] >= 1
    assert metrics["accuracy"] == pytest.approx(np.trace(confusion) / 9)
    video_ok = [probs[videos == v].mean(0).argmax() == targets[videos == v][0] for v in range(5)]
    assert metrics["video_accuracy"] == pytest.approx(np.mean(video_ok)) and metrics["videos"] == 5
    assert metrics["classes"] == ["right", "left", "still"]
    assert metrics["per_class_accuracy"]["left"] == pytest.approx(confusion[1, 1] / 3)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["confusion_matrix"] == metrics["confusion_matrix"]
    assert (tmp_path / "plots" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert model.training


def test_train_tool_runs_the_kth_config(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, str(REPO / "tools" / "train.py"), "--cfg", str(REPO / "configs" / "convlstm_kth.yaml"),
           "SYSTEM.OUTPUT_DIR", str(out), "SYSTEM.NUM_THREADS", "1", "TRAIN.MAX_STEPS", "2", "TRAIN.BATCH_SIZE", "2",
           "TRAIN.EVAL_PERIOD", "0", "MODEL.ARGS.hidden_channels", "[4]", "LOG.PROGRESS", "False",
           "TRAIN.TENSORBOARD", "False", "DATASET.ROOT", str(tmp_path / "motion_digits"),
           "DATASET.IMAGE_SIZE", "[24, 32]", "DATASET.CLIP_LENGTH", "4"]
    env = tool_env()
    env["PYANOMALY_CACHE"] = str(tmp_path / "cache")
    cmd += ["DATASET.ARGS.generator", "{'persons': [11, 22], 'scenarios': [1], 'frames': 8, 'size': [24, 32], "
            "'digit_size': 10}"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "classification" and metrics["clips"] == 6 * 2  # 6 test videos, 2 clips each
    assert len(metrics["confusion_matrix"]) == 6
    assert (out / "plots" / "confusion_matrix.png").is_file() and (out / "checkpoints" / "best.pth").is_file()
