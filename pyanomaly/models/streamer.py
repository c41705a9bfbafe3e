"""``Streamer``: STREAMER's hierarchy of online-learned event predictors as an anomaly detector.

Mounir, Vijayaraghavan and Sarkar, "STREAMER: Streaming Representation Learning and Event
Segmentation in a Hierarchical Manner", NeurIPS 2023. A stack of layers
(:class:`~pyanomaly.networks.meta.streamer.StreamerStack`) reads a video one frame at a
time, learns online to predict the next input of every layer, and cuts the stream into a
hierarchy of events where the prediction loss jumps. Here the base layer's prediction of
each frame (an image decoded from the predicted feature vector) is the method's
``predict_stream`` output, so frames are scored by prediction error exactly as the frame
predictors are (``SCORE.*``).

Training is one online pass (``online = True``: ``tools/train.py`` calls :meth:`fit_online`
instead of the step-based trainer): every training video is streamed once, in order, with
learning on; the stack is reset (buffers, open events, boundary histories; weights and
optimisers kept) at the start of each video. Checkpoints hold the whole stream state, so a
killed pass resumed with ``--resume`` ends exactly as one never stopped. At test time the
stream goes on from the checkpoint, with online learning on or off (``learn_at_test``).

Outputs besides the frame scores: ``events.json`` (test split) and ``events_training.json``
(training pass), the event hierarchy of each video (see ``docs/streamer.md``).

Example:
    >>> model = Streamer(feature_dim=32, buffer_size=8, max_layers=3, evolve_every=20)
    >>> pred, valid, state = model.predict_stream(torch.rand(30, 1, 32, 32))   # (30, 1, 32, 32), (30,)
    >>> model.stack.events()[-1]["layers"][0][:2]     # first base events of the video
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import fields
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm import tqdm

from pyanomaly.networks.meta.streamer import StreamerSettings, StreamerStack
from pyanomaly.networks.meta.streamer.stack import count_layers
from pyanomaly.registry import MODELS
from pyanomaly.utils import atomic_write_text

from .base import VADModel

logger = logging.getLogger("pyanomaly")

# what differs from StreamerSettings' defaults for the method (frames are images: MSE at the base)
_METHOD_DEFAULTS = {"force_base_dist": True}


@MODELS.register_module()
class Streamer(VADModel):
    """Args:
        seed: seeds the initial weights of each layer (layer ``l``: ``seed + l``).
        learn_at_test: keep learning online while test videos are streamed (evaluation,
            ``tools/test.py``, ``tools/score_video.py``); off: the checkpoint's weights are
            used as they are (events are still segmented).
        clip_length: ``DATASET.CLIP_LENGTH``, handed to every method that takes **kwargs; not
            used (frames are read one at a time).
        **settings: the fields of :class:`~pyanomaly.networks.meta.streamer.StreamerSettings`
            (``feature_dim``, ``buffer_size``, ``max_layers``, ``evolve_every``, ``lr``,
            ``demarcation_mode``, ...); ``force_base_dist`` defaults to True here.
    """

    online = True
    inference_args = ("learn_at_test",)
    # the stack holds the stream (buffers, open events, weights learnt online): one video at a time
    concurrent_streams = False

    def __init__(self, seed: int = 0, learn_at_test: bool = False, clip_length: int | None = None, **settings):
        super().__init__()
        known = {f.name for f in fields(StreamerSettings)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"Streamer: unknown setting(s) {unknown} in MODEL.ARGS; it accepts seed, learn_at_test "
                             f"and {', '.join(sorted(known))}")
        self.settings = StreamerSettings(**{**_METHOD_DEFAULTS, **settings})
        self.learn_at_test = bool(learn_at_test)
        self.stack = StreamerStack(self.settings, seed=seed)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError("Streamer learns online from a stream and has no batch losses: train it with "
                                  "tools/train.py (one online pass, Streamer.fit_online)")

    # -- streaming ------------------------------------------------------------------------
    def stream(self, frames: torch.Tensor, state: dict | None, learn: bool):
        """Feed frames ``(N, C, H, W)`` of one video; ``state`` None starts a new video.

        Returns predictions ``(N, C, H, W)`` (zeros where there is none), validity ``(N,)``
        and the state to pass with the next chunk.
        """
        if frames.dim() != 4 or frames.shape[1] != self.settings.channels:
            raise ValueError(f"Streamer expects frames (N, {self.settings.channels}, H, W) (MODEL.ARGS.channels "
                             f"{self.settings.channels}; set it to DATASET.CHANNELS), got {tuple(frames.shape)}")
        if state is None:
            self.stack.reset_stream()
        predictions = torch.zeros_like(frames)
        valid = torch.zeros(frames.shape[0], dtype=torch.bool)
        for i, frame in enumerate(frames):
            p = self.stack.step(frame, learn=learn)
            if p is not None:
                predictions[i] = p.to(frames.dtype)
                valid[i] = True
        return predictions, valid, {"frame": self.stack.frame}

    def predict_stream(self, frames: torch.Tensor, state=None):
        return self.stream(frames, state, self.learn_at_test)

    # -- training: one online pass ------------------------------------------------------------
    def fit_online(self, train_set, device: torch.device, save: Callable[[dict], None],
                   position: dict | None = None, checkpoint_period: int = 500, log_period: int = 20,
                   progress: bool = True, out_dir: str | Path | None = None) -> dict:
        """Stream every video of ``train_set`` once, learning online; returns the final position.

        ``position`` (from a checkpoint) says where to go on: ``{"video", "frame", "frames"}``
        (next video index, next frame in it, frames streamed so far). ``save(position)`` is
        called every ``checkpoint_period`` frames; progress is logged every ``log_period``
        frames (a bar with ``progress``). Writes ``events_training.json`` to ``out_dir``.
        """
        self.to(device).train()
        pos = dict(position or {"video": 0, "frame": 0, "frames": 0})
        total = sum(train_set.lengths)
        period, log_period = max(int(checkpoint_period), 1), max(int(log_period), 1)
        logger.info("streaming %d training videos (%d frames) once, learning online; %s", len(train_set.videos), total,
                    "starting" if pos["frames"] == 0 else f"resuming at frame {pos['frame']} of video "
                    f"{pos['video']} ({pos['frames']} frames done)")
        bar = tqdm(total=total, initial=pos["frames"], desc="streamer", unit="frame", disable=not progress,
                   dynamic_ncols=True)
        start, done_here, losses = time.perf_counter(), 0, []
        try:
            while pos["video"] < len(train_set.videos):
                v, f = pos["video"], pos["frame"]
                frame = train_set.video_frames(v, f, f + 1).to(device)
                # a video starts afresh at its first frame; a resumed one goes on with its state
                self.stream(frame, {"frame": f} if f > 0 else None, learn=True)
                if self.stack.last_base_loss is not None:
                    losses.append(self.stack.last_base_loss)
                pos["frames"] += 1
                pos["frame"] += 1
                if pos["frame"] == train_set.lengths[v]:
                    pos["video"], pos["frame"] = v + 1, 0
                done_here += 1
                bar.update(1)
                if pos["frames"] % log_period == 0 or pos["frames"] == total:
                    self._log_progress(pos, total, losses, done_here, time.perf_counter() - start, bar)
                    losses = []
                if pos["frames"] % period == 0 and pos["frames"] < total:
                    save(dict(pos))
        finally:
            bar.close()
        if out_dir is not None:
            self.write_events(Path(out_dir) / "events_training.json", train_set.names, "training")
        return pos

    def _log_progress(self, pos, total, losses, done_here, seconds, bar) -> None:
        # boundaries found so far per layer (events cut by the end of a video are not boundaries)
        found = [sum(e["closed_by"] != "end_of_stream" for v in self.stack.videos for e in v["layers"][level])
                 for level in range(self.stack.num_layers)]
        mean = sum(losses) / len(losses) if losses else float("nan")
        bar.set_postfix(layers=self.stack.num_layers, boundaries="/".join(map(str, found)))
        logger.info("frame %d/%d | layers %d | boundaries per layer %s | base loss %.5f | %.1f frames/s", pos["frames"],
                    total, self.stack.num_layers, found, mean, done_here / max(seconds, 1e-9))

    # -- evaluation and outputs -------------------------------------------------------------
    def write_outputs(self, out_dir: str | Path, names: Sequence[str], split: str) -> None:
        """``events.json`` in ``out_dir`` for the last ``len(names)`` videos streamed (their scores
        are written by the evaluation task or ``tools/score_video.py``)."""
        self.write_events(Path(out_dir) / "events.json", names, split, last=True)

    def events_document(self, names: Sequence[str], split: str, last: bool = False) -> dict:
        """``events.json``'s content: per video and layer, the events with frames, times and children.

        ``names`` name the videos recorded since the records were last cleared, or with
        ``last`` the last ``len(names)`` videos streamed (a checkpoint carries the records of
        the training pass).
        """
        records = self.stack.events()
        if last:
            records = records[len(records) - len(names):]
        if len(records) != len(names):
            raise RuntimeError(f"the stack recorded {len(records)} videos but {len(names)} names were given")
        dt = self.settings.snippet_size
        videos = []
        for name, rec in zip(names, records):
            layers = []
            for level, events in enumerate(rec["layers"]):
                layers.append({"layer": level, "events": [
                    {"id": k, "start": e["start"], "end": e["end"], "start_s": round(e["start"] * dt, 4),
                     "end_s": round((e["end"] + 1) * dt, 4), "frames": e["end"] - e["start"] + 1,
                     "children": e["children"], "closed_by": e["closed_by"], "boundary_loss": e["boundary_loss"]}
                    for k, e in enumerate(events)]})
            videos.append({"video": name, "frames": rec["frames"], "layers": layers})
        return {
            "split": split,
            "layers": self.stack.num_layers,
            "snippet_size_s": dt,
            "how_to_read": "frames are 0-based and inclusive; an event of layer 0 spans frames start..end; an event "
                           "of layer l > 0 is made of the layer l-1 events listed in children (ids in that layer's "
                           "list of the same video); closed_by: 'loss' (prediction loss above the boundary rule), "
                           "'buffer_full' (force_fixed_buffer) or 'end_of_stream' (cut by the end of the video)",
            "settings": self.settings.to_dict(),
            "videos": videos,
        }

    def write_events(self, path: Path, names: Sequence[str], split: str, last: bool = False) -> None:
        atomic_write_text(path, json.dumps(self.events_document(names, split, last), indent=1))

    # -- checkpoints -----------------------------------------------------------------------------
    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Grows the stack to the checkpoint's number of layers first (layers are created on the fly)."""
        self.stack.grow_to(count_layers(state_dict, "stack."))
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
