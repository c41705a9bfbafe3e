"""The Forecaster method: SSIM, losses, multi-frame forecasts, evaluation files, the config."""
import json
import subprocess
import sys

import pytest
import torch

from pyanomaly.datasets.moving_digits import MovingDigitsDataset
from pyanomaly.evaluation.ssim import gaussian_window, ssim
from pyanomaly.models.forecaster import Forecaster
from pyanomaly.networks.meta.sa_convlstm import SAConvLSTM
from pyanomaly.registry import MODELS, TASKS, build
from testutils import REPO, moving_bar, tool_env

TINY = dict(input_frames=3, clip_length=5, hidden_channels=(4,), base_channels=4, downsample=2)


def test_ssim_values():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 16, 16)
    torch.testing.assert_close(ssim(x, x), torch.ones(3))
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert (ssim(x, noisy) < 0.9).all()
    torch.testing.assert_close(ssim(x, noisy), ssim(noisy, x))
    # two constant images: only the luminance term is left, (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.2, 0.6, 0.01 ** 2
    got = ssim(torch.full((1, 1, 12, 12), a), torch.full((1, 1, 12, 12), b))
    assert got.item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-5)
    g = gaussian_window(11, 1.5)
    assert g.sum().item() == pytest.approx(1.0) and g.argmax() == 5
    with pytest.raises(ValueError):
        ssim(x, x[:, :, :8])


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_losses_and_forecast_shapes(loss):
    torch.manual_seed(0)
    model = build(MODELS, dict(type="Forecaster", loss=loss, **TINY))
    clip = torch.rand(2, 5, 1, 8, 8)
    losses = model({"frames": clip})
    assert list(losses) == [f"loss_{loss}"] and torch.isfinite(losses[f"loss_{loss}"])
    future = model.net(clip[:, :3])
    assert future.shape == (2, 2, 1, 8, 8) and 0 <= future.min() and future.max() <= 1
    assert model.net(clip[:, :3], future=4).shape == (2, 4, 1, 8, 8)
    # the forecast does not read the future frames
    changed = clip.clone()
    changed[:, 3:] = 0
    torch.testing.assert_close(model.net(changed[:, :3]), future)
    with pytest.raises(ValueError, match="input_frames"):
        Forecaster(input_frames=5, clip_length=5)


def test_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    model = Forecaster(**{**TINY, "hidden_channels": (8,)})
    frames = moving_bar(2, 5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.train_step({"frames": frames}, opt)["loss"]
    for _ in range(25):
        last = model.train_step({"frames": frames}, opt)["loss"]
    assert last < 0.6 * first, (first, last)


def test_self_attention_cell_is_a_switch():
    model = Forecaster(cell="SAConvLSTM", cell_args={"attention_channels": 2}, **TINY)
    assert isinstance(model.net.encoding_rnn, SAConvLSTM) and isinstance(model.net.forecasting_rnn, SAConvLSTM)
    losses = model({"frames": torch.rand(2, 5, 1, 8, 8)})
    sum(losses.values()).backward()
    assert model.net.forecasting_rnn.cells[0].memory.query.weight.grad.abs().sum() > 0


def test_evaluate_reports_model_and_baselines_and_writes_files(tmp_path):
    torch.manual_seed(0)
    data = MovingDigitsDataset(split="testing", clip_length=5, image_size=(32, 32), digit_size=12, num_test=5)
    model = Forecaster(eval_batch=2, strip_sequences=2, **TINY)
    assert model.task == "forecasting"
    metrics = build(TASKS, dict(type=model.task)).evaluate(model, data, torch.device("cpu"), tmp_path)
    clips = torch.stack([data[i]["frames"] for i in range(5)])
    copy_last = (clips[:, 2:3] - clips[:, 3:]).pow(2).mean(dim=(0, 2, 3, 4))
    assert metrics["per_frame"]["mse_copy_last"] == pytest.approx(copy_last.tolist(), rel=1e-5)
    assert metrics["mse_zeros"] == pytest.approx(clips[:, 3:].pow(2).mean().item(), rel=1e-5)
    future = clips[:, 3:].reshape(-1, 1, 32, 32)
    assert metrics["ssim_zeros"] == pytest.approx(ssim(torch.zeros_like(future), future).mean().item(), rel=1e-4)
    with torch.no_grad():
        forecast = model.net(clips[:, :3])
    assert metrics["mse"] == pytest.approx((forecast - clips[:, 3:]).pow(2).mean().item(), rel=1e-4)
    assert metrics["mse_reduction_vs_copy_last"] == pytest.approx(1 - metrics["mse"] / metrics["mse_copy_last"])
    assert metrics["sequences"] == 5 and len(metrics["per_frame"]["ssim"]) == 2
    assert model.training  # restored after evaluation
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["mse"] == pytest.approx(metrics["mse"]) and "ssim_copy_last" in saved
    png = tmp_path / "plots" / "forecast.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"


def test_predict_stream_uses_the_first_forecast_step():
    torch.manual_seed(0)
    model = Forecaster(**TINY).eval()
    video = torch.rand(7, 1, 8, 8)
    pred, valid, _ = model.predict_stream(video)
    assert valid.tolist() == [False] * 3 + [True] * 4
    with torch.no_grad():
        torch.testing.assert_close(pred[5], model.net(video[2:5][None], future=1)[0, 0])


def test_train_tool_runs_the_moving_digits_config(tmp_path):
    out = tmp_path / "run"
    config = REPO / "configs" / "convlstm_moving_digits.yaml"
    cmd = [sys.executable, str(REPO / "tools" / "train.py"), "--cfg", str(config),
           "SYSTEM.OUTPUT_DIR", str(out), "SYSTEM.NUM_THREADS", "1", "TRAIN.MAX_STEPS", "2", "TRAIN.BATCH_SIZE", "2",
           "TRAIN.EVAL_PERIOD", "0", "DATASET.ARGS.num_test", "3", "MODEL.ARGS.hidden_channels", "[4]",
           "MODEL.ARGS.cell", "SAConvLSTM", "LOG.PROGRESS", "False", "TRAIN.TENSORBOARD", "False"]
    result = subprocess.run(cmd, env=tool_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "forecasting" and metrics["sequences"] == 3
    assert (out / "checkpoints" / "best.pth").is_file() and (out / "plots" / "forecast.png").is_file()
    assert "mse_copy_last" in (out / "log.txt").read_text()
