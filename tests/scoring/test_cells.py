"""Cell scorers of anomaly maps: cell means (border cells included), the largest, the top fraction."""
from __future__ import annotations

import pytest
import torch

from pyanomaly.registry import SCORERS, build
from pyanomaly.scoring import cell_grid, cell_means


def test_cells_are_whole_and_the_strip_left_over_is_in_none():
    m = torch.zeros(1, 1, 36, 40)
    m[0, 0, :16, :16] = 1.0       # the first cell
    m[0, 0, 16:32, 16:32] = 3.0   # the last whole cell
    m[0, 0, 32:, :] = 50.0        # the 4-pixel strip at the bottom: in no whole cell
    m[0, 0, :, 32:] = 50.0        # the 8-pixel strip at the right
    cells = cell_means(m, 16)
    assert cell_grid((36, 40), 16) == (2, 2) and cells.shape == (1, 4)
    assert cells[0].tolist() == [1.0, 0.0, 0.0, 3.0]  # a cut-short cell would let the strips win the max
    assert cell_grid((8, 40), 16) == (1, 5) and cell_means(m[..., :8, :], 16).shape == (1, 5)  # cells fit the frame
    assert cell_means(m, 0).shape == (1, 1)  # 0: the frame as one cell
    assert cell_means(m, 0)[0, 0].item() == pytest.approx(float(m.mean()))


def test_cell_max_and_top_fraction():
    m = torch.zeros(2, 1, 40, 40)  # 100 cells of 4x4
    for j, v in enumerate([9.0, 7.0, 5.0]):
        m[1, 0, 4 * j:4 * j + 4, :4] = v
    cmax = build(SCORERS, dict(type="CELL_MAX", patch=4))
    assert cmax(m, None).tolist() == [0.0, 9.0]
    top = build(SCORERS, dict(type="CELL_TOP", patch=4, top_fraction=0.02))  # 2 cells of 100
    assert top(m, None).tolist() == [0.0, 8.0]
    assert build(SCORERS, dict(type="CELL_TOP", patch=4, top_fraction=0.025))(m, None)[1].item() == pytest.approx(7.0)
    assert build(SCORERS, dict(type="CELL_TOP", patch=4, top_fraction=0.001))(m, None)[1].item() == 9.0  # >= 1 cell
    assert cmax.higher_is_anomalous and cmax.reads == "anomaly_map"


def test_cell_max_of_one_pixel_cells_is_the_largest_pixel_whatever_the_frame_size():
    # an object map's error (ObjectCue): the worst object; 1-pixel cells leave no strip out
    m = torch.rand(3, 1, 7, 11, generator=torch.Generator().manual_seed(0))
    m[1, 0, 6, 10] = 5.0  # the last pixel, bottom right
    got = build(SCORERS, dict(type="CELL_MAX", patch=1))(m, None)
    assert torch.equal(got, m.flatten(1).amax(dim=1)) and got[1].item() == 5.0


def test_bad_arguments_and_a_frame_instead_of_a_map_are_refused():
    with pytest.raises(ValueError, match="SCORE.TOP_FRACTION"):
        build(SCORERS, dict(type="CELL_TOP", top_fraction=0.0))
    with pytest.raises(ValueError, match="SCORE.PATCH"):
        build(SCORERS, dict(type="CELL_MAX", patch=-1))
    with pytest.raises(ValueError, match=r"anomaly map \(N, 1, H, W\)"):
        build(SCORERS, dict(type="CELL_MAX"))(torch.zeros(2, 3, 8, 8), None)
