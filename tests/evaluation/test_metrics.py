import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from pyanomaly.evaluation.metrics import eer, frame_metrics


def test_hand_computed_auc_with_ties():
    # positives {0.8, 0.5}, negatives {0.5, 0.1}: pairs (0.8>0.5, 0.8>0.1, 0.5=0.5 -> 1/2, 0.5>0.1) = 3.5/4
    m = frame_metrics(["a"], [np.array([0.8, 0.5, 0.5, 0.1])], [np.array([1, 1, 0, 0])])
    assert m["auc_micro"] == pytest.approx(0.875)
    assert m["per_video"]["a"] == pytest.approx(0.875)


def test_micro_vs_macro_differ_and_are_labelled():
    s1, l1 = np.array([0.1, 0.2, 0.9, 0.8]), np.array([0, 0, 1, 1])  # perfect within video
    s2, l2 = np.array([0.85, 0.9, 0.95, 0.92]), np.array([0, 0, 1, 1])  # perfect within video, shifted up
    m = frame_metrics(["a", "b"], [s1, s2], [l1, l2])
    assert m["auc_macro"] == pytest.approx(1.0)
    assert m["auc_micro"] == pytest.approx(roc_auc_score(np.r_[l1, l2], np.r_[s1, s2]))
    assert m["auc_micro"] < 1.0
    assert m["ap"] == pytest.approx(average_precision_score(np.r_[l1, l2], np.r_[s1, s2]))


def test_single_class_videos_are_counted_not_averaged():
    m = frame_metrics(["a", "b"], [np.array([0.1, 0.9]), np.array([0.3, 0.4])], [np.array([0, 1]), np.array([0, 0])])
    assert m["videos_single_class"] == 1
    assert m["per_video"]["b"] is None
    assert m["auc_macro"] == pytest.approx(1.0)


def test_unscored_and_unlabelled_frames_are_excluded_and_counted():
    m = frame_metrics(["a", "u"], [np.array([np.nan, 0.2, 0.9]), np.array([0.5])], [np.array([1, 0, 1]), None])
    assert m["frames_unscored"] == 1
    assert m["frames_unlabelled"] == 1
    assert m["frames_evaluated"] == 2
    assert m["auc_micro"] == pytest.approx(1.0)


def test_eer_on_a_known_curve():
    # 10 negatives at 0..9, 10 positives at 5..14: threshold 9.5 -> FPR 0, FNR 0.5; the crossing is symmetric
    neg, pos = np.arange(10.0), np.arange(5.0, 15.0)
    labels = np.r_[np.zeros(10), np.ones(10)]
    rate, thr = eer(labels, np.r_[neg, pos])
    assert rate == pytest.approx(0.25, abs=0.051)
    assert 6.0 <= thr <= 9.0
    perfect, _ = eer(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert perfect == pytest.approx(0.0)
