"""Optical flow (OpenCV DIS / Farneback) and its colour-wheel picture."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from pyanomaly.flow import OpticalFlow, flow_to_rgb, to_gray_uint8


def _texture(h=48, w=64, seed=0) -> np.ndarray:
    """A smooth random texture, uint8 (h, w): something a flow algorithm can track."""
    rng = np.random.default_rng(seed)
    low = cv2.resize(rng.random((h // 4, w // 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(low * 255, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("spec", [{"type": "dis", "preset": "medium"}, {"type": "dis", "preset": "ultrafast"},
                                  {"type": "farneback"}])
def test_a_shifted_texture_gives_its_shift(spec):
    base = _texture(64, 96)
    shifted = np.roll(base, (1, 2), axis=(0, 1))  # 2 pixels right, 1 down
    flow = OpticalFlow(**spec).pair(base, shifted)
    assert flow.shape == (64, 96, 2) and flow.dtype == np.float32
    inner = flow[12:-12, 12:-12]  # away from the wrapped border
    assert np.median(inner[..., 0]) == pytest.approx(2.0, abs=0.25)
    assert np.median(inner[..., 1]) == pytest.approx(1.0, abs=0.25)


def test_a_video_has_no_flow_into_its_first_frame():
    frames = np.stack([np.roll(_texture(), t, axis=1) for t in range(4)])[..., None]  # (4, H, W, 1)
    flows = OpticalFlow("dis", "fast").video(frames)
    assert flows.shape == (4, 48, 64, 2)
    assert np.isnan(flows[0]).all()  # no previous frame: missing, not a zero flow
    assert np.isfinite(flows[1:]).all()
    assert np.median(flows[1:, 10:-10, 10:-10, 0]) == pytest.approx(1.0, abs=0.25)


def test_a_stream_in_chunks_gives_the_flows_of_the_whole_video():
    gray = np.stack([np.roll(_texture(), t, axis=1) for t in range(5)])
    frames = torch.from_numpy(gray).float().div(255)[:, None]  # (5, 1, H, W) in [0, 1]
    flow = OpticalFlow("dis", "fast")
    whole = flow.video(gray[..., None])
    parts, valids, state = [], [], None
    for chunk in (frames[:2], frames[2:3], frames[3:]):
        f, v, state = flow.stream(chunk, state)
        parts.append(f)
        valids.append(v)
    streamed = torch.cat(parts)
    assert streamed.shape == (5, 2, 48, 64)
    assert torch.cat(valids).tolist() == [False, True, True, True, True]
    assert torch.isnan(streamed[0]).all()
    np.testing.assert_allclose(streamed[1:].numpy(), whole[1:].transpose(0, 3, 1, 2), atol=1e-5)


def test_unknown_algorithm_or_preset_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="dis.*farneback"):
        OpticalFlow("raft")
    with pytest.raises(ValueError, match="fast.*medium.*ultrafast"):
        OpticalFlow("dis", "slow")
    assert OpticalFlow("farneback").key() == "farneback-default"
    assert OpticalFlow().spec() == {"type": "dis", "preset": "medium"}


def test_gray_of_float_frames_is_the_channel_mean_in_uint8():
    frames = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1).expand(2, 3, 2, 2)
    gray = to_gray_uint8(frames)
    assert gray.shape == (2, 2, 2) and gray.dtype == np.uint8 and (gray == 128).all()


# -- the colour wheel --------------------------------------------------------------------------
def _hue(rgb: np.ndarray) -> float:
    """Hue in degrees of one RGB uint8 colour."""
    hsv = cv2.cvtColor(rgb.reshape(1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
    return float(hsv[0, 0, 0])


@pytest.mark.parametrize("dx, dy, hue, rgb", [(1, 0, 0, (255, 0, 0)),       # right: red
                                              (0, 1, 90, (128, 255, 0)),     # down (image y): yellow-green
                                              (-1, 0, 180, (0, 255, 255)),   # left: cyan
                                              (0, -1, 270, (128, 0, 255))])  # up: violet
def test_known_directions_give_known_hues(dx, dy, hue, rgb):
    flow = np.zeros((2, 3, 3), dtype=np.float32)
    flow[0], flow[1] = dx, dy
    img = flow_to_rgb(flow)
    assert img.shape == (3, 3, 3) and img.dtype == np.uint8
    assert _hue(img[1, 1]) == pytest.approx(hue, abs=1.0)
    assert np.abs(img[1, 1].astype(int) - np.array(rgb)).max() <= 1


def test_speed_sets_brightness_and_a_missing_flow_is_grey():
    flow = np.zeros((1, 2, 1, 4), dtype=np.float32)  # (N, 2, H, W): four pixels moving right
    flow[0, 0, 0] = [0.0, 1.0, 2.0, 4.0]
    flow[0, :, 0, 0] = np.nan  # no flow there
    img = flow_to_rgb(flow)[0, 0]  # (4, 3)
    assert img[0].tolist() == [128, 128, 128]  # missing: grey, not black (standing still)
    assert [int(p.max()) for p in img[1:]] == [64, 128, 255]  # brightness grows with speed, full at the fastest
    assert flow_to_rgb(flow, max_magnitude=8.0)[0, 0, 3].max() == 128  # a fixed scale


def test_tensor_flows_of_a_clip_give_one_image_each():
    flow = torch.zeros(5, 2, 6, 7)
    flow[:, 1] = 3.0
    img = flow_to_rgb(flow)
    assert img.shape == (5, 6, 7, 3)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, H, W\)"):
        flow_to_rgb(torch.zeros(5, 3, 6, 7))
