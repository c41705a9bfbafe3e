"""What one scored stream writes: its score rows, alarms, latencies, maps, annotated video and plot.

:func:`pyanomaly.engine.streaming.score_streams` makes one :class:`StreamOutput` per stream and
hands it each scored chunk (:meth:`StreamOutput.add`); when the stream ends,
:meth:`StreamOutput.finish` writes its plot and maps and leaves its ``alarms.json`` entry in
:attr:`StreamOutput.entry`. The rows themselves are written by the caller, for all streams at once.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm
from yacs.config import CfgNode

from pyanomaly.evaluation.heatmap import HeatScale
from pyanomaly.evaluation.maps import MapRecorder
from pyanomaly.evaluation.overlay import VideoRenderer
from pyanomaly.evaluation.plots import plot_video
from pyanomaly.scoring import AlarmTracker
from pyanomaly.scoring.video import Chunk, VideoRun
from pyanomaly.utils import atomic_write

from .latency import LatencyLog

logger = logging.getLogger("pyanomaly")


class StreamOutput:
    """What one stream (a :class:`~pyanomaly.engine.streaming.Stream`) writes: its rows, alarms,
    latencies, annotated video and plot, and its progress bar."""

    def __init__(self, cfg: CfgNode, stream, stem: str, out: Path, render: bool, run: VideoRun,
                 position: int = 0, max_frames: int | None = None, duration: float | None = None):
        st = cfg.STREAM
        self.stream, self.stem, self.out, self.render, self.run = stream, stem, out, render, run
        self.threshold, self.format = st.ALARM_THRESHOLD, st.RENDER_FORMAT
        self.tracker = AlarmTracker(st.ALARM_THRESHOLD, st.ALARM_MIN_FRAMES, stream.fps)
        self.renderer: VideoRenderer | None = None
        # the loop keeps maps (--maps): spooled to maps/<stem>.npy, drawn on the annotated video
        self.maps = MapRecorder(cfg.EVAL.MAPS_DOWNSAMPLE) if run.video.maps else None
        self.heat = HeatScale() if run.video.maps and render else None
        self.rows: list[dict] = []
        self.latency = LatencyLog()
        self.max_frames, self.done = max_frames, 0
        self.deadline = None if duration is None else time.monotonic() + duration
        self.ended: str | None = None  # why the stream ended before its end (max_frames, duration)
        self.entry: dict | None = None  # alarms.json's entry, once the stream has ended
        self.bar = tqdm(total=stream.announced_frames, desc=stream.name, unit="frame", disable=not cfg.LOG.PROGRESS,
                        dynamic_ncols=True, position=position)
        self.start = time.perf_counter()

    def take(self, frames: np.ndarray, originals: list[np.ndarray] | None):
        """The part of a chunk to score: all of it, or what ``max_frames`` leaves."""
        if self.max_frames is not None and self.done + len(frames) > self.max_frames:
            frames = frames[:self.max_frames - self.done]
            originals = originals[:len(frames)] if originals is not None else None
        return frames, originals

    def captured(self, n: int) -> np.ndarray:
        """``(n,)`` capture times of the chunk just read: a live source's own, else now (the chunk's read)."""
        live = self.stream.live
        return live.capture_times[:n] if live is not None else np.full(n, time.monotonic())

    def add(self, chunk: Chunk, originals: list[np.ndarray] | None, captured: np.ndarray) -> None:
        fps, error, score = self.stream.fps, chunk.errors, chunk.scores
        ms = self.latency.add(captured, time.monotonic())
        logger.debug("video '%s': frames %d-%d, latency %.1f-%.1f ms", self.stream.name, chunk.start,
                     chunk.start + len(error) - 1, ms.min(), ms.max())
        active = self.tracker.push(score)
        for i in range(len(error)):
            t = chunk.start + i
            self.rows.append({"video": self.stream.name, "frame": t, "time_s": round(t / fps, 4),
                              "error": float(error[i]) if np.isfinite(error[i]) else None,
                              "score": float(score[i]) if np.isfinite(score[i]) else None})
        if self.maps is not None:
            self.maps.add(chunk.maps)
        if self.render:
            if self.renderer is None:
                self.renderer = VideoRenderer(self.out / "annotated" / f"{self.stem}.{self.format}", fps,
                                              originals[0].shape[:2], self.threshold)
            for i, img in enumerate(originals):
                t = chunk.start + i
                heat = self.heat.push(chunk.maps[i]) if self.heat is not None else None
                self.renderer.write(img, t, t / fps, float(score[i]), bool(active[i]), heat)
        self.bar.update(len(error))
        self.done += len(error)
        if self.max_frames is not None and self.done >= self.max_frames:
            self.ended = "max_frames"
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.ended = "duration"

    def abort(self) -> None:
        """Close the bar and the annotated video (what was written stays); drop unsaved maps."""
        self.bar.close()
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
        if self.maps is not None:
            self.maps.close()

    def finish(self, ended: str | None = None) -> None:
        """The stream has ended (``ended``: why, when not by itself): its plot, maps, log lines and :attr:`entry`."""
        maps = None
        if self.maps is not None:
            maps = Path("maps") / f"{self.stem}.npy"
            self.maps.save(self.out / maps)
        self.abort()
        ended = ended or self.ended
        live = self.stream.live
        if ended is None:  # it ran out: a live source says why (its end, given up, or the deadline while waiting)
            ended = "end of video" if live is None else (
                live.ended if live.ended in ("end of stream", "stream lost") else "duration")
        seconds = time.perf_counter() - self.start
        result = self.run.finish()
        n, name = result.frames, self.stream.name
        segments = self.tracker.finish()
        spans = [(a["start_frame"], a["end_frame"]) for a in segments]
        png = self.out / "plots" / f"{self.stem}.png"
        atomic_write(png, lambda tmp: plot_video(tmp, name, result.scores, None, threshold=self.threshold,
                                                 threshold_label="alarm threshold", alarms=spans))
        logger.info("video '%s': %d frames in %.1f s (%.1f frames/s), %d alarm(s)", name, n, seconds,
                    n / max(seconds, 1e-9), len(segments))
        for a in segments:
            a["raised_latency_ms"] = round(self.latency.ms[a["raised_frame"]], 1)
        lat = self.latency.summary()
        counts = {"frames_read": live.read, "frames_dropped": live.dropped, "reconnects": live.reconnects} \
            if live is not None else {}
        logger.info("video '%s': ended (%s); latency capture->score %s%s", name, ended,
                    "p50 {p50_ms} ms, p95 {p95_ms} ms, max {max_ms} ms".format(**lat) if lat else "-",
                    "".join(f", {k.replace('_', ' ')} {v}" for k, v in counts.items()))
        self.entry = {
            "video": name, "source": self.stream.source, "live": live is not None, "frames": n,
            "frames_scored": int(np.isfinite(result.scores).sum()), "fps": self.stream.fps,
            "fps_source": self.stream.fps_source, "frames_per_second_processed": round(n / max(seconds, 1e-9), 2),
            "annotated": str(Path("annotated") / f"{self.stem}.{self.format}") if self.render else None,
            "maps": str(maps) if maps is not None else None,
            "plot": str(Path("plots") / f"{self.stem}.png"), "ended": ended, "latency": lat, **counts,
            "alarms": segments}
