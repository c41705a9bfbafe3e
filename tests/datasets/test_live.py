"""Live sources (pyanomaly/datasets/live.py) against an MJPEG stream served on 127.0.0.1 by the test.

The server sends ``multipart/x-mixed-replace`` JPEG parts (made by ``cv2.imencode``), the
format of most IP cameras' HTTP streams; each frame carries its index as eight black/white
blocks, so the tests check which frames arrived and in what order, never how fast.
"""
from __future__ import annotations

import _thread
import csv
import functools
import json
import socket
import subprocess
import shutil
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
import torch

import pyanomaly
from pyanomaly.api import checkpoint_cfg
from pyanomaly.config import cfg_to_dict, load_cfg
from pyanomaly.datasets.live import LiveSettings, LiveSource, redact
from pyanomaly.datasets.sources import StreamSource, find_sources, frame_rate, open_sources
from pyanomaly.engine.checkpoint import save_checkpoint
from pyanomaly.engine.streaming import score_video
from pyanomaly.errors import DatasetError
from pyanomaly.models.build import build_model, model_meta

from testutils import REPO, TWO_LAYER_PREDNET, tool_env

if "FFMPEG:                      YES" not in cv2.getBuildInformation():
    pytest.skip("this OpenCV build has no FFmpeg backend (cv2.getBuildInformation(): FFMPEG NO)",
                allow_module_level=True)

H, W = 48, 64
FAST = LiveSettings(queue_size=64, reconnect_delay=0.05, reconnect_max_delay=0.2, give_up=3.0, timeout=2.0)


def frame(index: int) -> np.ndarray:
    """BGR uint8 (H, W, 3): grey, with the 8 bits of ``index`` as white/black 8x8 blocks on top."""
    img = np.full((H, W, 3), 90, np.uint8)
    for bit in range(8):
        img[:8, 8 * bit:8 * bit + 8] = 255 if index >> bit & 1 else 0
    return img


def index_of(img: np.ndarray) -> int:
    """The index :func:`frame` wrote, read back from a decoded (any size, gray or BGR) frame."""
    gray = cv2.resize(img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (W, H),
                      interpolation=cv2.INTER_AREA)
    return sum(1 << bit for bit in range(8) if gray[2:6, 8 * bit + 2:8 * bit + 6].mean() > 128)


class MJPEGServer:
    """An MJPEG stream on 127.0.0.1, in a thread. Frames are numbered across connections.

    ``per_connection``: frames sent before the connection is closed (the stream "drops");
    ``refuse_after_drop``: requests then answered 503 (the camera is away) before it serves
    again; ``total``: frames in all, after which every request is refused; ``delay``: seconds
    between frames.
    """

    def __init__(self, per_connection: int | None = None, refuse_after_drop: int = 0, total: int | None = None,
                 delay: float = 0.0):
        self.per_connection, self.refuse_after_drop, self.total, self.delay = \
            per_connection, refuse_after_drop, total, delay
        self.sent, self.connections, self.refused, self._to_refuse = 0, 0, 0, 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                with server.lock:
                    refuse = server._to_refuse > 0 or (server.total is not None and server.sent >= server.total)
                    if refuse:
                        server._to_refuse = max(0, server._to_refuse - 1)
                        server.refused += 1
                    else:
                        server.connections += 1
                if refuse:
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                n = 0
                while server.per_connection is None or n < server.per_connection:
                    with server.lock:
                        if server.total is not None and server.sent >= server.total:
                            return
                        index = server.sent
                        server.sent += 1
                    jpeg = cv2.imencode(".jpg", frame(index), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
                    try:
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpeg) + jpeg + b"\r\n")
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    n += 1
                    time.sleep(server.delay)
                with server.lock:
                    server._to_refuse = server.refuse_after_drop

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "MJPEGServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def take(source: LiveSource, n: int, chunk: int = 4) -> list[int]:
    """The indices of the first ``n`` frames read from ``source`` (then it is closed)."""
    got: list[int] = []
    chunks = source.chunks(chunk, (H, W), 3)
    for frames, _ in chunks:
        assert 1 <= len(frames) <= chunk and frames.shape[1:] == (H, W, 3)
        assert source.capture_times.shape == (len(frames),)
        got += [index_of(f) for f in frames]
        if len(got) >= n:
            break
    chunks.close()
    return got[:n]


# -- what is a live source -----------------------------------------------------------------------
def test_urls_and_camera_indices_are_live_sources_never_paths(tmp_path):
    (rtsp,) = find_sources("rtsp://admin:secret@cam.local:554/live/ch1")
    assert isinstance(rtsp, LiveSource) and rtsp.url == "rtsp://admin:secret@cam.local:554/live/ch1"
    assert rtsp.path == "rtsp://admin:***@cam.local:554/live/ch1" and "secret" not in rtsp.name  # logs hide it
    assert rtsp.name == "cam.local_554_live_ch1"
    for url in ("rtsps://h/x", "http://h:8080/video.mjpg", "HTTPS://h/x"):
        assert find_sources(url)[0].url == url
    (cam,) = find_sources("0")
    assert cam.camera == 0 and cam.url is None and cam.name == "camera0" and cam.announced_frames() is None
    clip = tmp_path / "a.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    w.write(frame(0))
    w.release()
    kinds = [type(s) for s in open_sources([str(clip), "rtsp://h/x", "1"])]
    assert kinds == [StreamSource, LiveSource, LiveSource]
    assert redact("http://h/x") == "http://h/x"
    with pytest.raises(FileNotFoundError, match="no such file or folder: ftp:/h"):  # not a live scheme: a path
        find_sources("ftp://h/x")


# -- reading ---------------------------------------------------------------------------------------
def test_frames_arrive_in_order_through_the_ffmpeg_backend():
    with MJPEGServer(total=20) as server:  # fewer frames than the queue holds: none can be dropped
        source = LiveSource(server.url, FAST)
        assert frame_rate(0.0, source)[1] in ("the stream", "assumed (25; the input gives none: set STREAM.FPS)")
        got = take(source, 15)
    assert got == list(range(15))
    assert source.dropped == 0 and source.reconnects == 0 and source.read >= 15
    assert source._thread is not None and not source._thread.is_alive()  # stopping the iteration stops reading


def test_a_file_served_over_http_ends_cleanly(tmp_path):
    clip = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    for t in range(12):
        w.write(frame(t))
    w.release()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        source = LiveSource(f"http://127.0.0.1:{httpd.server_address[1]}/clip.avi", FAST)
        assert frame_rate(0.0, source) == (10.0, "the stream")
        got = [index_of(f) for frames, _ in source.chunks(5, (H, W), 3) for f in frames]
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert got == list(range(12)) and source.ended == "end of stream" and source.reconnects == 0


def test_a_stream_that_drops_and_comes_back_is_followed():
    # 5 frames per connection, then 2 requests refused: 20 frames need 4 connections
    with MJPEGServer(per_connection=5, refuse_after_drop=2) as server:
        source = LiveSource(server.url, FAST)
        got = take(source, 20)
    assert got == sorted(set(got)) and len(got) == 20  # in order, none twice
    assert source.reconnects >= 3 and server.connections >= 4 and server.refused >= 2
    assert source.ended is None or source.ended == "stopped"


def test_a_slow_consumer_drops_the_oldest_frames_and_counts_them():
    settings = LiveSettings(queue_size=4, reconnect_delay=0.05, reconnect_max_delay=0.1, give_up=0.5, timeout=2.0)
    with MJPEGServer(total=40) as server:
        source = LiveSource(server.url, settings)
        chunks = source.chunks(1, (H, W), 3)
        first = [index_of(f) for f in next(chunks)[0]]
        limit = time.monotonic() + 20
        while source.read < 40 and time.monotonic() < limit:  # the consumer sleeps while the reader goes on
            time.sleep(0.02)
        rest = [index_of(f) for frames, _ in chunks for f in frames]
    assert len(first) == 1 and first[0] < 36 and source.read == 40
    assert rest == [36, 37, 38, 39]  # the queue held the newest 4
    assert source.dropped == 40 - 1 - 4
    assert source.ended == "stream lost"  # every later request refused: given up after 0.5 s


def test_a_url_that_never_answers_is_an_error_after_the_give_up_time():
    silent = socket.socket()  # accepts connections and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    settings = LiveSettings(reconnect_delay=0.05, reconnect_max_delay=0.1, give_up=0.6, timeout=0.2)
    try:
        with pytest.raises(DatasetError, match=r"--video http://127\.0\.0\.1:\d+/cam: cannot open the stream "
                                               r"\(tried \d+ time\(s\)"):
            LiveSource(f"http://127.0.0.1:{silent.getsockname()[1]}/cam", settings).open()
    finally:
        silent.close()


def test_a_camera_that_does_not_exist_is_one_clear_error():
    with pytest.raises(DatasetError, match="OpenCV cannot open camera 97 .*no such device"):
        find_sources("97")[0].fps()


# -- scoring a live stream -----------------------------------------------------------------------
TINY = TWO_LAYER_PREDNET + """
DATASET:
  CLIP_LENGTH: 4
  IMAGE_SIZE: [24, 32]
TEST:
  CHUNK: 8
STREAM:
  NORMALIZE: {window: 20, warmup: 3}
  RECONNECT_DELAY: 0.05
  RECONNECT_MAX_DELAY: 0.2
  RECONNECT_GIVE_UP: 3.0
  TIMEOUT: 2.0
LOG:
  PROGRESS: False
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An untrained tiny PredNetPredictor checkpoint that carries its config (as training writes them)."""
    tmp = tmp_path_factory.mktemp("tiny")
    (tmp / "tiny.yaml").write_text(TINY)
    cfg = load_cfg(tmp / "tiny.yaml")
    torch.manual_seed(0)
    ckpt = tmp / "tiny.pth"
    save_checkpoint(ckpt, {"model": build_model(cfg, torch.device("cpu")).state_dict(), "step": 0,
                           "meta": {**model_meta(cfg), "config": cfg_to_dict(cfg)}, "metrics": None})
    return cfg, ckpt


def test_score_tool_on_a_live_url_with_max_frames(tiny, tmp_path):
    _, ckpt = tiny
    out = tmp_path / "live"
    with MJPEGServer(per_connection=12, refuse_after_drop=1, delay=0.005) as server:
        r = subprocess.run([sys.executable, "tools/score_video.py", "--checkpoint", str(ckpt), "--video", server.url,
                            "--out", str(out), "--max-frames", "30", "STREAM.FPS", "10.0"],
                           cwd=REPO, env=tool_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(out / "frame_scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(x["frame"]) for x in rows] == list(range(30))
    summary = json.loads((out / "alarms.json").read_text())
    assert summary["complete"] and summary["stop"] == {"max_frames": 30, "duration_s": None}
    (video,) = summary["videos"]
    assert video["live"] and video["source"] == server.url and video["ended"] == "max_frames"
    assert video["frames"] == 30 and video["fps"] == 10.0
    assert video["reconnects"] >= 2  # 12 frames per connection: 30 frames need 3
    assert video["frames_read"] >= 30 and video["frames_read"] - video["frames_dropped"] >= 30
    lat = video["latency"]
    assert set(lat) == {"p50_ms", "p95_ms", "max_ms"} and 0 <= lat["p50_ms"] <= lat["p95_ms"] <= lat["max_ms"]
    log = (out / "log.txt").read_text()
    assert "reconnected" in log and "latency capture->score p50" in log and "ended (max_frames)" in log


def test_duration_ends_a_live_run_and_files_take_max_frames_too(tiny, tmp_path):
    cfg, ckpt = tiny
    with MJPEGServer(delay=0.01) as server:
        summary = score_video(cfg, ckpt, [server.url], tmp_path / "timed", duration=1.0)
    (video,) = summary["videos"]
    assert video["ended"] == "duration" and video["frames"] > 0 and summary["complete"]
    assert (tmp_path / "timed" / video["plot"]).is_file()

    clip = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    for t in range(20):
        w.write(frame(t))
    w.release()
    other = tmp_path / "clip2.avi"
    shutil.copy(clip, other)
    summary = score_video(cfg, ckpt, [str(clip), str(other)], tmp_path / "files", max_frames=7)
    assert [(v["frames"], v["ended"], v["live"]) for v in summary["videos"]] == [(7, "max_frames", False)] * 2
    assert all(v["latency"]["max_ms"] >= 0 for v in summary["videos"])
    summary = score_video(cfg, ckpt, clip, tmp_path / "whole")
    assert summary["videos"][0]["frames"] == 20 and summary["videos"][0]["ended"] == "end of video"


def test_ctrl_c_ends_a_live_run_with_its_outputs(tiny, tmp_path, request):
    _, ckpt = tiny
    cfg = checkpoint_cfg(ckpt, None, ["LOG.LEVEL", "DEBUG"])
    out = tmp_path / "stopped"

    def interrupt_once_frames_are_scored():
        limit = time.monotonic() + 30
        while time.monotonic() < limit:
            log = out / "log.txt"
            if log.is_file() and log.read_text().count("ms\n") >= 2:  # two chunks' latency lines: rows written
                break
            time.sleep(0.02)
        _thread.interrupt_main()  # what Ctrl-C does

    # Ctrl-C raises KeyboardInterrupt also where the suite runs with SIGINT ignored (a background job)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    with MJPEGServer(delay=0.01) as server:
        threading.Thread(target=interrupt_once_frames_are_scored, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            score_video(cfg, ckpt, server.url, out)
    summary = json.loads((out / "alarms.json").read_text())
    (video,) = summary["videos"]
    assert video["ended"] == "interrupted" and video["frames"] >= 1 and not summary["complete"]
    with open(out / "frame_scores.csv") as f:
        frames = [int(row["frame"]) for row in csv.DictReader(f)]
    assert frames == list(range(len(frames))) and 1 <= len(frames) <= video["frames"]  # a chunk cut short: fewer


def test_the_api_streams_a_url(tiny):
    _, ckpt = tiny
    det = pyanomaly.load(ckpt, device="cpu", STREAM__FPS=10.0)
    with MJPEGServer(delay=0.005) as server:
        got = []
        for item in det.stream(server.url):
            got.append(item)
            if len(got) == 12:
                break
    assert [f.frame for f in got] == list(range(12))
    assert not any(t.name.startswith("live ") for t in threading.enumerate())  # leaving the loop stopped reading
    assert all(np.isnan(f.score) for f in got[:3]) and all(np.isfinite(f.score) for f in got[6:])


def test_score_options_take_several_sources_and_the_config_of_the_checkpoint(tiny, tmp_path, capsys):
    from pyanomaly.commands.score import build_parser, main
    parser = build_parser()
    args = parser.parse_args(["--checkpoint", "c.pth", "--video", "a.avi", "rtsp://h/x", "0", "STREAM.FPS", "5.0",
                              "--out", "o", "--max-frames", "9"])
    assert args.video == ["a.avi", "rtsp://h/x", "0"] and args.opts == ["STREAM.FPS", "5.0"]
    assert args.cfg is None and args.max_frames == 9 and args.duration is None
    args = parser.parse_args(["--out", "o", "--video", "x.avi", "--checkpoint", "c.pth", "--duration", "2.5"])
    assert args.video == ["x.avi"] and args.duration == 2.5 and args.opts == []
    with pytest.raises(SystemExit):
        parser.parse_args(["--checkpoint", "c.pth", "--video", "x.avi", "--out", "o", "--max-frames", "0"])
    cfg, ckpt = tiny
    assert checkpoint_cfg(ckpt, None, ["STREAM.FPS", "5.0"]).STREAM.FPS == 5.0  # the carried config, overridden
    old = tmp_path / "old.pth"  # written before checkpoints carried their config
    save_checkpoint(old, {"model": torch.load(ckpt, weights_only=True)["model"], "step": 0, "meta": model_meta(cfg)})
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["--checkpoint", str(old), "--video", "x.avi", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "carries no config" in err[0] and "--cfg" in err[0]
