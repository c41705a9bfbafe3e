"""The speed of the optical flow as an anomaly map: what moves fast is anomalous.

Frame ``t``'s map is the magnitude of the dense optical flow from frame ``t-1`` to ``t``
(OpenCV, :class:`~pyanomaly.flow.OpticalFlow`; DIS medium by default), in pixels per frame,
``(N, 1, H, W)``; a cell scorer turns it into a frame's error (``SCORE.ERROR CELL_MAX``:
the largest mean over 16x16 cells with ``SCORE.PATCH 16``; ``CELL_TOP``: the mean of the
top 1 % of cells). No learning: on UCSD Ped2 this alone beats every learned recipe of
``docs/results.md``, because its anomalies (bicycles, carts, skateboards) move faster than
the walkers.

With ``excess = q``, each ``cell x cell`` cell's ``q``-quantile of the mean speed over the
training frames is fitted (``tools/train.py``), and the map is the speed minus its cell's
quantile: a cell where people always walk fast scores only what exceeds that. Its
cell grid should be the scorer's (``cell`` = ``SCORE.PATCH``), so that a cell's score is
exactly its mean speed minus its quantile.

The flow needs the previous frame: the first frame of a video has no map (``valid`` False,
counted by the protocol as a frame without a prediction, never a zero speed).

Example:
    >>> model = FlowSpeed(flow={"type": "dis", "preset": "medium"}, excess=0.99, cell=16)
    >>> model.fit(train_set, torch.device("cpu"))      # per-cell quantiles of the training videos
    >>> speed, valid, state = model.predict_stream(frames)
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from tqdm import tqdm

from pyanomaly.flow import OpticalFlow
from pyanomaly.registry import MODELS
from pyanomaly.scoring.cells import cell_grid, cell_means, spread_cells

from .baseline import Baseline

logger = logging.getLogger("pyanomaly")


@MODELS.register_module()
class FlowSpeed(Baseline):
    """Args:
        flow: the optical flow, ``{type: dis | farneback, preset: ...}`` (:class:`~pyanomaly.flow.OpticalFlow`).
        excess: ``None`` (the speed itself) or a quantile in (0, 1): the speed in excess of
            each cell's quantile of mean speed over the training frames (fitted by :meth:`fit`).
        cell: cell size in pixels of the fitted quantiles (use ``SCORE.PATCH``'s).
        chunk: training frames read at a time while fitting.
    """

    output = "anomaly_map"
    inference_args = ("chunk",)

    def __init__(self, flow: dict | None = None, excess: float | None = None, cell: int = 16, chunk: int = 64):
        super().__init__()
        self.flow = OpticalFlow(**(flow or {}))
        if excess is not None and not 0.0 < float(excess) < 1.0:
            raise ValueError(f"FlowSpeed excess must be a quantile in (0, 1) or None, got {excess}")
        if int(cell) < 1:
            raise ValueError(f"FlowSpeed cell must be >= 1 pixel, got {cell}")
        self.excess = None if excess is None else float(excess)
        self.cell, self.chunk = int(cell), int(chunk)
        # (rows, cols) of the cell grid once fitted; empty before (only with excess)
        self.register_buffer("quantiles", torch.empty(0))

    # -- the map -----------------------------------------------------------------------------
    def speed(self, frames: torch.Tensor, state: np.ndarray | None):
        """Flow speed ``(N, 1, H, W)`` (NaN where there is no previous frame), validity ``(N,)``
        and the state (the last frame, uint8 gray) for the next chunk."""
        flow, valid, state = self.flow.stream(frames, state)
        return torch.linalg.vector_norm(flow, dim=1, keepdim=True), valid, state

    @torch.no_grad()
    def predict_stream(self, frames: torch.Tensor, state=None):
        speed, valid, state = self.speed(frames, state)
        if self.excess is None:
            return speed, valid, state
        return speed - self._quantile_map(speed.shape[-2:]).to(speed.device), valid, state

    def _quantile_map(self, size) -> torch.Tensor:
        """The fitted quantiles spread over the pixels of their cells: ``(1, 1, H, W)`` (the strip
        in no whole cell, which no cell scorer reads, takes its nearest cell's)."""
        grid = cell_grid(tuple(size), self.cell)
        if self.quantiles.numel() == 0:
            raise ValueError(f"FlowSpeed(excess={self.excess}) has no fitted quantiles: fit it on the training "
                             "videos first (tools/train.py), or test a checkpoint that holds them")
        if tuple(self.quantiles.shape) != grid:
            raise ValueError(f"FlowSpeed quantiles were fitted on a {tuple(self.quantiles.shape)} grid of cells, "
                             f"these frames make {grid} (image size {tuple(size)}, cell {self.cell})")
        return spread_cells(self.quantiles[None], tuple(size), self.cell)

    # -- fitting -------------------------------------------------------------------------------
    @property
    def needs_training_videos(self) -> bool:
        return self.excess is not None

    def fit(self, train_set, device: torch.device, progress: bool = True) -> int:
        """With ``excess``: each cell's quantile of mean speed over the training frames read with a flow
        (every one, or ``TRAIN.FIT_MAX_FRAMES`` of them)."""
        if self.excess is None:
            return 0
        cells, read = [], 0
        bar = tqdm(total=sum(train_set.lengths), desc="flow speed quantiles", unit="frame", disable=not progress,
                   leave=False)
        size = None
        for v in range(len(train_set.videos)):
            state = None
            for start in range(0, train_set.lengths[v], self.chunk):
                frames = train_set.video_frames(v, start, start + self.chunk)
                speed, valid, state = self.speed(frames, state)
                size = tuple(speed.shape[-2:])
                if valid.any():
                    cells.append(cell_means(speed[valid], self.cell))
                read += frames.shape[0]
                bar.update(frames.shape[0])
        bar.close()
        if not cells:
            raise ValueError("FlowSpeed: the training videos hold no frame with a flow (every video has one frame)")
        values = torch.cat(cells)  # (frames with a flow, cells)
        q = torch.quantile(values.double(), self.excess, dim=0).float()
        self.quantiles = q.reshape(cell_grid(size, self.cell)).to(self.quantiles.device)
        logger.info("FlowSpeed: %.2f-quantile of each %dx%d cell's mean speed over %d training frames: %.3f to "
                    "%.3f pixels/frame", self.excess, self.cell, self.cell, values.shape[0], float(q.min()),
                    float(q.max()))
        return read

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the grid of the fitted quantiles is known only from the checkpoint: take its shape
        saved = state_dict.get(prefix + "quantiles")
        if saved is not None:
            self.quantiles = torch.empty_like(saved, device=self.quantiles.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
