"""The Streamer method: streaming contract, checkpoints through the engine, the tools end to end."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pyanomaly.engine.checkpoint import load_checkpoint, load_model_weights, save_checkpoint
from pyanomaly.models import Streamer
from pyanomaly.registry import MODELS, RegistryError, build
from testutils import REPO, tool_env

ARGS = dict(feature_dim=16, buffer_size=6, max_layers=3, evolve_every=8, window_size=10, modifier=1.3, n_heads=2,
            num_layers=1, cnn_width=4, lr=3e-3)


def video(n=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, 16, 16, generator=g).repeat(n, 1, 1, 1)
    x[n // 2:] = torch.rand(1, 16, 16, generator=g)  # a scene change half-way
    return (x + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def model(**kw):
    return Streamer(**{**ARGS, **kw})


def test_built_by_name_and_bad_settings_are_named():
    m = build(MODELS, dict(type="Streamer", **ARGS), clip_length=10)
    assert isinstance(m, Streamer) and m.online
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['buffer'\] in MODEL.ARGS"):
        Streamer(buffer=4)
    with pytest.raises(ValueError, match="distance_mode: unknown value 'l2'"):
        Streamer(distance_mode="l2")
    with pytest.raises(RegistryError, match="unknown demarcation 'avg'"):
        Streamer(demarcation_mode="avg")
    with pytest.raises(NotImplementedError, match="learns online"):
        m({"frames": torch.rand(1, 4, 1, 16, 16)})


@pytest.mark.parametrize("learn", [False, True])
def test_predict_stream_is_chunk_invariant_and_marks_the_first_frame(learn):
    x = video()
    whole = model(learn_at_test=learn)
    p, v, _ = whole.predict_stream(x)
    chunked = model(learn_at_test=learn)
    parts, valids, state = [], [], None
    for a, b in ((0, 7), (7, 20), (20, 30)):
        q, w, state = chunked.predict_stream(x[a:b], state)
        parts.append(q)
        valids.append(w)
    assert torch.equal(torch.cat(parts), p) and torch.equal(torch.cat(valids), v)
    assert not v[0] and v[1:].all()
    assert whole.stack.events() == chunked.stack.events()
    # a new video (state None) starts without history
    _, v2, _ = whole.predict_stream(x[:3])
    assert not v2[0] and len(whole.stack.events()) == 2


def test_predictions_are_causal_with_learning_on():
    x = video()
    y = x.clone()
    y[20:] = 1 - y[20:]
    p, _, _ = model(learn_at_test=True).predict_stream(x)
    q, _, _ = model(learn_at_test=True).predict_stream(y)
    assert torch.equal(p[:21], q[:21])  # frame 20 is predicted before it is seen
    assert not torch.equal(p[21:], q[21:])


def test_learn_at_test_decides_whether_weights_change():
    x = video()
    frozen, learning = model(), model(learn_at_test=True)
    w0 = frozen.stack.layers[0].temporal.position.clone()
    frozen.predict_stream(x)
    learning.predict_stream(x)
    assert torch.equal(frozen.stack.layers[0].temporal.position, w0)
    assert not torch.equal(learning.stack.layers[0].temporal.position, w0)


def test_engine_checkpoint_resumes_the_stream_exactly(tmp_path):
    """Stream N frames, save with the engine's atomic writer, load (weights_only) into a fresh model, go on."""
    x = torch.cat([video(30, seed=0), video(30, seed=1)])
    # a full buffer closes an event, so the stack grows whatever the losses
    ref = model(force_fixed_buffer=True)
    expected, _, _ = ref.stream(x, None, learn=True)

    first = model(force_fixed_buffer=True)
    head, _, state = first.stream(x[:37], None, learn=True)
    assert first.stack.num_layers >= 2
    save_checkpoint(tmp_path / "last.pth", {"model": first.state_dict(), "state": state})
    ckpt = load_checkpoint(tmp_path / "last.pth")
    resumed = model(force_fixed_buffer=True)
    load_model_weights(resumed, ckpt, tmp_path / "last.pth")
    assert resumed.stack.num_layers == first.stack.num_layers
    tail, _, _ = resumed.stream(x[37:], ckpt["state"], learn=True)
    assert torch.equal(torch.cat([head, tail]), expected)
    assert resumed.stack.events() == ref.stack.events()
    a, b = ref.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a if torch.is_tensor(a[k]))


def test_events_document_lists_layers_with_frames_times_and_children():
    m = model(snippet_size=0.25)
    m.predict_stream(video())
    doc = m.events_document(["v"], "testing")
    layers = doc["videos"][0]["layers"]
    assert [l["layer"] for l in layers] == list(range(m.stack.num_layers))
    base = layers[0]["events"]
    assert base[0]["start"] == 0 and base[-1]["end"] == 29 and base[-1]["closed_by"] == "end_of_stream"
    assert all(e["end_s"] == (e["end"] + 1) * 0.25 for e in base)
    with pytest.raises(RuntimeError, match="recorded 1 videos but 2 names"):
        m.events_document(["a", "b"], "testing")


# -- the tools ------------------------------------------------------------------------------------
TINY = """
DATASET:
  IMAGE_SIZE: [32, 32]
MODEL:
  NAME: Streamer
  ARGS: {feature_dim: 16, buffer_size: 6, max_layers: 3, evolve_every: 20, window_size: 10, modifier: 1.3,
         n_heads: 2, num_layers: 1, cnn_width: 4, lr: 0.003}
TRAIN:
  CHECKPOINT_PERIOD: 20
  LOG_PERIOD: 20
EVAL:
  PLOTS: False
  REPORT: False
LOG:
  PROGRESS: False
"""


def tool(*args, **kw):
    return subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO, env=tool_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def finish(p):
    out, err = p.communicate(timeout=600)
    return p.returncode, err


@pytest.mark.slow
def test_tools_train_killed_and_resumed_equals_one_pass_then_test_and_score(tmp_path, tiny_synthetic):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    common = ["--cfg", cfg, "DATASET.ROOT", tiny_synthetic]
    rc, err = finish(tool("tools/train.py", *common, "SYSTEM.OUTPUT_DIR", tmp_path / "ref"))
    assert rc == 0, err[-3000:]

    run = tmp_path / "run"
    p = tool("tools/train.py", *common, "SYSTEM.OUTPUT_DIR", run)
    last = run / "checkpoints" / "last.pth"
    while not last.exists() and p.poll() is None:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)  # somewhere after the first periodic checkpoint
    p.communicate()
    killed_at = torch.load(last, weights_only=True)["step"]
    assert killed_at % 20 == 0 and killed_at < 120 and not (run / "metrics.json").exists()
    rc, err = finish(tool("tools/train.py", *common, "SYSTEM.OUTPUT_DIR", run, "--resume"))
    assert rc == 0, err[-3000:]
    assert "resuming at frame" in err

    a = torch.load(tmp_path / "ref/checkpoints/last.pth", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert a["step"] == b["step"] == 120 and a["online"] == b["online"]
    assert a["model"].keys() == b["model"].keys()
    for k, v in a["model"].items():
        if torch.is_tensor(v):
            assert torch.equal(v, b["model"][k]), k
    for name in ("events_training.json", "events.json"):
        assert json.loads((tmp_path / "ref" / name).read_text()) == json.loads((run / name).read_text()), name
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "ref", run))
    assert ma["auc_micro"] == mb["auc_micro"] and 0 <= ma["auc_micro"] <= 1
    events = json.loads((run / "events.json").read_text())
    assert [v["video"] for v in events["videos"]] == ["01", "02", "03", "04"]

    # tools/test.py goes on streaming from the checkpoint, learning off (default) and on
    for learn, out in (("False", tmp_path / "test_off"), ("True", tmp_path / "test_on")):
        rc, err = finish(tool("tools/test.py", *common, "--checkpoint", run / "checkpoints/best.pth",
                              "SYSTEM.OUTPUT_DIR", out, "MODEL.ARGS.learn_at_test", learn))
        assert rc == 0, err[-3000:]
        assert (out / "events.json").is_file()
    off = json.loads((tmp_path / "test_off/metrics.json").read_text())
    assert off["auc_micro"] == ma["auc_micro"]  # learning off: the same scores as training's final evaluation
    on = json.loads((tmp_path / "test_on/metrics.json").read_text())
    assert on["auc_micro"] != off["auc_micro"]

    frames = Path(tiny_synthetic) / "testing" / "frames" / "02"
    rc, err = finish(tool("tools/score_video.py", *common, "--checkpoint", run / "checkpoints/best.pth",
                          "--video", frames, "--out", tmp_path / "scored"))
    assert rc == 0, err[-3000:]
    assert (tmp_path / "scored" / "frame_scores.csv").is_file()
    scored = json.loads((tmp_path / "scored" / "events.json").read_text())
    assert [v["video"] for v in scored["videos"]] == ["02"] and scored["videos"][0]["frames"] == 60
