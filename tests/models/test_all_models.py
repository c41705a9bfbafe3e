"""Every registered method: built by name, a registered task, a training step, the streaming contract.

A method registered in ``MODELS`` without an entry in ``CASES`` fails here: add a tiny
configuration for it (1-channel 16x24 frames, a few channels per layer).

Methods of task ``"anomaly_detection"`` must also keep the contract of
:mod:`pyanomaly.models.base` on a short video: ``predict_stream`` gives the same predictions
and validity however the video is chunked (state carried), the scoring loop
(:class:`~pyanomaly.scoring.video.VideoScorer`) gives the same errors and scores with an
offline and with a causal pipeline, and no prediction reads a later frame. A method giving an
anomaly map (``output = "anomaly_map"``) is scored by a cell scorer, and its map of frame ``t``
may read frame ``t`` itself (a measurement, such as the optical flow into the frame), never a
later one; so may a method giving its own error per frame (``"frame_error"``, ``(N,)``: Fusion),
scored by ``FRAME_ERROR``, and so may a reconstruction (``reconstructs = True``: an autoencoder's
frame ``t`` is rebuilt from frames ``<= t``). A method without weights (``has_weights = False``, a
baseline) has no training step to check: its ``fit_online`` must run and leave its state finite instead.

Every method that predicts frames (whatever its task) must also give several videos streamed
at once (``predict_streams``, :meth:`VideoScorer.push_many`) what each gives alone; a method
that batches must share its forward passes among them, and one that holds its stream in the
module (``concurrent_streams = False``) must refuse a second video.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from pyanomaly.flow import OpticalFlow
from pyanomaly.models.base import VADModel
from pyanomaly.registry import MODELS, SCORERS, TASKS, build, registered_names
from pyanomaly.scoring import CausalNormalizer, MinMaxNormalizer, ScorePipeline
from pyanomaly.scoring.video import VideoScorer

C, H, W = 1, 16, 24
FRAMES = 12
CHUNKS = (1, 5, 7)

_PREDNET = dict(type="PredNet", stack_sizes=(1, 4, 8), R_stack_sizes=(4, 4, 8), A_filter_sizes=(3, 3),
                Ahat_filter_sizes=(3, 3, 3), R_filter_sizes=(3, 3, 3))
# a full buffer closes an event, so the stack grows to 3 layers within a short video
_STREAMER = dict(feature_dim=16, buffer_size=2, force_fixed_buffer=True, max_layers=3, evolve_every=2,
                 window_size=10, modifier=1.3, n_heads=2, num_layers=1, cnn_width=4, cnn_grid=1, lr=3e-3)

# name -> {variant: (constructor arguments, frames per training clip; None for a method that
# learns online)}. A variant is a second way the same method runs at test time (PredNet's
# windows or one carried stream, Streamer learning at test time or not), checked on its own.
CASES = {
    "AnoPCN": {"": (dict(pcm=dict(hidden_channels=(4,), base_channels=4), erm=dict(base_channels=4, depth=1),
                         warmup=2, batch_frames=4), 5)},
    "Classifier": {"": (dict(num_classes=3, in_channels=C, hidden_channels=(4,), base_channels=4, downsample=2), 4)},
    "Forecaster": {"": (dict(input_frames=3, clip_length=5, in_channels=C, hidden_channels=(4,), base_channels=4,
                             downsample=2, eval_batch=4), 5)},
    "FramePredictor": {"": (dict(network=dict(type="UNet", in_channels=C, history=3, base_channels=4, depth=2),
                                 clip_length=4, batch_windows=4), 4)},
    "PredNetPredictor": {"window": (dict(network=_PREDNET, clip_length=4, batch_windows=4), 4),
                         "stream": (dict(network=_PREDNET, clip_length=4, test_window=0), 4)},
    # learn_at_test=False: the weights stay as built while a test video streams. With True the
    # method learns from each frame after predicting it, which is deterministic too, so both are
    # held to the same contract. Every check starts each video from a copy of the model as built:
    # the stack grows layers while it streams (whether it learns or not), so the same object is a
    # different starting point for a second video.
    "CopyLast": {"": (dict(), None)},
    "FlowSpeed": {"max": (dict(flow=dict(type="dis", preset="ultrafast")), None),
                  "excess": (dict(flow=dict(type="farneback"), excess=0.9, cell=8), None)},
    # 8 training frames, each read: 4 codewords per 8x8 cell
    "LocalAppearance": {"": (dict(cell=8, codewords=4, frame_stride=1), None)},
    # two cues without weights, one of each output kind: a flow map and a predicted frame
    # motion cues: the flows computed by the fastest DIS preset (training clips get theirs alike)
    "FlowPredictor": {"": (dict(network=dict(type="UNet", base_channels=4, depth=2), clip_length=4,
                                flow=dict(type="dis", preset="ultrafast"), batch_windows=4), 4)},
    "FlowConditionedPredictor": {"": (dict(network=dict(type="UNet", base_channels=4, depth=2), clip_length=4,
                                           flow=dict(type="dis", preset="ultrafast"), batch_windows=4), 4)},
    "Fusion": {"": (dict(cues=[dict(name="flow", method=dict(type="FlowSpeed", flow=dict(type="dis", preset="ultrafast")),
                                    error=dict(type="CELL_MAX", patch=8)),
                               dict(name="copy", method=dict(type="CopyLast"), error=dict(type="PSNR"))]), None)},
    # a cue scored per object: the flow speed over regions of frame difference (the bar's 2-pixel
    # edges: no opening, which would erase them), copying the last frame over regions of MOG2 (a
    # short warm-up so that a few frames score; no opening: the thin bar, learnt into the
    # background within frames, would leave nothing)
    "ObjectCue": {"difference": (dict(cue=dict(method=dict(type="FlowSpeed", flow=dict(type="dis", preset="ultrafast")),
                                               error=dict(type="CELL_MAX")),
                                      foreground=dict(method="difference", threshold=0.3, kernel=0, min_area=8)), None),
                  "mog2": (dict(cue=dict(method=dict(type="CopyLast"), error=dict(type="AREA")),
                                foreground=dict(method="mog2", warmup=3, kernel=0, min_area=8)), None)},
    # a window of 3 frames, or of 3 flows (DIS ultrafast), through a memory of 8 slots
    "Reconstructor": {"ConvAE": (dict(network=dict(type="ConvAE", in_channels=C, base_channels=4, depth=2,
                                                   latent_channels=2), frames=3, batch_windows=4), 3),
                      "MemAE-flow": (dict(network=dict(type="MemAE", base_channels=4, depth=2, slots=8, threshold=0.05),
                                          modality="flow", frames=3, flow=dict(type="dis", preset="ultrafast"),
                                          batch_windows=4), 4)},
    "Streamer": {"frozen": (dict(channels=C, learn_at_test=False, **_STREAMER), None),
                 "learning": (dict(channels=C, learn_at_test=True, **_STREAMER), None)},
}


def _package_names() -> list[str]:
    """Registered methods defined in the package. Test modules register helper methods of their
    own (``CopyLastTestModel`` in ``tests/tools``, at import) into the same registry, so which of
    those are present depends on what else pytest collected; a class whose module is not under
    ``pyanomaly.`` is one of them (or a user's plugin) and is left out."""
    return [n for n in registered_names(MODELS) if MODELS.get(n).__module__.startswith("pyanomaly.")]


def _params() -> list:
    return [pytest.param(name, variant, id=f"{name}-{variant}" if variant else name)
            for name in _package_names() for variant in CASES.get(name, {"no-case": None})]


def _case(name, variant):
    if name not in CASES:
        pytest.fail(f"registered method '{name}' has no entry in CASES of {__file__}: add a tiny configuration "
                    "for it (constructor arguments and frames per training clip)")
    return CASES[name][variant]


def _build(name, variant):
    args, _ = _case(name, variant)
    torch.manual_seed(0)
    return build(MODELS, dict(type=name, **args)).eval()


def _video(n=FRAMES, seed=0):
    """``(n, C, H, W)`` in [0, 1]: a bright bar moving right two pixels a frame over a noisy background."""
    g = torch.Generator().manual_seed(seed)
    x = 0.3 + 0.1 * torch.rand(n, C, H, W, generator=g)
    for t in range(n):
        x[t, :, :, (2 * t) % W:(2 * t) % W + 3] = 0.9
    return x


def _stream(model, video, chunk):
    """``predict_stream`` over ``video`` in chunks of ``chunk`` frames, from a copy of ``model``."""
    return copy.deepcopy(model).predict_video(video, chunk)


def _scorer(model):
    """A scorer of what the method gives: a predicted frame, an anomaly map, or its own error per frame."""
    kind = {"anomaly_map": "CELL_MAX", "frame_error": "FRAME_ERROR"}.get(model.output, "PSNR")
    return build(SCORERS, dict(type=kind, patch=8))


def _anomaly_detector(name, variant):
    """The method with every weight moved a little from its initial value: a part initialised to
    give nothing (AnoPCN's refinement head starts at zero) would otherwise hide what it reads
    (a method without weights: its statistics fitted)."""
    model = _fitted(name, variant)
    if model.task != "anomaly_detection":
        pytest.skip(f"{name} is measured by the '{model.task}' task; the streaming contract is that of anomaly "
                    "detection")
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g), alpha=0.05)
    return model


@pytest.mark.parametrize("name, variant", _params())
def test_built_by_name_with_a_registered_task(name, variant):
    model = _build(name, variant)
    assert isinstance(model, VADModel), f"{name} does not derive from VADModel (pyanomaly/models/base.py)"
    assert model.task in registered_names(TASKS), f"{name}.task '{model.task}' is not a registered task"


def _fitted(name, variant):
    """The method as built, with the statistics of a short training video fitted when it has any."""
    model = _build(name, variant)
    if not getattr(model, "has_weights", True):
        model.fit_online(_OneVideo(_video(8, seed=5)), torch.device("cpu"), save=lambda pos: None, progress=False)
    return model


@pytest.mark.parametrize("name, variant", _params())
def test_a_training_step_gives_finite_losses_and_moves_the_weights(name, variant):
    model = _build(name, variant).train()
    if not getattr(model, "has_weights", True):
        assert not list(model.parameters()), f"{name} says it has no weights but holds parameters"
        final = model.fit_online(_OneVideo(_video(8)), torch.device("cpu"), save=lambda pos: None, progress=False)
        assert final["frames"] in (0, 8), f"{name}: fit_online read {final['frames']} of the 8 training frames"
        assert all(torch.isfinite(b).all() for b in model.buffers()), f"{name}: non-finite statistics after fit"
        with pytest.raises(NotImplementedError):  # nothing to optimise: a trainer must not be given it
            model({"frames": _video(4)[None]})
        return
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    assert before, f"{name} has no parameters"
    if getattr(model, "online", False):
        assert callable(getattr(model, "fit_online", None)), f"{name} is online but has no fit_online"
        final = model.fit_online(_OneVideo(_video(8)), torch.device("cpu"), save=lambda pos: None, progress=False)
        assert final["frames"] == 8
    else:
        _, clip = _case(name, variant)
        g = torch.Generator().manual_seed(1)
        clips = torch.stack([_video(clip, seed=1), _video(clip, seed=2)])
        batch = {"frames": clips, "target": torch.randint(0, 2, (2,), generator=g),  # a class index, for classifiers
                 "flow": _clip_flows(clips)}  # as a dataset with DATASET.FLOW gives it, for a method that reads it
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses = model.train_step(batch, opt)
        assert "loss" in losses
        for k, v in losses.items():
            assert v.dim() == 0 and torch.isfinite(v), f"{name}: loss '{k}' = {v}"
    after = dict(model.named_parameters())  # an online method may add some as it learns (Streamer's layers)
    assert all(torch.isfinite(p).all() for p in after.values()), f"{name}: non-finite weights after training"
    moved = [k for k, p in before.items() if not torch.equal(p, after[k])]
    assert moved, f"{name}: no parameter changed in training"

# methods whose map of frame t reads frame t alone: no frame lacks a history
FRAME_ALONE = {"LocalAppearance"}


def _clip_flows(clips):
    """The optical flow between consecutive frames of clips ``(B, T, C, H, W)``: ``(B, T-1, 2, H, W)``."""
    flow = OpticalFlow("dis", "ultrafast")
    return torch.stack([flow.stream(clip)[0][1:] for clip in clips])


class _OneVideo:
    """The part of a dataset that ``fit_online`` reads: one video of frames ``(N, C, H, W)``."""

    def __init__(self, frames):
        self.frames, self.videos, self.names, self.lengths = frames, [0], ["v"], [frames.shape[0]]

    def video_frames(self, video, start, end):
        return self.frames[start:end]


@pytest.mark.parametrize("name, variant", _params())
def test_predict_stream_is_the_same_however_the_video_is_chunked(name, variant):
    model = _anomaly_detector(name, variant)
    video = _video()
    whole, valid = _stream(model, video, FRAMES)
    shape = (FRAMES,) if model.output == "frame_error" else video.shape  # a frame's own error, or its prediction
    assert whole.shape == shape and valid.shape == (FRAMES,) and valid.dtype == torch.bool
    if name in FRAME_ALONE:
        assert valid.all(), f"{name} reads each frame alone: every frame is valid, got {valid.tolist()}"
    else:
        assert valid.any() and not valid.all(), \
            f"{name}: expected a few frames without history, got valid {valid.tolist()}"
    assert torch.isfinite(whole[valid]).all()
    for chunk in CHUNKS:
        pred, ok = _stream(model, video, chunk)
        assert ok.tolist() == valid.tolist(), f"{name}: validity differs in chunks of {chunk}"
        torch.testing.assert_close(pred[valid], whole[valid], atol=1e-5, rtol=1e-5,
                                   msg=lambda m: f"{name}: predictions differ in chunks of {chunk}: {m}")


PIPELINES = {
    "offline": lambda higher: ScorePipeline(MinMaxNormalizer(), higher),
    "causal": lambda higher: ScorePipeline(CausalNormalizer(window=20, warmup=3), higher),
}


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
@pytest.mark.parametrize("name, variant", _params())
def test_scoring_loop_gives_the_same_errors_and_scores_however_the_video_is_chunked(name, variant, pipeline):
    model = _anomaly_detector(name, variant)
    scorer = _scorer(model)
    video = _video()
    results = {}
    for chunk in (FRAMES, *CHUNKS):
        run = VideoScorer(copy.deepcopy(model), scorer, PIPELINES[pipeline](scorer.higher_is_anomalous),
                          torch.device("cpu")).start()
        pushed = [run.push(video[s:s + chunk]) for s in range(0, FRAMES, chunk)]
        result = run.finish()
        if pipeline == "causal":  # a causal score is final when its frame is pushed
            np.testing.assert_array_equal(np.concatenate([c.scores for c in pushed]), result.scores)
        results[chunk] = result
    ref = results[FRAMES]
    assert np.isfinite(ref.scores).sum() >= 3, f"{name}: too few scored frames to compare: {ref.scores}"
    assert np.array_equal(np.isnan(ref.errors), ~ref.valid)
    for chunk in CHUNKS:
        got = results[chunk]
        np.testing.assert_array_equal(got.valid, ref.valid, err_msg=f"{name}: validity, chunks of {chunk}")
        np.testing.assert_allclose(got.errors, ref.errors, rtol=1e-5, atol=1e-5, equal_nan=True,
                                   err_msg=f"{name}: errors, chunks of {chunk}")
        np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-5, atol=1e-5, equal_nan=True,
                                   err_msg=f"{name}: {pipeline} scores, chunks of {chunk}")
        assert got.unscored == ref.unscored


@pytest.mark.parametrize("name, variant", _params())
def test_no_prediction_reads_a_later_frame(name, variant):
    model = _anomaly_detector(name, variant)
    video = _video()
    whole, valid = _stream(model, video, FRAMES)
    first = int(valid.int().argmax())  # the first frame with a prediction
    # a map, an error or a reconstruction of frame k may read frame k
    own = 0 if model.output == "frame" and not model.reconstructs else 1
    for k in (first, FRAMES - 4):
        changed = video.clone()
        changed[k] = torch.rand(changed[k].shape, generator=torch.Generator().manual_seed(k))
        pred, ok = _stream(model, changed, FRAMES)
        assert ok.tolist() == valid.tolist()
        before, after = valid.clone(), valid.clone()  # a frame without a prediction is never scored
        before[k + 1 - own:], after[:k + 1 - own] = False, False
        leak = f"{name}: changing frame {k} changed a prediction of frames <= {k - own}"
        torch.testing.assert_close(pred[before], whole[before], atol=1e-6, rtol=1e-6, msg=lambda m: f"{leak}: {m}")
        assert not torch.allclose(pred[after], whole[after]), (
            f"{name}: changing frame {k} changed no later prediction (the check would prove nothing)")


def test_cases_name_registered_methods_only():
    stale = set(CASES) - set(registered_names(MODELS))
    assert not stale, f"CASES names unregistered methods: {sorted(stale)}"


# three videos of different lengths; the third joins at the second round, so that one call
# holds fresh and running streams, and chunks of different lengths (the ends of the videos)
MULTI_LENGTHS, MULTI_CHUNK, MULTI_JOINS = (13, 10, 9), 4, (0, 0, 1)


def _frame_predictor(name, variant):
    """The method with its weights moved (as :func:`_anomaly_detector`), whatever its task;
    skipped when it predicts no frames (a method without weights: its statistics fitted)."""
    model = _fitted(name, variant)
    try:
        model.predict_stream(_video(2), None)
    except NotImplementedError as exc:
        pytest.skip(f"{name} predicts no frames: {exc}")
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g), alpha=0.05)
    return model


def _rounds(videos):
    """``[(stream, start), ...]`` per round: each video's next chunk of ``MULTI_CHUNK`` frames,
    from the round it joins on."""
    rounds, k = [], 0
    while True:
        part = [(i, (k - j) * MULTI_CHUNK) for i, (v, j) in enumerate(zip(videos, MULTI_JOINS))
                if k >= j and (k - j) * MULTI_CHUNK < v.shape[0]]
        if not part and k > max(MULTI_JOINS):
            return rounds
        rounds.append(part)
        k += 1


class _CountConvolutions(TorchDispatchMode):
    """Counts the convolution operators run (forward passes of the networks)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if "conv" in func.__name__:
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name, variant", _params())
def test_several_videos_at_once_give_what_each_gives_alone(name, variant):
    model = _frame_predictor(name, variant)
    videos = [_video(n, seed=i) for i, n in enumerate(MULTI_LENGTHS)]
    alone, separate = [], _CountConvolutions()
    with separate:
        for v in videos:
            alone.append(_stream(model, v, MULTI_CHUNK))
    together = copy.deepcopy(model)
    if not together.concurrent_streams:
        with pytest.raises(ValueError, match="one video at a time"):
            together.predict_streams([videos[0][:4], videos[1][:4]], [None, None])
        return
    states = [None] * len(videos)
    preds, valids = [[] for _ in videos], [[] for _ in videos]
    shared = _CountConvolutions()
    with shared:
        for part in _rounds(videos):
            p, ok, new = together.predict_streams([videos[i][s:s + MULTI_CHUNK] for i, s in part],
                                                  [states[i] for i, _ in part])
            for (i, _), pi, vi, si in zip(part, p, ok, new):
                preds[i].append(pi)
                valids[i].append(vi)
                states[i] = si
    for i, (pred, valid) in enumerate(alone):
        assert torch.cat(valids[i]).tolist() == valid.tolist(), f"{name}: validity of video {i} differs"
        torch.testing.assert_close(torch.cat(preds[i])[valid], pred[valid], atol=1e-5, rtol=1e-5,
                                   msg=lambda m: f"{name}: predictions of video {i} differ when streamed with others: {m}")
    # a method that batches shares its convolutions (one without any, CopyLast, has none to share)
    if type(model).predict_streams is not VADModel.predict_streams and separate.count > 0:
        assert 0 < shared.count < separate.count, (
            f"{name}: {shared.count} convolutions with the videos together, {separate.count} apart: no shared pass")


def test_a_method_without_predict_streams_is_called_once_per_video():
    calls = []

    class OneByOne(VADModel):
        def predict_stream(self, frames, state=None):
            calls.append(frames.shape[0])
            return frames.clone(), torch.ones(frames.shape[0], dtype=torch.bool), state

    preds, _, _ = OneByOne().predict_streams([_video(3), _video(5)], [None, None])
    assert calls == [3, 5] and [p.shape[0] for p in preds] == [3, 5]
    with pytest.raises(NotImplementedError, match="neither predict_stream nor predict_streams"):
        VADModel().predict_stream(_video(2))


@pytest.mark.parametrize("name, variant", _params())
def test_scoring_several_videos_at_once_gives_each_its_own_scores(name, variant):
    model = _frame_predictor(name, variant)
    if not model.concurrent_streams:
        pytest.skip(f"{name} streams one video at a time")
    scorer = _scorer(model)
    videos = [_video(n, seed=i) for i, n in enumerate(MULTI_LENGTHS)]
    alone = []
    for v in videos:
        loop = VideoScorer(copy.deepcopy(model), scorer, PIPELINES["causal"](scorer.higher_is_anomalous),
                           torch.device("cpu"))
        alone.append(loop.score(v[s:s + MULTI_CHUNK] for s in range(0, v.shape[0], MULTI_CHUNK)))
    loop = VideoScorer(copy.deepcopy(model), scorer, PIPELINES["causal"](scorer.higher_is_anomalous),
                       torch.device("cpu"))
    runs = [loop.start() for _ in videos]
    for part in _rounds(videos):
        chunks = loop.push_many([runs[i] for i, _ in part], [videos[i][s:s + MULTI_CHUNK] for i, s in part])
        assert [c.start for c in chunks] == [s for _, s in part]
    for i, run in enumerate(runs):
        got, ref = run.finish(), alone[i]
        assert np.isfinite(ref.scores).sum() >= 2, f"{name}: too few scored frames in video {i} to compare"
        np.testing.assert_array_equal(got.valid, ref.valid)
        np.testing.assert_allclose(got.errors, ref.errors, rtol=1e-5, atol=1e-5, equal_nan=True)
        np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-5, atol=1e-5, equal_nan=True)
        assert got.unscored == ref.unscored and got.seconds > 0
    other = VideoScorer(model, scorer, PIPELINES["causal"](scorer.higher_is_anomalous), torch.device("cpu"))
    with pytest.raises(ValueError, match="distinct run started by this scorer"):
        loop.push_many([other.start()], [videos[0][:2]])
    with pytest.raises(ValueError, match="distinct run"):
        loop.push_many([runs[0], runs[0]], [videos[0][:2], videos[0][:2]])
