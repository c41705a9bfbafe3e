"""Alarm segments: >= min_frames consecutive frames above the threshold, raised causally."""
import numpy as np
import pytest

from pyanomaly.scoring import AlarmTracker, alarm_segments


def test_segments_hand_computed():
    s = np.array([0, 5, 5, 0, 5, 5, 5, np.nan, 5, 5, 5, 5, 9, 5])
    segs = alarm_segments(s, threshold=4.0, min_frames=3, fps=2.0)
    assert [(a["start_frame"], a["end_frame"], a["raised_frame"]) for a in segs] == [(4, 6, 6), (8, 13, 10)]
    assert segs[1]["peak_score"] == 9 and segs[1]["peak_frame"] == 12 and segs[1]["frames"] == 6
    assert segs[0]["start_time_s"] == 2.0 and segs[0]["end_time_s"] == 3.0 and segs[1]["raised_time_s"] == 5.0


def test_threshold_is_strict_and_min_one():
    assert alarm_segments(np.array([4.0, 4.0]), 4.0, 1, 25.0) == []
    segs = alarm_segments(np.array([4.1, 0.0, 4.2]), 4.0, 1, 25.0)
    assert [(a["start_frame"], a["end_frame"]) for a in segs] == [(0, 0), (2, 2)]
    with pytest.raises(ValueError):
        AlarmTracker(1.0, 0, 25.0)


def test_active_flags_are_causal_and_chunked_equals_whole():
    s = np.array([0, 5, 5, 5, 5, 0, 5, 5, 0], dtype=float)
    t = AlarmTracker(1.0, 3, 10.0)
    active = np.concatenate([t.push(s[:2]), t.push(s[2:3]), t.push(s[3:])])
    assert active.tolist() == [False, False, False, True, True, False, False, False, False]
    assert t.finish() == alarm_segments(s, 1.0, 3, 10.0)
