"""LocalAppearance: a codebook per cell of the training frames' appearance; what was never seen there scores."""
from __future__ import annotations

import logging

import pytest
import torch

from pyanomaly.models import LocalAppearance
from pyanomaly.models.local_appearance import kmeans
from pyanomaly.registry import MODELS, SCORERS, build

from testutils import VideoList


def _scene(n: int, seed: int, size: int = 32) -> torch.Tensor:
    """A fixed textured background with a dark 4x6 walker crossing left to right: ``(n, 1, size, size)``."""
    gen = torch.Generator().manual_seed(0)
    background = 0.4 + 0.2 * torch.rand(1, 1, size, size, generator=gen)
    noise = torch.Generator().manual_seed(seed)
    frames = background.repeat(n, 1, 1, 1) + 0.01 * torch.randn(n, 1, size, size, generator=noise)
    for t in range(n):
        x = (2 * t + 3 * seed) % (size - 4)
        frames[t, :, 20:26, x:x + 4] = 0.1
    return frames.clamp(0, 1)


def test_a_new_still_object_scores_in_its_cell_and_nowhere_else(tmp_path):
    model = build(MODELS, dict(type="LocalAppearance", cell=8, codewords=8, frame_stride=1))
    assert model.needs_training_videos and model.output == "anomaly_map"
    assert model.fit(VideoList(_scene(30, 1), _scene(30, 2)), torch.device("cpu"), progress=False) == 60
    assert model.codebook.shape == (4, 4, 8, 16)  # 32x32 frames, 8x8 cells, 4x4 descriptors
    test = _scene(5, 3)
    test[:, :, 4:8, 18:22] = 0.95  # a bright box set down in cell (0, 2), where nothing ever was
    amap, valid, state = model.predict_stream(test)
    assert amap.shape == (5, 1, 32, 32) and valid.all() and state is None  # frame t alone: valid from frame 0
    cells = amap[:, 0, ::8, ::8]  # one pixel per cell: the map is constant over its cell
    torch.testing.assert_close(amap, cells.repeat_interleave(8, 1).repeat_interleave(8, 2)[:, None])
    others = torch.ones(4, 4, dtype=torch.bool)
    others[0, 2] = False
    # the box's cell is far from every codeword; the walker's cells are not (it was seen there)
    assert (cells[:, 0, 2] > 0.2).all()
    assert (cells[:, others].amax(dim=1) < 0.5 * cells[:, 0, 2]).all()
    scorer = build(SCORERS, dict(type="CELL_MAX", patch=8))
    torch.testing.assert_close(scorer(amap), cells[:, 0, 2])
    # the fitted codebook is in the checkpoint: a new model takes its grid from it
    torch.save(model.state_dict(), tmp_path / "last.pth")
    again = LocalAppearance(cell=8, codewords=8)
    again.load_state_dict(torch.load(tmp_path / "last.pth", weights_only=True))
    torch.testing.assert_close(again.codebook, model.codebook)
    torch.testing.assert_close(again.predict_stream(test)[0], amap)


def test_unfitted_and_wrong_size_are_clear_errors():
    model = LocalAppearance(cell=8, codewords=4)
    with pytest.raises(ValueError, match="no fitted codebook"):
        model.predict_stream(_scene(2, 1))
    model.fit(VideoList(_scene(8, 1)), torch.device("cpu"), progress=False)
    with pytest.raises(ValueError, match=r"fitted on a \(4, 4\) grid.*these frames make a \(6, 6\) grid"):
        model.predict_stream(_scene(2, 1, size=48))
    with pytest.raises(ValueError, match="codewords must be >= 1"):
        LocalAppearance(codewords=0)


def test_fewer_training_frames_than_codewords_make_each_frame_a_codeword(caplog):
    frames = _scene(8, 1)
    model = LocalAppearance(cell=8, codewords=16, frame_stride=4)
    with caplog.at_level(logging.WARNING, logger="pyanomaly"):
        model.fit(VideoList(frames), torch.device("cpu"), progress=False)
    assert "2 training frames read (frame_stride 4), fewer than the 16 codewords" in caplog.text
    assert model.codebook.shape[2] == 2
    seen = model.predict_stream(frames[::4])[0]  # the frames read are their own codewords
    assert float(seen.abs().max()) < 1e-5
    assert float(model.predict_stream(frames[1:2])[0].max()) > 0


def test_kmeans_finds_separated_clusters_in_every_set_at_once():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[[0.0, 0.0], [5.0, 5.0]], [[-3.0, 1.0], [2.0, -4.0]]])  # (2 sets, 2 clusters, 2)
    points = centres.repeat_interleave(50, dim=1) + 0.1 * torch.randn(2, 100, 2, generator=gen)
    found = kmeans(points, 2, iterations=10, seed=0)
    for g in range(2):
        order = found[g, :, 0].argsort()
        torch.testing.assert_close(found[g][order], centres[g][centres[g, :, 0].argsort()], atol=0.05, rtol=0)
