"""Top-scoring frames kept during inference: only k per video, ranked by final score overall."""
import numpy as np
import torch

from pyanomaly.evaluation.topk import TopFrames, select_top


def test_keeps_the_k_highest_across_chunks():
    rng = np.random.default_rng(0)
    values = rng.random(50)
    values[[3, 40]] = np.nan  # no prediction
    frames = torch.rand(50, 1, 8, 8)
    pred = torch.rand(50, 1, 8, 8)
    top = TopFrames("v", k=4)
    for s in range(0, 50, 7):
        top.offer(values[s:s + 7], s, frames[s:s + 7], pred[s:s + 7])
    kept = top.items()
    expect = np.argsort(-np.nan_to_num(values, nan=-1))[:4]
    assert [x.index for x in kept] == expect.tolist()
    x = kept[0]
    assert x.frame.shape == (8, 8, 1) and x.frame.dtype == np.uint8 and x.error.shape == (8, 8)
    want = (frames[x.index] - pred[x.index]).abs().mean(0).mul(255).round().numpy()
    np.testing.assert_array_equal(x.error, want.astype(np.uint8))


def test_select_top_ranks_by_final_score_and_skips_unscored():
    tops = []
    for name in ("a", "b"):
        t = TopFrames(name, k=2)
        t.offer(np.array([1.0, 2.0, 3.0]), 0, torch.rand(3, 3, 4, 4), torch.rand(3, 3, 4, 4))
        tops.append(t)
    scores = {"a": np.array([0.0, 0.5, np.nan]), "b": np.array([0.0, 0.9, 0.7])}
    labels = {"a": np.array([0, 1, 1]), "b": None}
    best = select_top(tops, scores, 2, labels)
    assert [(x.video, x.index, x.score) for x in best] == [("b", 1, 0.9), ("b", 2, 0.7)]
    assert best[0].label is None
    assert select_top(tops, scores, 5, labels)[-1].label == 1
    assert TopFrames("z", 0).items() == []
