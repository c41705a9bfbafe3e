"""Reading one video: frame order, numbering checks, decoding, probing, the errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fake_layouts import write_avi, write_frames

from pyanomaly.datasets import DatasetError, VideoRecord
from pyanomaly.datasets.video import (check_frame_files, claim_is_count, claimed_length, count_video_frames, decode,
                                      media_check, probe, sorted_frames)


def test_sorted_frames_natural_order_skips_hidden(tmp_path):
    write_frames(tmp_path, 12, digits=1)  # 0.jpg ... 11.jpg: 10 sorts after 9
    (tmp_path / "._3.jpg").write_bytes(b"macOS resource fork")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in sorted_frames(tmp_path)] == [f"{i}.jpg" for i in range(12)]


def test_check_frame_files(tmp_path):
    files = write_frames(tmp_path, 4, prefix="frame_", first=1)
    check_frame_files("v", files)
    with pytest.raises(DatasetError, match=r"video 'v': .*frame_002\.jpg is followed by frame_004\.jpg \(1 frame\(s\) missing\)"):
        check_frame_files("v", files[:2] + files[3:])
    with pytest.raises(DatasetError, match="duplicate frame number"):
        check_frame_files("v", [files[0], tmp_path / "1.jpg"])
    with pytest.raises(DatasetError, match="video 'v' has no frames"):
        check_frame_files("v", [])
    check_frame_files("v", [tmp_path / "a.jpg", tmp_path / "b.jpg"])  # no numbers: not checked


def test_decode_frames_gray_and_rgb(tmp_path):
    rec = VideoRecord("v", write_frames(tmp_path, 5, color=True))
    gray = decode(rec, (8, 12), 1)
    rgb = decode(rec, (8, 12), 3)
    assert gray.shape == (5, 8, 12, 1) and rgb.shape == (5, 8, 12, 3) and gray.dtype == np.uint8
    # fake colour frames are (v, v/2, 255-v) in RGB order: the red channel is the brightest blob
    assert rgb[0, ..., 0].max() > rgb[0, ..., 1].max()


def test_decode_video_file_and_probe(tmp_path):
    path = write_avi(tmp_path / "v.avi", 6, fps=12.0)
    rec = VideoRecord("v", path)
    assert decode(rec, (4, 6), 1).shape == (6, 4, 6, 1)
    assert count_video_frames(path) == 6
    info = probe(rec)
    assert (info.height, info.width, info.fps) == (16, 24, 12.0)
    assert probe(VideoRecord("f", write_frames(tmp_path / "f", 2))).fps is None


def test_decode_errors(tmp_path):
    files = write_frames(tmp_path, 3)
    files[1].unlink()
    with pytest.raises(DatasetError, match=r"video 'v': missing frame file .*001\.jpg"):
        decode(VideoRecord("v", files), (8, 8), 1)
    with pytest.raises(DatasetError, match=r"video 'w': missing video file .*nope\.avi"):
        decode(VideoRecord("w", tmp_path / "nope.avi"), (8, 8), 1)
    with pytest.raises(DatasetError, match=r"video 'e' has no frames"):
        decode(VideoRecord("e", []), (8, 8), 1)


def test_media_check_counts_claimed_frames_and_finds_cut_files(tmp_path):
    path = write_avi(tmp_path / "v.avi", 6)
    assert media_check(VideoRecord("v", path), 6) == (6, [])
    assert media_check(VideoRecord("v", path), 5) == (6, [f"{path} decodes to 5 frames but its container claims 6 "
                                                          "(truncated or damaged file)"])
    files = write_frames(tmp_path / "f", 3)
    assert media_check(VideoRecord("f", files), 3) == (3, [])
    files[1].write_bytes(files[1].read_bytes()[:40])
    assert media_check(VideoRecord("f", files), 3) == (
        3, [f"frame file {files[1]} is truncated (a JPEG without its end-of-image marker)"])
    with pytest.raises(DatasetError, match=r"001\.jpg is truncated .*; set DATASET.ACCEPT_TRUNCATED True"):
        decode(VideoRecord("f", files), (8, 8), 1)


def test_claimed_length_counted_or_estimated(tmp_path):
    files = write_frames(tmp_path / "f", 3)
    assert claimed_length(VideoRecord("f", files)) == 3 and claim_is_count(VideoRecord("f", files))
    avi = write_avi(tmp_path / "v.avi", 6)  # AVI: an index, exact
    assert claimed_length(VideoRecord("v", avi)) == 6 and claim_is_count(VideoRecord("v", avi))
    mkv = tmp_path / "v.mkv"  # Matroska: duration x fps, an estimate
    writer = cv2.VideoWriter(str(mkv), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (24, 16))
    assert writer.isOpened()
    for _ in range(6):
        writer.write(np.zeros((16, 24, 3), np.uint8))
    writer.release()
    assert claimed_length(VideoRecord("m", mkv)) is not None
    assert not claim_is_count(VideoRecord("m", mkv))
