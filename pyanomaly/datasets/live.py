"""Live sources: a camera index or an ``rtsp://``/``http(s)://`` URL, read by a background thread.

A :class:`LiveSource` reads frames with ``cv2.VideoCapture`` (URLs through the FFmpeg backend,
cameras through OpenCV's default one) in a thread of its own, so reading never waits for
scoring. Frames go into a bounded queue (``queue_size``): when scoring falls behind, the
**oldest** waiting frame is dropped and counted (a live score is about *now*). Each frame is
stamped with its capture time (``time.monotonic()`` when OpenCV returned it) and its index
in the stream as read; dropped frames keep their indices, so ``read - dropped`` frames reach
the scorer, which numbers the frames it scores 0, 1, 2, ... as for a file.

When reading fails the source reconnects with exponential back-off (``reconnect_delay``
doubling up to ``reconnect_max_delay``), a log line per try; after ``give_up`` seconds
without a frame it gives up: an error when the source never gave a frame, else the end of
the stream with a warning. A stream that announces a frame count (a file served over HTTP)
ends cleanly when that many frames were read.

Example:
    >>> src = LiveSource("http://127.0.0.1:8080/stream.mjpg", LiveSettings(queue_size=32))
    >>> for frames, _ in src.chunks(16, (240, 360), 1):   # (n, H, W, C) uint8, 1 <= n <= 16
    ...     times = src.capture_times                      # (n,) capture times of those frames
"""
from __future__ import annotations

import collections
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from pyanomaly.errors import DatasetError

from .video import prepare_frame

__all__ = ["LiveSettings", "LiveSource", "is_live", "redact"]

logger = logging.getLogger("pyanomaly")

URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
_END, _LOST = "end of stream", "stream lost"


def is_live(spec: object) -> bool:
    """``spec`` names a live source: a camera index (``"0"``) or an rtsp(s)/http(s) URL."""
    if not isinstance(spec, str):
        return False
    return spec.strip().isdigit() or bool(re.match(r"^(%s)://" % "|".join(URL_SCHEMES), spec.strip(), re.I))


def redact(url: str) -> str:
    """``url`` without its password (``rtsp://user:secret@cam/x`` -> ``rtsp://user:***@cam/x``), for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


@dataclass
class LiveSettings:
    """How a live source is read (``STREAM.QUEUE_SIZE``, ``STREAM.RECONNECT_*``, ``STREAM.TIMEOUT``)."""

    queue_size: int = 16
    reconnect_delay: float = 0.5
    reconnect_max_delay: float = 8.0
    give_up: float = 60.0
    timeout: float = 10.0

    @classmethod
    def from_stream_cfg(cls, stream) -> "LiveSettings":
        """From the ``STREAM`` section of a config."""
        return cls(stream.QUEUE_SIZE, stream.RECONNECT_DELAY, stream.RECONNECT_MAX_DELAY, stream.RECONNECT_GIVE_UP,
                   stream.TIMEOUT)


class LiveSource:
    """One camera or URL; the same interface as a file's ``StreamSource`` (``name``, ``path``,
    ``frames``, ``fps()``, ``announced_frames()``) plus :meth:`chunks` and the counters
    ``read``, ``dropped``, ``reconnects`` and ``ended`` (why reading stopped)."""

    frames = None  # not a frame folder

    def __init__(self, spec: str, settings: LiveSettings | None = None):
        spec = spec.strip()
        self.settings = settings or LiveSettings()
        self.camera = int(spec) if spec.isdigit() else None
        self.url = None if self.camera is not None else spec
        self.path = f"camera {self.camera}" if self.camera is not None else redact(spec)  # shown, never opened
        if self.camera is not None:
            self.name = f"camera{self.camera}"
        else:
            parts = urlsplit(spec)
            port = str(parts.port) if parts.port else ""
            self.name = "_".join(p for p in [parts.hostname or "", port, *parts.path.split("/")] if p) or "stream"
        self.read = self.dropped = self.reconnects = 0
        self.ended: str | None = None
        self.capture_times = np.zeros(0)  # (n,) time.monotonic() at capture of the last chunk's frames
        self._fps: float | None = None
        self._count = 0  # frames the stream announces (> 0: a finite stream)
        self._cap = None
        self._queue: collections.deque = collections.deque(maxlen=max(1, self.settings.queue_size))
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: Exception | None = None

    def __repr__(self) -> str:
        return f"LiveSource({self.path!r})"

    # -- opening ---------------------------------------------------------------------------------
    def _capture(self):
        if self.camera is not None:
            return cv2.VideoCapture(self.camera)
        ms = int(self.settings.timeout * 1000)
        return cv2.VideoCapture(self.url, cv2.CAP_FFMPEG,
                                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])

    def open(self) -> None:
        """Connect (once; a URL is retried with back-off for up to ``give_up`` seconds) and start reading.

        Raises :class:`DatasetError` naming the source when it cannot be opened.
        """
        if self._cap is not None or self._thread is not None:
            return
        cap = self._capture()
        if not cap.isOpened() and self.camera is not None:  # a local device is there or not: no retries
            raise DatasetError(f"--video {self.camera}: OpenCV cannot open camera {self.camera} (no such device, "
                               "or it is busy); a camera is an index 0, 1, ... of the machine's video devices")
        start, delay, tries = time.monotonic(), self.settings.reconnect_delay, 0
        while not cap.isOpened():
            waited = time.monotonic() - start
            if waited + delay > self.settings.give_up:
                raise DatasetError(f"--video {self.path}: cannot open the stream (tried {tries + 1} time(s) for "
                                   f"{waited:.1f} s, STREAM.RECONNECT_GIVE_UP {self.settings.give_up:g} s); check the "
                                   "URL and that the camera or server answers")
            tries += 1
            logger.warning("stream %s: cannot open; retry %d in %.2g s", self.path, tries, delay)
            time.sleep(delay)
            delay = min(delay * 2, self.settings.reconnect_max_delay)
            cap = self._capture()
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        self._fps = fps if 0 < fps < 1000 else None  # some backends report 0 or nonsense for live input
        self._count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        self._cap = cap
        self._thread = threading.Thread(target=self._run, name=f"live {self.name}", daemon=True)
        self._thread.start()

    def fps(self) -> float | None:
        """The stream's own frame rate (opens it), or None when it reports none."""
        self.open()
        return self._fps

    def announced_frames(self) -> int | None:
        return None  # a live source has no known end

    def close(self) -> None:
        """Stop reading and release the capture (waits for the reader thread)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.settings.timeout + 1.0)  # a read in progress ends within the timeout

    # -- the reader thread -------------------------------------------------------------------------
    def _run(self) -> None:
        cap, s = self._cap, self.settings
        last, delay, lost = time.monotonic(), s.reconnect_delay, False
        try:
            while not self._stop.is_set():
                ok, img = cap.read() if cap is not None else (False, None)
                now = time.monotonic()
                if ok:
                    if lost:
                        self.reconnects += 1
                        logger.info("stream %s: reconnected (reconnect %d); frames go on from %d read",
                                    self.path, self.reconnects, self.read)
                    last, delay, lost = now, s.reconnect_delay, False
                    with self._cond:
                        if len(self._queue) == self._queue.maxlen:
                            self.dropped += 1  # the deque drops its oldest frame on append
                        self._queue.append((img, now, self.read))
                        self.read += 1
                        self._cond.notify()
                    continue
                if cap is not None:
                    cap.release()
                    cap = None
                    if 0 < self._count <= self.read:  # a finite stream (a file over HTTP) came to its end
                        self._finish(_END)
                        return
                    lost = True
                if now - last + delay > s.give_up:
                    logger.warning("stream %s: no frame for %.1f s (STREAM.RECONNECT_GIVE_UP %g s); ending it",
                                   self.path, now - last, s.give_up)
                    self._finish(_LOST)
                    return
                logger.warning("stream %s: no frame; reconnecting in %.2g s", self.path, delay)
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, s.reconnect_max_delay)
                cap = self._capture()
                if not cap.isOpened():
                    cap.release()
                    cap = None
            self._finish("stopped")
        except Exception as exc:  # surfaced in the consumer's thread by chunks()
            self._error = exc
            self._finish("error")
        finally:
            if cap is not None:
                cap.release()

    def _finish(self, why: str) -> None:
        with self._cond:
            if self.ended is None:
                self.ended = why
            self._cond.notify_all()

    # -- the consumer side ------------------------------------------------------------------------
    def chunks(self, chunk: int, size: tuple[int, int], channels: int, keep_original: bool = False,
               deadline: float | None = None) -> Iterator[tuple[np.ndarray, list[np.ndarray] | None]]:
        """Yield ``(frames (n, H, W, C) uint8 at size, originals BGR or None)``: each chunk waits for
        one frame, then takes what else is queued, up to ``chunk`` frames (low latency when scoring
        keeps up, larger batches when it falls behind). ``capture_times`` holds the chunk's capture
        times while it is being used. Ends when the stream ends, at ``deadline`` (``time.monotonic()``),
        or when the consumer stops; reading stops with it."""
        self.open()
        first_shape = None
        try:
            while True:
                with self._cond:
                    while not self._queue and self.ended is None:
                        timeout = None if deadline is None else deadline - time.monotonic()
                        if timeout is not None and timeout <= 0:
                            return
                        self._cond.wait(timeout)
                    if not self._queue:
                        break
                    items = [self._queue.popleft() for _ in range(min(chunk, len(self._queue)))]
                imgs = [img for img, _, _ in items]
                for img, _, index in items:
                    if first_shape is None:
                        first_shape = img.shape[:2]
                    elif img.shape[:2] != first_shape:  # a camera that changed resolution on reconnecting
                        raise DatasetError(f"stream {self.path}: frame {index} is {img.shape[1]}x{img.shape[0]} "
                                           f"(WxH) but its first frame is {first_shape[1]}x{first_shape[0]}")
                self.capture_times = np.array([t for _, t, _ in items])
                yield (np.stack([prepare_frame(img, size, channels) for img in imgs]),
                       imgs if keep_original else None)
        finally:
            self.close()
        if self._error is not None:
            raise DatasetError(f"stream {self.path}: reading failed: {self._error}") from self._error
        if self.read == 0:
            raise DatasetError(f"stream {self.path}: opened but gave no frame")

