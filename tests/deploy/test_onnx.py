"""ONNX export (``pyanomaly export --format onnx``) and the onnxruntime backend (``score --backend onnxruntime``).

Every exportable method, tiny: onnxruntime gives PyTorch's predictions to 1e-4 over a video fed
in chunks with the state carried; the command writes a file onnxruntime loads; scores of a
generated video match those of PyTorch; what cannot be exported is refused with one line.
"""
from __future__ import annotations

import copy
import csv

import cv2
import numpy as np
import onnx
import pytest
import torch

from pyanomaly.cli import main as cli
from pyanomaly.config import cfg_to_dict, load_cfg
from pyanomaly.deploy.onnx import export_onnx, onnx_bytes, onnxruntime_method, session
from pyanomaly.engine.checkpoint import save_checkpoint
from pyanomaly.engine.streaming import score_video
from pyanomaly.errors import ConfigError, ExportError
from pyanomaly.models.build import build_model, model_meta
from pyanomaly.registry import MODELS, build

from testutils import TWO_LAYER_PREDNET

C, H, W = 1, 16, 24
_PREDNET = dict(type="PredNet", stack_sizes=(1, 4, 8), R_stack_sizes=(4, 4, 8), A_filter_sizes=(3, 3),
                Ahat_filter_sizes=(3, 3, 3), R_filter_sizes=(3, 3, 3))

# the frame predictors, as their recipes build them (tiny): name -> (method arguments, graph kind)
EXPORTABLE = {
    "unet": (dict(type="FramePredictor", network=dict(type="UNet", in_channels=C, base_channels=4, depth=2),
                  clip_length=4, batch_windows=4, residual=True), "window"),
    "convlstm": (dict(type="FramePredictor", network=dict(type="ConvLSTMForecaster", in_channels=C,
                                                          hidden_channels=(4, 4), downsample=2, base_channels=4),
                      clip_length=4, batch_windows=3, residual=True), "window"),
    "forecaster": (dict(type="Forecaster", input_frames=3, clip_length=5, in_channels=C, hidden_channels=(4,),
                        base_channels=4, downsample=2, eval_batch=4), "window"),
    "prednet-window": (dict(type="PredNetPredictor", network=_PREDNET, clip_length=4, batch_windows=4),
                       "prednet_step"),
    "prednet-stream": (dict(type="PredNetPredictor", network=_PREDNET, clip_length=4, test_window=0),
                       "prednet_step"),
    "anopcn": (dict(type="AnoPCN", pcm=dict(hidden_channels=(4,), base_channels=4), erm=dict(base_channels=4, depth=1),
                    warmup=2, batch_frames=4), "anopcn"),
    "anopcn-no-context": (dict(type="AnoPCN", pcm=dict(hidden_channels=(4, 4), base_channels=4, motion=False),
                               erm=dict(base_channels=4, depth=1), erm_context=False, warmup=1), "anopcn"),
}

REFUSED = {
    "Streamer": (dict(type="Streamer", channels=C, feature_dim=16, buffer_size=2, max_layers=2, window_size=10,
                      n_heads=2, num_layers=1, cnn_width=4, cnn_grid=1), "learns while it streams"),
    "Classifier": (dict(type="Classifier", num_classes=3, in_channels=C, hidden_channels=(4,), base_channels=4,
                        downsample=2), "not a frame predictor"),
    "PredNetPredictor": (dict(type="PredNetPredictor", network={**_PREDNET, "extrap_start_time": 2}),
                         "extrap_start_time=2"),
}


def _method(args: dict):
    """The method with every weight moved off its initialisation (a head initialised to zero
    would hide a mismatch), in eval mode."""
    torch.manual_seed(0)
    model = build(MODELS, args).eval()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g), alpha=0.2)
    return model


def _video(n: int = 12) -> torch.Tensor:
    """``(n, C, H, W)`` in [0, 1]: a bar moving over a noisy background."""
    g = torch.Generator().manual_seed(1)
    x = 0.3 + 0.1 * torch.rand(n, C, H, W, generator=g)
    for t in range(n):
        x[t, :, :, 2 * t % W:2 * t % W + 3] = 0.9
    return x


@pytest.mark.parametrize("name", sorted(EXPORTABLE))
def test_onnxruntime_predicts_as_pytorch_with_the_state_carried(name, tmp_path):
    args, kind = EXPORTABLE[name]
    model = _method(args)
    report = export_onnx(model, tmp_path / "m.onnx", (H, W), C)
    assert report.graph == kind and report.max_abs_error <= 1e-4
    props = {p.key: p.value for p in onnx.load(tmp_path / "m.onnx").metadata_props}
    assert props["pyanomaly.method"] == args["type"] and props["pyanomaly.graph"] == kind
    assert props["pyanomaly.image_size"] == f"[{H}, {W}]" and props["pyanomaly.channels"] == str(C)

    runner = onnxruntime_method(model, tmp_path / "m.onnx")
    assert runner.backend == "onnxruntime"
    assert all(type(getattr(runner, part)).__module__ == "pyanomaly.deploy.graphs" for part in ("net", "pcm", "erm")
               if hasattr(model, part))  # the networks are onnxruntime's stand-ins
    video = _video()
    want, want_valid = copy.deepcopy(model).predict_video(video, chunk=5)  # 3 chunks: the state crosses two
    got, got_valid = runner.predict_video(video, chunk=5)
    assert torch.equal(got_valid, want_valid) and want_valid.sum() >= 8
    assert got.shape == want.shape
    assert (got - want)[want_valid].abs().max() <= 1e-4
    # the predictions depend on the frames: a different video gives different ones
    other, _ = runner.predict_video(video.flip(0), chunk=5)
    assert (other - got)[want_valid].abs().max() > 1e-2


def test_the_batch_axis_is_free_and_frame_size_fixed(tmp_path):
    model = _method(EXPORTABLE["unet"][0])
    sess = session(onnx_bytes(model, (H, W), C))
    (inp,) = sess.get_inputs()
    assert inp.name == "history" and inp.shape[0] == "batch" and inp.shape[1:] == [3, C, H, W]
    for batch in (1, 5):
        x = torch.rand(batch, 3, C, H, W)
        (y,) = sess.run(None, {"history": x.numpy()})
        np.testing.assert_allclose(y, model.net(x).detach().numpy(), atol=1e-4)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_cannot_be_exported_is_refused_with_the_reason(name, tmp_path):
    args, why = REFUSED[name]
    model = build(MODELS, args).eval()
    with pytest.raises(ExportError, match=f"method {args['type']} cannot be exported to ONNX.*{why}"):
        export_onnx(model, tmp_path / "m.onnx", (H, W), C)
    assert not (tmp_path / "m.onnx").exists()


class SingularValuesTestNet(torch.nn.Module):
    """A next-frame network with an operator that has no ONNX form (singular values); not
    registered, so the registry's census of networks stays the package's."""

    def __init__(self, history: int = 3):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        last = history[:, -1]
        return last + self.scale * torch.linalg.svdvals(last).sum(dim=-1)[..., None, None]


def test_a_network_without_an_onnx_form_is_refused_naming_the_operator(tmp_path):
    model = build(MODELS, dict(type="FramePredictor", network=dict(type=SingularValuesTestNet), clip_length=4))
    with pytest.raises(ExportError, match="FramePredictor could not be traced to ONNX .*SingularValuesTestNet.*"
                                          "linalg_svdvals"):
        export_onnx(model.eval(), tmp_path / "m.onnx", (H, W), C)
    assert not (tmp_path / "m.onnx").exists()


def test_a_graph_that_differs_from_pytorch_is_not_written(tmp_path):
    model = _method(EXPORTABLE["convlstm"][0])
    with pytest.raises(ExportError, match="differs from PyTorch by .* nothing was written"):
        export_onnx(model, tmp_path / "m.onnx", (H, W), C, tolerance=-1.0)  # no difference passes
    assert list(tmp_path.iterdir()) == []


def test_a_file_of_another_method_is_refused(tmp_path):
    export_onnx(_method(EXPORTABLE["unet"][0]), tmp_path / "unet.onnx", (H, W), C)
    with pytest.raises(ExportError, match="does not fit method PredNetPredictor"):
        onnxruntime_method(_method(EXPORTABLE["prednet-stream"][0]), tmp_path / "unet.onnx")


# -- the commands ------------------------------------------------------------------------------
PREDNET_MODEL = TWO_LAYER_PREDNET.lstrip("\n")
STREAMER_MODEL = """MODEL:
  NAME: Streamer
  ARGS: {feature_dim: 16, buffer_size: 2, max_layers: 2, window_size: 10, n_heads: 2, num_layers: 1, cnn_width: 4,
         cnn_grid: 1}
"""
TINY = f"""DATASET:
  CLIP_LENGTH: 4
  IMAGE_SIZE: [{H}, {W}]
TEST:
  CHUNK: 7
STREAM:
  NORMALIZE: {{window: 20, warmup: 3}}
LOG:
  PROGRESS: False
"""


def _checkpoint(folder, model: str = PREDNET_MODEL):
    """A config file and a checkpoint carrying it, weights moved off their initialisation."""
    cfg_path = folder / "tiny.yaml"
    cfg_path.write_text(TINY + model)
    cfg = load_cfg(cfg_path)
    torch.manual_seed(0)
    model = build_model(cfg, torch.device("cpu"))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p), alpha=0.05)
    ckpt = folder / "tiny.pth"
    save_checkpoint(ckpt, {"model": model.state_dict(), "step": 0,
                           "meta": {**model_meta(cfg), "config": cfg_to_dict(cfg)}})
    return cfg_path, cfg, ckpt


def _cli(argv, capsys) -> tuple[int, str, str]:
    try:
        cli(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_export_command_writes_a_checked_onnx_file(tmp_path, capsys):
    _, _, ckpt = _checkpoint(tmp_path)
    out = tmp_path / "deploy" / "tiny.onnx"
    code, stdout, stderr = _cli(["export", "--format", "onnx", str(ckpt), str(out)], capsys)
    assert code == 0, stderr
    assert stdout.startswith(f"wrote {out}: PredNetPredictor (prednet_step graph); onnxruntime matches PyTorch")
    sess = session(out)
    assert [i.name for i in sess.get_inputs()] == ["frame", "R0", "R1", "c0", "c1", "E0", "E1"]
    assert not (tmp_path / "deploy" / "SHA256SUMS").exists()  # that is the published .pth's


@pytest.mark.parametrize("case", ["unexportable", "bad format", "not writable", "bf16"])
def test_export_command_refuses_with_one_error_line(case, tmp_path, capsys):
    _, _, ckpt = _checkpoint(tmp_path, STREAMER_MODEL if case == "unexportable" else PREDNET_MODEL)
    (tmp_path / "a_file").write_text("")
    out = tmp_path / ("a_file/tiny.onnx" if case == "not writable" else "tiny.onnx")
    argv = ["export", "--format", "tflite" if case == "bad format" else "onnx", str(ckpt), str(out)]
    if case == "bf16":
        argv += ["--dtype", "bf16"]
    code, stdout, stderr = _cli(argv, capsys)
    assert code == 2 and stdout == ""
    lines = stderr.strip().splitlines()
    expected = {"unexportable": "error: method Streamer cannot be exported to ONNX: it learns while it streams",
                "bad format": "pyanomaly export: error: argument --format: invalid choice: 'tflite'",
                "not writable": f"error: cannot write {out}: {tmp_path / 'a_file'} is a file, not a folder",
                "bf16": "error: --dtype bf16 is for --format pth"}[case]
    assert lines[-1].startswith(expected), stderr
    if case != "bad format":
        assert len(lines) == 1, stderr
    assert not out.exists() if case != "not writable" else not (tmp_path / "a_file").is_dir()


FRAMES = 30


@pytest.fixture
def clip(tmp_path):
    """A 30-frame MJPG AVI, 32x24: a square moving right, a white block at frames 20-23."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for t in range(FRAMES):
        img = np.full((24, 32, 3), 60, np.uint8)
        img[8:14, 2 + t // 2:8 + t // 2] = 170
        if 20 <= t < 24:
            img[2:10, 20:30] = 255
        writer.write(img)
    writer.release()
    return path


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_score_with_onnxruntime_gives_the_scores_of_pytorch(clip, tmp_path, capsys, restore_logging):
    cfg_path, cfg, ckpt = _checkpoint(tmp_path)
    score_video(cfg, ckpt, clip, tmp_path / "torch")
    code, _, stderr = _cli(["score", "--cfg", str(cfg_path), "--checkpoint", str(ckpt), "--video", str(clip),
                            "--out", str(tmp_path / "ort"), "--backend", "onnxruntime"], capsys)
    assert code == 0, stderr
    ours, theirs = _rows(tmp_path / "ort" / "frame_scores.csv"), _rows(tmp_path / "torch" / "frame_scores.csv")
    assert len(ours) == len(theirs) == FRAMES
    for column in ("error", "score"):
        a = np.array([float(r[column] or "nan") for r in ours])
        b = np.array([float(r[column] or "nan") for r in theirs])
        assert np.isfinite(b).sum() >= FRAMES - 8
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, equal_nan=True)
    assert '"backend": "onnxruntime"' in (tmp_path / "ort" / "alarms.json").read_text()


def test_onnxruntime_backend_refuses_bf16_before_writing(clip, tmp_path):
    _, cfg, ckpt = _checkpoint(tmp_path)
    cfg.defrost()
    cfg.TEST.PRECISION = "bf16"
    with pytest.raises(ConfigError, match="TEST.PRECISION bf16 .* set TEST.PRECISION fp32"):
        score_video(cfg, ckpt, clip, tmp_path / "out", backend="onnxruntime")
    assert not (tmp_path / "out").exists()
