"""Per-frame error of an anomaly map: the mean over each cell of a grid, then the worst cells.

Some methods do not predict a frame to compare with the real one; they measure how anomalous
each pixel is (the speed of the optical flow, its excess over what the training videos
showed there: :class:`~pyanomaly.models.flow_speed.FlowSpeed`). Their ``predict_stream``
gives that map ``(N, 1, H, W)`` (the method's ``output`` is ``"anomaly_map"``), and a scorer
here turns it into one value per frame: the map is averaged over non-overlapping
``cell x cell`` cells (``SCORE.PATCH``) from the top-left corner, and a frame's error is its
largest cell (``CELL_MAX``) or the mean of its top ``SCORE.TOP_FRACTION`` of cells
(``CELL_TOP``).

Every cell holds ``cell x cell`` pixels: where the frame is not a multiple of the cell, the
strip left over at the right or bottom (8 pixels of Ped2's 360-pixel width with 16-pixel
cells) is in no cell. A cut-short cell averages fewer pixels, so its mean varies more and
it would win the maximum more often than its content says (on Ped2, with the flow speed,
counting the cut-short cells too gives 0.953 micro AUC instead of 0.959: ``docs/results.md``).

Higher = more anomalous. The per-pixel map behind a frame's error (``error_map``) is the
anomaly map itself. These scorers read only the map, never the frame (``reads =
"anomaly_map"``); a map given to a frame scorer (PSNR, ...) or a frame given to these is
refused where the scoring loop is built.

Example:
    >>> CellMax(patch=16)(speed_map, frames)      # (N, 1, H, W), frames unused -> (N,)
    >>> cell_means(speed_map, 16).shape           # (N, (H // 16) * (W // 16))
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pyanomaly.registry import SCORERS


def cell_size(size: tuple[int, int], cell: int) -> int:
    """The side of the cells of an ``(H, W)`` map: ``cell``, at most the map's shorter side."""
    return min(int(cell), int(size[0]), int(size[1]))


def cell_means(values: torch.Tensor, cell: int) -> torch.Tensor:
    """Means of per-pixel values ``(N, 1, H, W)`` over ``cell x cell`` cells: ``(N, cells)``,
    row-major over the :func:`cell_grid`; ``cell <= 0``: one cell, the whole frame."""
    values = values.float()
    if cell <= 0:
        return values.flatten(1).mean(dim=1, keepdim=True)
    k = cell_size(values.shape[-2:], cell)
    return F.avg_pool2d(values, k, stride=k).flatten(1)


def cell_grid(size: tuple[int, int], cell: int) -> tuple[int, int]:
    """Rows and columns of whole cells in an ``(H, W)`` map (``(1, 1)`` for ``cell <= 0``)."""
    if cell <= 0:
        return 1, 1
    k = cell_size(size, cell)
    return int(size[0]) // k, int(size[1]) // k


def spread_cells(values: torch.Tensor, size: tuple[int, int], cell: int) -> torch.Tensor:
    """Per-cell values ``(N, rows, cols)`` of the :func:`cell_grid` spread over the pixels of
    their cells: ``(N, 1, H, W)`` (the strip in no whole cell, which no cell scorer reads,
    takes its nearest cell's value)."""
    grid = cell_grid(tuple(size), cell)
    if tuple(values.shape[-2:]) != grid:
        raise ValueError(f"{tuple(values.shape[-2:])} cell values for a {grid} grid of cells (image size "
                         f"{tuple(size)}, cell {cell})")
    k = cell_size(tuple(size), cell) if cell > 0 else max(int(size[0]), int(size[1]))
    rows = (torch.arange(size[0], device=values.device) // k).clamp_max(grid[0] - 1)
    cols = (torch.arange(size[1], device=values.device) // k).clamp_max(grid[1] - 1)
    return values[:, rows][:, :, cols][:, None]


class _CellScorer:
    higher_is_anomalous = True
    reads = "anomaly_map"

    def __init__(self, patch: int = 16, max_val: float = 1.0):
        if int(patch) < 0:
            raise ValueError(f"SCORE.PATCH (the cell size) must be >= 0, got {patch}")
        self.cell = int(patch)

    def _cells(self, prediction: torch.Tensor) -> torch.Tensor:
        return cell_means(self.error_map(prediction), self.cell)

    def error_map(self, prediction: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """The method's anomaly map itself ``(N, 1, H, W)`` as float32 (the frame unused)."""
        if prediction.dim() != 4 or prediction.shape[1] != 1:
            raise ValueError(f"{type(self).__name__} reads an anomaly map (N, 1, H, W), got {tuple(prediction.shape)}")
        return prediction.float()


@SCORERS.register_module(name="CELL_MAX")
class CellMax(_CellScorer):
    """The largest cell mean of an anomaly map ``(N, 1, H, W)`` -> ``(N,)``.

    Args:
        patch: the cell size in pixels (``SCORE.PATCH``); 0 = the whole frame as one cell.
        max_val: unused (the map has its own units).
    """

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        return self._cells(prediction).amax(dim=1)


@SCORERS.register_module(name="CELL_TOP")
class CellTop(_CellScorer):
    """The mean of the largest ``top_fraction`` of the cell means of an anomaly map -> ``(N,)``
    (at least one cell; ``ceil(top_fraction x cells)``).

    Args:
        patch: the cell size in pixels (``SCORE.PATCH``); 0 = the whole frame as one cell.
        top_fraction: the share of cells averaged (``SCORE.TOP_FRACTION``), in (0, 1].
        max_val: unused.
    """

    def __init__(self, patch: int = 16, top_fraction: float = 0.01, max_val: float = 1.0):
        super().__init__(patch, max_val)
        if not 0.0 < float(top_fraction) <= 1.0:
            raise ValueError(f"SCORE.TOP_FRACTION must be in (0, 1], got {top_fraction}")
        self.top_fraction = float(top_fraction)

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        cells = self._cells(prediction)
        k = max(1, math.ceil(self.top_fraction * cells.shape[1] - 1e-9))
        return cells.topk(k, dim=1).values.mean(dim=1)
