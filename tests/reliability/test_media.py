"""Bad media: truncated, empty, mislabelled or mixed video files and frame files.

Each case asserts the exact one-line error (naming the file, the frames decoded and claimed,
and the setting that accepts it) or the correct result, at the function where the check
lives and through the tools (run in this process, as ``python tools/<tool>.py`` would run).
Every file is real: AVIs written with ``cv2.VideoWriter`` (MJPG) and then cut, JPEG/PNG
frames written with ``cv2.imwrite`` and then cut.
"""
from __future__ import annotations

import json
import logging
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pyanomaly.config import load_cfg
from pyanomaly.datasets import DatasetError, VideoRecord
from pyanomaly.datasets.build import build_dataset
from pyanomaly.datasets.sources import find_sources, read_chunks
from pyanomaly.datasets.synthetic import make_synthetic
from pyanomaly.datasets.video import (count_video_frames, decode, frame_count_problem, frame_file_problem,
                                      media_check, sorted_frames)
from pyanomaly.engine.checkpoint import save_checkpoint
from pyanomaly.models.build import build_model, model_meta

from testutils import REPO, SHARED_DATA, tool_env

H, W, N = 24, 32, 20  # every generated video: 20 frames of 32x24
HINT = "set DATASET.ACCEPT_TRUNCATED True to use it as decoded"

pytestmark = pytest.mark.usefixtures("restore_logging")  # the tools reconfigure the pyanomaly logger


# -- writers -----------------------------------------------------------------------------------
def image(t: int, size: tuple[int, int] = (H, W)) -> np.ndarray:
    """BGR uint8: noise (so every frame compresses to a different, non-trivial size) and a moving square."""
    img = np.random.default_rng(t).integers(0, 255, (*size, 3), dtype=np.uint8)
    img[4:12, t % (size[1] - 8):t % (size[1] - 8) + 8] = 255
    return img


def write_avi(path: Path, n: int = N) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    assert writer.isOpened()
    for t in range(n):
        writer.write(image(t))
    writer.release()
    return path


def write_frames(folder: Path, n: int = 4, ext: str = ".jpg") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{t:03d}{ext}" for t in range(n)]
    for t, p in enumerate(paths):
        assert cv2.imwrite(str(p), image(t))
    return paths


def cut(path: Path, fraction: float = 0.5) -> Path:
    """Keep the first ``fraction`` of the file's bytes (a copy interrupted, a disk filled)."""
    os.truncate(path, int(path.stat().st_size * fraction))
    return path


def decodable(path: Path) -> int:
    """Frames OpenCV decodes from a video file, however many its container claims."""
    return count_video_frames(path)


def frame_count_error(video: str, path: Path, decoded: int, claimed: int = N) -> str:
    return (f"video '{video}': {path} decodes to {decoded} frames but its container claims {claimed} "
            f"(truncated or damaged file); {HINT}")


def run_tool(capsys, monkeypatch, tool: str, *args) -> tuple[int, str, str]:
    """Run ``tools/<tool>`` with ``args`` as from the command line; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [tool, *map(str, args)])
    capsys.readouterr()
    code = 0
    try:
        runpy.run_path(str(REPO / "tools" / tool), run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# -- video files -------------------------------------------------------------------------------
def test_intact_avi_decodes_every_frame_without_a_word(tmp_path, caplog):
    path = write_avi(tmp_path / "ok.avi")
    with caplog.at_level(logging.WARNING):
        assert decode(VideoRecord("ok", path), (8, 8), 1).shape == (N, 8, 8, 1)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert media_check(VideoRecord("ok", path), N) == (N, [])


def test_avi_cut_in_half_is_refused_naming_decoded_and_claimed(tmp_path):
    path = cut(write_avi(tmp_path / "cut.avi"))
    decoded = decodable(path)
    assert 0 < decoded < N // 2 + 2
    with pytest.raises(DatasetError) as exc:
        decode(VideoRecord("cut", path), (8, 8), 1)
    assert str(exc.value) == frame_count_error("cut", path, decoded)


def test_avi_missing_only_its_last_frames_is_refused(tmp_path):
    path = cut(write_avi(tmp_path / "tail.avi"), 0.93)
    decoded = decodable(path)
    assert N - 3 <= decoded < N
    with pytest.raises(DatasetError) as exc:
        decode(VideoRecord("tail", path), (8, 8), 3)
    assert str(exc.value) == frame_count_error("tail", path, decoded)


def test_cut_avi_accepted_is_used_as_decoded_with_a_warning(tmp_path, caplog):
    path = cut(write_avi(tmp_path / "cut.avi"))
    decoded = decodable(path)
    with caplog.at_level(logging.WARNING, logger="pyanomaly"):
        frames = decode(VideoRecord("cut", path), (8, 8), 1, accept_truncated=True)
    assert frames.shape == (decoded, 8, 8, 1)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"video 'cut': {path} decodes to {decoded} frames but its container claims {N} (truncated or damaged "
        "file); used as decoded (truncated media accepted)"]


def test_video_with_zero_frames(tmp_path):
    path = write_avi(tmp_path / "zero.avi", n=0)
    with pytest.raises(DatasetError) as exc:
        decode(VideoRecord("zero", path), (8, 8), 1)
    assert str(exc.value) == f"video 'zero' has no frames ({path} decodes to nothing)"


def test_text_file_named_avi(tmp_path):
    path = tmp_path / "notes.avi"
    path.write_text("not a video\n")
    with pytest.raises(DatasetError) as exc:
        decode(VideoRecord("notes", path), (8, 8), 1)
    assert str(exc.value) == f"video 'notes': cannot open video file {path}"


def test_frame_count_tolerance_per_container():
    # AVI's index is exact; MP4/MOV counts may include frames an edit list hides; others are estimates
    assert frame_count_problem(Path("a.avi"), 39, 40) == "a.avi decodes to 39 frames but its container claims 40 " \
                                                         "(truncated or damaged file)"
    assert frame_count_problem(Path("a.mp4"), 38, 40) is None
    assert frame_count_problem(Path("a.mp4"), 37, 40) is not None
    assert frame_count_problem(Path("a.mkv"), 38, 40) is None
    assert frame_count_problem(Path("a.mkv"), 300, 320) is not None  # 2 % of 320 is 7 frames
    assert frame_count_problem(Path("a.mkv"), 314, 320) is None
    assert frame_count_problem(Path("a.avi"), 41, 40) is None  # more than claimed: nothing lost
    assert frame_count_problem(Path("a.wmv"), 13, None) is None  # no count given: nothing to compare


# -- frame files -------------------------------------------------------------------------------
def test_jpeg_cut_in_half_is_refused_not_decoded_as_grey(tmp_path):
    files = write_frames(tmp_path / "v")
    cut(files[1])
    assert cv2.imread(str(files[1])) is not None  # OpenCV alone decodes it, the missing part grey
    with pytest.raises(DatasetError) as exc:
        decode(VideoRecord("v", files), (8, 8), 1)
    assert str(exc.value) == (f"video 'v': frame file {files[1]} is truncated (a JPEG without its end-of-image "
                              f"marker); {HINT}")


def test_jpeg_cut_accepted_is_used_with_a_warning(tmp_path, caplog):
    files = write_frames(tmp_path / "v")
    cut(files[2])
    with caplog.at_level(logging.WARNING, logger="pyanomaly"):
        assert decode(VideoRecord("v", files), (8, 8), 1, accept_truncated=True).shape == (4, 8, 8, 1)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"video 'v': frame file {files[2]} is truncated (a JPEG without its end-of-image marker); used as decoded "
        "(truncated media accepted)"]


def test_png_cut_in_half_is_refused(tmp_path):
    files = write_frames(tmp_path / "v", ext=".png")
    cut(files[0], 0.6)
    with pytest.raises(DatasetError) as exc:
        decode(VideoRecord("v", files), (8, 8), 1)
    assert str(exc.value) == f"video 'v': frame file {files[0]} is truncated (a PNG without its IEND chunk); {HINT}"


def test_cut_jpeg_named_png_is_found_by_its_content(tmp_path):
    files = write_frames(tmp_path / "v", ext=".png")
    assert cv2.imwrite(str(tmp_path / "x.jpg"), image(1))
    files[1].write_bytes((tmp_path / "x.jpg").read_bytes())  # a JPEG renamed .png, then cut
    assert decode(VideoRecord("v", files), (8, 8), 1).shape == (4, 8, 8, 1)
    cut(files[1])
    with pytest.raises(DatasetError) as exc:
        decode(VideoRecord("v", files), (8, 8), 1)
    assert str(exc.value) == (f"video 'v': frame file {files[1]} is truncated (a JPEG without its end-of-image "
                              f"marker); {HINT}")


def test_zero_byte_frame_file_is_refused_even_when_truncation_is_accepted(tmp_path):
    files = write_frames(tmp_path / "v")
    files[3].write_bytes(b"")
    for accept in (False, True):
        with pytest.raises(DatasetError) as exc:
            decode(VideoRecord("v", files), (8, 8), 1, accept_truncated=accept)
        assert str(exc.value) == f"video 'v': frame file {files[3]} is empty (0 bytes)"


def test_text_file_named_jpg(tmp_path):
    files = write_frames(tmp_path / "v")
    files[1].write_text("hello, not a picture\n")
    with pytest.raises(DatasetError) as exc:
        decode(VideoRecord("v", files), (8, 8), 1)
    assert str(exc.value) == f"video 'v': unreadable frame file {files[1]} (corrupt or not an image)"


def test_jpeg_with_bytes_after_its_end_marker_is_complete(tmp_path):
    files = write_frames(tmp_path / "v")
    files[0].write_bytes(files[0].read_bytes() + b"camera trailer \x00\x01")
    assert frame_file_problem(files[0]) is None
    assert decode(VideoRecord("v", files), (8, 8), 1).shape == (4, 8, 8, 1)


def test_frame_folder_with_mixed_frame_sizes(tmp_path):
    files = write_frames(tmp_path / "v")
    assert cv2.imwrite(str(files[2]), image(2, (10, 20)))
    with pytest.raises(DatasetError) as exc:
        decode(VideoRecord("v", files), (8, 8), 1)
    assert str(exc.value) == (f"video 'v': frame file {files[2]} is 20x10 (WxH) but its first frame is 32x24 "
                              "(mixed frame sizes)")


def test_structural_check_reads_only_the_tail_of_complete_files(tmp_path):
    files = write_frames(tmp_path / "v", ext=".jpg") + write_frames(tmp_path / "p", ext=".png")
    assert [frame_file_problem(f) for f in files] == [None] * len(files)
    cut(files[0], 0.4)
    cut(files[-1], 0.4)
    assert "JPEG without its end-of-image marker" in frame_file_problem(files[0])
    assert "PNG without its IEND chunk" in frame_file_problem(files[-1])


# -- datasets (the config setting, the cache) --------------------------------------------------
def folder_cfg(root: Path, cache: Path, *opts: str):
    return load_cfg(None, ["DATASET.NAME", "folder", "DATASET.ROOT", str(root), "DATASET.IMAGE_SIZE", "[8, 8]",
                           "DATASET.CLIP_LENGTH", "2", "DATASET.CACHE_DIR", str(cache), *opts])


def test_dataset_refuses_a_cut_video_and_accepts_it_when_told(tmp_path, caplog):
    path = cut(write_avi(tmp_path / "data" / "testing" / "cam.avi"))
    decoded = decodable(path)
    with pytest.raises(DatasetError) as exc:
        build_dataset(folder_cfg(tmp_path / "data", tmp_path / "cache"), "testing")
    assert str(exc.value) == frame_count_error("cam", path, decoded)
    with caplog.at_level(logging.WARNING, logger="pyanomaly"):
        ds = build_dataset(folder_cfg(tmp_path / "data", tmp_path / "cache", "DATASET.ACCEPT_TRUNCATED", "True"),
                           "testing")
    assert ds.lengths == [decoded] and ds.claimed == [N] and list(ds.truncated) == ["cam"]
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert messages[0].startswith("DATASET.ACCEPT_TRUNCATED is on: truncated videos and frame files of the 'testing'")
    assert sum("decodes to" in m and "used as decoded" in m for m in messages) == 1


def test_a_cached_truncated_video_is_still_refused_when_not_accepted(tmp_path):
    path = cut(write_avi(tmp_path / "data" / "testing" / "cam.avi"))
    accepted = build_dataset(folder_cfg(tmp_path / "data", tmp_path / "cache", "DATASET.ACCEPT_TRUNCATED", "True"),
                             "testing")
    assert len(list((tmp_path / "cache").glob("cam-*.npy"))) == 1  # decoded once into the cache
    with pytest.raises(DatasetError) as exc:
        build_dataset(folder_cfg(tmp_path / "data", tmp_path / "cache"), "testing")
    assert str(exc.value) == frame_count_error("cam", path, accepted.lengths[0])


# -- the stream reader and tools/score_video.py ------------------------------------------------
def test_stream_reader_refuses_a_cut_video_and_a_cut_frame(tmp_path):
    path = cut(write_avi(tmp_path / "cut.avi"))
    decoded = decodable(path)
    with pytest.raises(DatasetError) as exc:
        list(read_chunks(find_sources(path)[0], 4, (8, 8), 1))
    assert str(exc.value) == frame_count_error("cut", path, decoded)
    chunks = [f for f, _ in read_chunks(find_sources(path)[0], 4, (8, 8), 1, accept_truncated=True)]
    assert sum(len(c) for c in chunks) == decoded
    files = write_frames(tmp_path / "frames")
    cut(files[3])
    with pytest.raises(DatasetError, match=r"frame file .*003\.jpg is truncated \(a JPEG without"):
        list(read_chunks(find_sources(tmp_path / "frames")[0], 2, (8, 8), 1))


TINY = """
DATASET:
  CLIP_LENGTH: 4
  IMAGE_SIZE: [24, 32]
MODEL:
  NAME: PredNetPredictor
  ARGS:
    network: {type: PredNet, stack_sizes: [1, 4], R_stack_sizes: [4, 4], A_filter_sizes: [3],
              Ahat_filter_sizes: [3, 3], R_filter_sizes: [3, 3]}
TEST:
  CHUNK: 8
STREAM:
  NORMALIZE: {window: 8, warmup: 2}
LOG:
  PROGRESS: False
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny config and an untrained checkpoint of it, in the trainer's format."""
    tmp = tmp_path_factory.mktemp("tiny")
    (tmp / "tiny.yaml").write_text(TINY)
    cfg = load_cfg(tmp / "tiny.yaml")
    torch.manual_seed(0)
    model = build_model(cfg, torch.device("cpu"))
    save_checkpoint(tmp / "untrained.pth", {"model": model.state_dict(), "step": 0, "meta": model_meta(cfg),
                                            "metrics": None})
    return tmp / "tiny.yaml", tmp / "untrained.pth"


def test_score_video_refuses_a_cut_video(tiny, tmp_path, capsys, monkeypatch):
    cfg, ckpt = tiny
    path = cut(write_avi(tmp_path / "cut.avi"))
    decoded = decodable(path)
    code, _, err = run_tool(capsys, monkeypatch, "score_video.py", "--cfg", cfg, "--checkpoint", ckpt,
                            "--video", path, "--out", tmp_path / "out")
    assert code == 2 and "Traceback" not in err
    assert last_line(err) == f"error: {frame_count_error('cut', path, decoded)}"
    assert json.loads((tmp_path / "out" / "alarms.json").read_text())["complete"] is False


def test_score_video_scores_a_cut_video_as_decoded_when_told(tiny, tmp_path, capsys, monkeypatch):
    cfg, ckpt = tiny
    path = cut(write_avi(tmp_path / "cut.avi"))
    decoded = decodable(path)
    code, _, err = run_tool(capsys, monkeypatch, "score_video.py", "--cfg", cfg, "--checkpoint", ckpt,
                            "--video", path, "--out", tmp_path / "out", "DATASET.ACCEPT_TRUNCATED", "True")
    assert code == 0, err[-2000:]
    alarms = json.loads((tmp_path / "out" / "alarms.json").read_text())
    assert alarms["complete"] and alarms["videos"][0]["frames"] == decoded
    log = (tmp_path / "out" / "log.txt").read_text()
    assert f"decodes to {decoded} frames but its container claims {N}" in log and "used as decoded" in log


# -- tools/prepare_data.py ---------------------------------------------------------------------
def folder_dataset(root: Path) -> Path:
    """training: an AVI and a JPEG frame folder; testing: an AVI with labels."""
    write_avi(root / "training" / "walk.avi")
    write_frames(root / "training" / "frames_a", 6)
    write_avi(root / "testing" / "cam.avi")
    (root / "testing" / "labels.csv").write_text("video,start,end\ncam,5,9\n")
    return root


def folder_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "folder.yaml"
    path.write_text("DATASET:\n  NAME: folder\n")
    return path


def prepare(capsys, monkeypatch, tmp_path, root, *opts):
    return run_tool(capsys, monkeypatch, "prepare_data.py", "--cfg", folder_yaml(tmp_path),
                    "--per-video", "DATASET.ROOT", root, "DATASET.IMAGE_SIZE", "[8, 8]", "DATASET.CLIP_LENGTH", "2",
                    "DATASET.CACHE_DIR", tmp_path / "cache", *opts)


def per_video_row(out: str, name: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.split()[:1] == [name])


def test_prepare_data_reports_decoded_and_claimed_per_video(tmp_path, capsys, monkeypatch):
    root = folder_dataset(tmp_path / "data")
    code, out, err = prepare(capsys, monkeypatch, tmp_path, root)
    assert code == 0, err
    assert "claimed" in out and "truncated" not in out
    assert per_video_row(out, "walk")[:3] == ["walk", "20", "20"]
    assert per_video_row(out, "frames_a")[:3] == ["frames_a", "6", "6"]
    assert per_video_row(out, "cam")[:4] == ["cam", "20", "20", "5"]


def test_prepare_data_lists_every_truncated_video_and_fails(tmp_path, capsys, monkeypatch):
    root = folder_dataset(tmp_path / "data")
    walk = cut(root / "training" / "walk.avi")
    frame = cut(root / "training" / "frames_a" / "004.jpg")
    cam = cut(root / "testing" / "cam.avi", 0.8)
    code, out, err = prepare(capsys, monkeypatch, tmp_path, root)
    assert code == 1 and "Traceback" not in err
    assert [line for line in out.splitlines() if line.startswith("truncated:")] == [
        f"truncated: training video 'frames_a': frame file {frame} is truncated (a JPEG without its end-of-image "
        "marker)",
        f"truncated: training video 'walk': {walk} decodes to {decodable(walk)} frames but its container claims 20 "
        "(truncated or damaged file)",
        f"truncated: testing video 'cam': {cam} decodes to {decodable(cam)} frames but its container claims 20 "
        "(truncated or damaged file)"]
    assert per_video_row(out, "walk") == ["walk", str(decodable(walk)), "20", "-", "truncated"]
    assert last_line(err) == ("error: 3 video(s) are truncated (listed above: frames decoded vs claimed, cut frame "
                              "files); set DATASET.ACCEPT_TRUNCATED True to use them as decoded")


def test_prepare_data_accepts_truncated_media_when_told(tmp_path, capsys, monkeypatch, caplog):
    root = folder_dataset(tmp_path / "data")
    walk = cut(root / "training" / "walk.avi")
    with caplog.at_level(logging.INFO):
        code, out, err = prepare(capsys, monkeypatch, tmp_path, root, "DATASET.ACCEPT_TRUNCATED", "True")
    assert code == 0, err
    assert last_line(out) == "note: 1 truncated video(s) are used as decoded (DATASET.ACCEPT_TRUNCATED is on)"
    assert per_video_row(out, "walk")[:3] == ["walk", str(decodable(walk)), "20"]
    assert any(r.getMessage().startswith("DATASET.ACCEPT_TRUNCATED is on") for r in caplog.records)


@pytest.mark.parametrize("damage, expect", [
    ("empty", "frame file {f} is empty (0 bytes)"),
    ("text", "unreadable frame file {f} (corrupt or not an image)"),
    ("size", "frame file {f} is 20x10 (WxH) but its first frame is 32x24 (mixed frame sizes)"),
])
def test_prepare_data_one_line_for_unusable_frames(tmp_path, capsys, monkeypatch, damage, expect):
    root = folder_dataset(tmp_path / "data")
    f = root / "training" / "frames_a" / "002.jpg"
    if damage == "empty":
        f.write_bytes(b"")
    elif damage == "text":
        f.write_text("not a picture")
    else:
        cv2.imwrite(str(f), image(2, (10, 20)))
    code, out, err = prepare(capsys, monkeypatch, tmp_path, root)
    assert code == 1 and out == "" and "Traceback" not in err
    assert last_line(err) == "error: video 'frames_a': " + expect.format(f=f)


# -- real data (skipped when ../shared/data is absent) ----------------------------------------
VTEST = SHARED_DATA / "videos" / "vtest.avi"
PED2 = SHARED_DATA / "ped2"


@pytest.mark.skipif(not VTEST.is_file(), reason=f"real video not found: {VTEST}")
def test_real_video_cut_in_half_is_refused_and_the_whole_one_passes(tmp_path):
    assert frame_count_problem(VTEST, count_video_frames(VTEST), 795) is None
    path = cut(Path(shutil.copy(VTEST, tmp_path / "vtest.avi")))
    with pytest.raises(DatasetError, match=r"^video 'vtest': .*vtest\.avi decodes to 3\d\d frames but its container "
                                           r"claims 795 \(truncated or damaged file\); set DATASET.ACCEPT_TRUNCATED"):
        list(read_chunks(find_sources(path)[0], 256, (8, 8), 1))


@pytest.mark.skipif(not PED2.is_dir(), reason=f"real Ped2 not found: {PED2}")
def test_real_ped2_frames_are_complete():
    folders = sorted(PED2.glob("*/frames/*"))
    assert len(folders) == 28
    for folder in folders:
        files = sorted_frames(folder)
        assert media_check(VideoRecord(folder.name, files), len(files)) == (len(files), [])


# -- generated datasets: leftovers and modes ---------------------------------------------------
SMALL = dict(seed=0, size=16, num_train=1, num_test=1, frames_per_video=40)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _host() -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())


def test_generation_removes_the_leftover_of_a_killed_run_but_not_a_live_one(tmp_path):
    stale = tmp_path / f".synth.{_host()}.{_dead_pid()}.partial"
    (stale / "training" / "frames" / "01").mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".synth.{_host()}.{sleeper.pid}.partial"
        live.mkdir()
        make_synthetic(tmp_path / "synth", **SMALL)
        assert not stale.exists() and live.is_dir()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "synth"]


@pytest.mark.slow  # a Python start in a subprocess
def test_kill_9_during_generation_leaves_nothing_the_next_run_keeps(tmp_path):
    code = ("from pyanomaly.datasets.synthetic import make_synthetic\n"
            f"make_synthetic({str(tmp_path / 'synth')!r}, size=64, num_train=40, frames_per_video=200)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=tool_env())
    partial = tmp_path / f".synth.{_host()}.{proc.pid}.partial"
    deadline = time.monotonic() + 120
    while not any(partial.glob("training/frames/*/*.png")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial.is_dir() and not (tmp_path / "synth").exists()
    make_synthetic(tmp_path / "synth", **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]


def test_generated_folders_and_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        out = make_synthetic(tmp_path / "synth", **SMALL)
    finally:
        os.umask(old)
    dirs = [out, *(p for p in out.rglob("*") if p.is_dir())]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {oct(p.stat().st_mode & 0o777) for p in dirs} == {oct(0o750)}
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o640)}
