"""Foreground regions: a moving square on a still textured background, specks, warm-up, chunks, bad specs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pyanomaly.objects import Foreground, build_foreground

H, W, SIDE = 32, 48, 8


def _background(seed=0):
    """A still texture in [0.2, 0.4]: its gray levels differ from pixel to pixel, never in time."""
    return 0.2 + 0.2 * torch.rand(1, H, W, generator=torch.Generator().manual_seed(seed))


def _square_video(n, step=3, top=10, left=2):
    """``(n, 1, H, W)``: the background with a bright ``SIDE x SIDE`` square moving right ``step`` pixels a frame."""
    bg = _background()
    video = bg.repeat(n, 1, 1, 1)
    for t in range(n):
        video[t, :, top:top + SIDE, left + step * t:left + step * t + SIDE] = 0.95
    return video


def _square_box(t, step=3, top=10, left=2):
    return [left + step * t, top, SIDE, SIDE]


def test_frame_difference_finds_one_region_over_the_moving_square():
    # a uniform square changes only where it arrives and where it leaves: with steps of its own
    # side, that is the square now and where it was, side by side
    fg = Foreground(method="difference", threshold=0.1, kernel=3, min_area=10)
    labels, boxes, valid, _ = fg.stream(_square_video(5, step=SIDE), None)
    assert labels.shape == (5, H, W) and labels.dtype == torch.int32
    assert valid.tolist() == [False] + [True] * 4  # the first frame has no previous one
    assert (labels[0] == 0).all() and boxes[0].shape == (0, 4)
    for t in range(1, 5):
        assert boxes[t].tolist() == [[2 + SIDE * (t - 1), 10, 2 * SIDE, SIDE]], f"frame {t}"
        assert set(np.unique(labels[t].numpy())) == {0, 1}
        assert int((labels[t] == 1).sum()) == 2 * SIDE * SIDE - 4  # a 3x3 ellipse is a cross: the opening cuts 4 corners


@pytest.mark.parametrize("method, rate", [("mog2", 0.01), ("knn", -1.0)])
def test_background_subtraction_after_its_warmup_finds_the_square_itself(method, rate):
    # the background alone during the warm-up, then the square comes in and moves 3 pixels a frame
    video = torch.cat([_background().repeat(6, 1, 1, 1), _square_video(8)])
    fg = Foreground(method=method, warmup=6, learning_rate=rate, kernel=3, min_area=10)
    labels, boxes, valid, _ = fg.stream(video, None)
    assert valid.tolist() == [False] * 6 + [True] * 8  # the warm-up frames only feed the model
    assert (labels[:6] == 0).all()
    for t in range(8):
        # the square where it is now, whole (the model knows the texture it uncovers)
        assert boxes[6 + t].tolist() == [_square_box(t)], f"frame {6 + t}"
        x = _square_box(t)[0]
        assert int((labels[6 + t, 10:10 + SIDE, x:x + SIDE] == 1).sum()) == SIDE * SIDE - 4  # corners: the opening


def test_morphology_and_min_area_remove_specks():
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[4:12, 4:12] = 255      # a region of 64 pixels
    mask[20, 30] = 255          # a one-pixel speck: removed by the opening
    mask[20:23, 5:8] = 255      # 9 pixels: survives a 3x3 opening, below min_area
    labels, boxes = Foreground(method="difference", kernel=3, min_area=20).regions(mask)
    assert boxes.tolist() == [[4, 4, 8, 8]]
    assert set(np.unique(labels)) == {0, 1} and int((labels == 1).sum()) >= 56
    # without the opening, the speck stays and min_area alone drops it
    labels, boxes = Foreground(method="difference", kernel=0, min_area=2).regions(mask)
    assert boxes.tolist() == [[4, 4, 8, 8], [5, 20, 3, 3]]
    labels, boxes = Foreground(method="difference", kernel=0, min_area=1).regions(mask)
    assert len(boxes) == 3 and labels.max() == 3


@pytest.mark.parametrize("method", ["difference", "mog2"])
def test_chunks_give_the_regions_of_the_whole_video(method):
    fg = Foreground(method=method, warmup=3, min_area=10)
    video = _square_video(11)
    whole, whole_boxes, whole_valid, _ = fg.stream(video, None)
    for chunk in (1, 4):
        state, parts = None, []
        for s in range(0, 11, chunk):
            labels, boxes, valid, state = fg.stream(video[s:s + chunk], state)
            parts.append((labels, boxes, valid))
        assert torch.equal(torch.cat([p[0] for p in parts]), whole)
        assert torch.equal(torch.cat([p[2] for p in parts]), whole_valid)
        assert [b.tolist() for p in parts for b in p[1]] == [b.tolist() for b in whole_boxes]


def test_a_frame_without_foreground_is_not_valid():
    still = _background().repeat(5, 1, 1, 1)
    labels, boxes, valid, _ = Foreground(method="difference", min_area=5).stream(still, None)
    assert not valid.any() and (labels == 0).all() and all(b.shape == (0, 4) for b in boxes)


@pytest.mark.parametrize("spec, message", [
    (dict(method="mgo2"), r"ObjectCue foreground\.method: expected one of \['difference', 'knn', 'mog2'\], got 'mgo2'"),
    (dict(method="mog2", treshold=0.1), r"ObjectCue foreground: unknown key\(s\) \['treshold'\]; a foreground "
                                         r"takes method, threshold, history"),
    (dict(method="difference", warmup=0), r"ObjectCue foreground: foreground warmup must be >= 1 for 'difference'"),
    (dict(min_area=0), r"ObjectCue foreground: foreground min_area must be >= 1"),
    ("mog2", r"ObjectCue foreground: expected \{method: difference \| knn \| mog2"),
])
def test_a_bad_foreground_spec_is_one_error_naming_the_key(spec, message):
    with pytest.raises(ValueError, match=message):
        build_foreground(spec, "ObjectCue foreground")
