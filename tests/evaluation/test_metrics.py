import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from pyanomaly.evaluation.metrics import eer, frame_metrics, group_metrics, threshold_metrics


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


# -- against scikit-learn, on data with many ties --------------------------------------------
def tied_videos(seed=0):
    rng = np.random.default_rng(seed)
    names, scores, labels = [], [], []
    for v in range(5):
        n = 40 + 10 * v
        lab = (rng.random(n) < 0.3).astype(np.uint8)
        sc = np.round(rng.random(n) + 0.4 * lab, 1)  # rounded: many ties, within and across classes
        names.append(f"v{v}")
        scores.append(sc)
        labels.append(lab)
    return names, scores, labels


def test_micro_macro_ap_match_sklearn_with_ties():
    names, scores, labels = tied_videos()
    m = frame_metrics(names, scores, labels)
    s, l = np.concatenate(scores), np.concatenate(labels)
    assert m["auc_micro"] == pytest.approx(roc_auc_score(l, s), abs=1e-12)
    assert m["ap"] == pytest.approx(average_precision_score(l, s), abs=1e-12)
    per = [roc_auc_score(lb, sc) for sc, lb in zip(scores, labels)]
    assert m["auc_macro"] == pytest.approx(np.mean(per), abs=1e-12)
    assert [m["per_video"][n] for n in names] == pytest.approx(per)
    assert m["videos_in_macro"] == 5 and m["videos_single_class"] == 0


def test_all_one_class_videos():
    # one all-anomalous and one all-normal video: no per-video AUC, but the micro AUC exists
    m = frame_metrics(["pos", "neg"], [np.array([0.9, 0.8]), np.array([0.1, 0.85])],
                      [np.array([1, 1]), np.array([0, 0])])
    assert m["per_video"] == {"pos": None, "neg": None}
    assert m["auc_macro"] is None and m["videos_single_class"] == 2 and m["videos_in_macro"] == 0
    assert m["auc_micro"] == pytest.approx(0.75)  # pairs: 0.9>0.1, 0.9>0.85, 0.8>0.1, 0.8<0.85
    only_normal = frame_metrics(["a"], [np.array([0.1, 0.2])], [np.array([0, 0])])
    assert only_normal["auc_micro"] is None and only_normal["eer"] is None and only_normal["ap"] is None


def test_unknown_labels_inside_a_video_are_left_out():
    m = frame_metrics(["a"], [np.array([0.9, 0.1, 0.5, 0.7])], [np.array([1, 0, -1, -1])])
    assert m["frames_evaluated"] == 2 and m["frames_unlabelled"] == 2 and m["auc_micro"] == 1.0


def test_eer_symmetric_curve_exact():
    # negatives {0, 2}, positives {1, 3}: thresholds above 1 and 2 give (FPR, miss) = (1/2, 1/2)
    rate, thr = eer(np.array([0, 1, 0, 1]), np.array([0.0, 1.0, 2.0, 3.0]))
    assert rate == pytest.approx(0.5)
    assert 1.0 <= thr <= 2.0
    worst, _ = eer(np.array([1, 1, 0, 0]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert worst == pytest.approx(1.0)


# -- fixed thresholds, groups and the registered evaluators ------------------------------------
def test_threshold_metrics_match_sklearn():
    from sklearn.metrics import precision_recall_fscore_support
    names, scores, labels = tied_videos(1)
    s, l = np.concatenate(scores), np.concatenate(labels)
    for row, t in zip(threshold_metrics(scores, labels, [0.3, 0.7, 5.0]), [0.3, 0.7, 5.0]):
        p, r, f, _ = precision_recall_fscore_support(l, (s > t).astype(int), average="binary", zero_division=0)
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p, r, f))
        assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == l.size
    assert threshold_metrics(scores, labels, [5.0])[0]["precision"] == 0.0  # nothing predicted: 0 by convention


def test_threshold_metrics_hand_computed():
    (row,) = threshold_metrics([np.array([0.9, 0.6, 0.4, np.nan]), np.array([0.7])],
                               [np.array([1, 0, 1, 1]), None], [0.5])
    assert (row["tp"], row["fp"], row["fn"], row["tn"]) == (1, 1, 1, 0)  # NaN and unlabelled frames left out
    assert row["precision"] == 0.5 and row["recall"] == 0.5 and row["f1"] == 0.5


def test_group_breakdown():
    s = [np.array([0.1, 0.9]), np.array([0.2, 0.8]), np.array([0.9, 0.1])]
    l = [np.array([0, 1])] * 3
    g = group_metrics(["01_1", "01_2", "02_1"], s, l, ["01", "01", "02"])
    assert set(g) == {"01", "02"}
    assert g["01"]["auc_micro"] == 1.0 and g["01"]["videos"] == 2 and g["02"]["auc_micro"] == 0.0
    assert "per_video" not in g["01"]


def test_evaluators_from_the_registry():
    from pyanomaly.registry import EVALUATORS, build
    names, scores, labels = tied_videos(2)
    merged = {}
    for name in ("FrameLevel", "FixedThreshold", "PerGroup"):
        ev = build(EVALUATORS, dict(type=name), thresholds=[0.5])
        merged.update(ev(names, scores, labels, ["a", "a", "b", "b", "b"]))
    assert {"auc_micro", "auc_macro", "at_threshold", "per_group"} <= set(merged)
    assert build(EVALUATORS, dict(type="PerGroup"))(names, scores, labels, None) == {}
    assert build(EVALUATORS, dict(type="FixedThreshold"))(names, scores, labels) == {}
    with pytest.raises(ValueError, match="EVAL.THRESHOLDS"):
        build(EVALUATORS, dict(type="FixedThreshold", thresholds=["high"]))
