"""A per-location model of the scene's normal appearance: what is never seen at a place is anomalous.

Next-frame prediction is blind to what is anomalous and still (a bag left behind, a person
lying on the ground): copying the last frame predicts it perfectly, and it does not move, so
the optical flow does not see it either. This method looks at one frame at a time and asks,
for each ``cell x cell`` cell of a fixed camera's view, whether the cell looks like anything
it looked like in the training videos.

Descriptor of a cell: its pixels averaged down to ``grid x grid`` (4x4 by default; every
channel), in [0, 1], with their mean KEPT: the camera and its lighting are fixed, so a dark bag
on light paving differs from the paving mostly by its brightness, which removing the mean
would throw away; averaging down makes the descriptor blind to the sensor noise and to a
pixel's shift.

:meth:`LocalAppearance.fit` (``tools/train.py``) collects the descriptors of every cell over
the training frames (every ``frame_stride``-th frame) and clusters each cell's into a
codebook of ``codewords`` centres (k-means, Lloyd's iterations from seeded samples, all cells
at once in torch; deterministic). The map of frame ``t`` is, per cell, the distance from the
cell's descriptor to its nearest codeword (root mean square over the descriptor's values,
in intensity units), spread over the cell's pixels: ``(N, 1, H, W)``, output
``"anomaly_map"``, scored by ``CELL_MAX`` / ``CELL_TOP`` with ``SCORE.PATCH`` = ``cell``. It
reads frame ``t`` only, so every frame has a map (valid from frame 0).

Example:
    >>> model = LocalAppearance(cell=8, codewords=16)
    >>> model.fit(train_set, torch.device("cpu"))        # a codebook per cell
    >>> amap, valid, state = model.predict_stream(frames)  # (N, 1, H, W), (N,) all True
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from tqdm import tqdm

from pyanomaly.registry import MODELS
from pyanomaly.scoring.cells import cell_grid, cell_size, spread_cells

from .baseline import Baseline

logger = logging.getLogger("pyanomaly")


@MODELS.register_module()
class LocalAppearance(Baseline):
    """Args:
        cell: cell size in pixels (use ``SCORE.PATCH``'s, so a cell's score is its distance).
        grid: each cell is averaged down to ``grid x grid`` values per channel (its descriptor).
        codewords: k-means centres per cell.
        frame_stride: every ``frame_stride``-th training frame is read by :meth:`fit`.
        iterations: Lloyd's iterations of the k-means.
        seed: seeds the k-means' first centres.
        chunk: frames read at a time.
    """

    output = "anomaly_map"
    inference_args = ("chunk",)

    def __init__(self, cell: int = 8, grid: int = 4, codewords: int = 16, frame_stride: int = 2,
                 iterations: int = 20, seed: int = 0, chunk: int = 64):
        super().__init__()
        for name, value in (("cell", cell), ("grid", grid), ("codewords", codewords), ("frame_stride", frame_stride),
                            ("iterations", iterations), ("chunk", chunk)):
            if int(value) < 1:
                raise ValueError(f"LocalAppearance {name} must be >= 1, got {value}")
        self.cell, self.grid, self.codewords = int(cell), int(grid), int(codewords)
        self.frame_stride, self.iterations, self.seed, self.chunk = (int(frame_stride), int(iterations), int(seed),
                                                                     int(chunk))
        # (rows, cols, codewords, descriptor) once fitted; empty before
        self.register_buffer("codebook", torch.empty(0))

    # -- descriptors ---------------------------------------------------------------------------
    def descriptors(self, frames: torch.Tensor) -> torch.Tensor:
        """Descriptors of the whole cells of frames ``(N, C, H, W)``: ``(N, rows, cols, C * grid * grid)``."""
        n, c, h, w = frames.shape
        rows, cols = cell_grid((h, w), self.cell)
        k = cell_size((h, w), self.cell)
        cells = frames[:, :, :rows * k, :cols * k].reshape(n, c, rows, k, cols, k).permute(0, 2, 4, 1, 3, 5)
        small = F.adaptive_avg_pool2d(cells.reshape(-1, c, k, k).float(), self.grid)
        return small.reshape(n, rows, cols, c * self.grid * self.grid)

    # -- the map -------------------------------------------------------------------------------
    def distances(self, frames: torch.Tensor) -> torch.Tensor:
        """Per cell, the distance to the nearest codeword: ``(N, rows, cols)``."""
        desc = self.descriptors(frames)
        if self.codebook.numel() == 0:
            raise ValueError("LocalAppearance has no fitted codebook: fit it on the training videos first "
                             "(tools/train.py), or test a checkpoint that holds one")
        n, rows, cols, d = desc.shape
        if tuple(self.codebook.shape[:2]) != (rows, cols) or self.codebook.shape[3] != d:
            raise ValueError(f"LocalAppearance codebook was fitted on a {tuple(self.codebook.shape[:2])} grid of cells "
                             f"with {self.codebook.shape[3]}-value descriptors; these frames make a {(rows, cols)} grid "
                             f"with {d} (image size {tuple(frames.shape[-2:])}, {frames.shape[1]} channel(s), cell "
                             f"{self.cell}, grid {self.grid})")
        book = self.codebook.to(desc.device).reshape(rows * cols, -1, d)
        dist = torch.cdist(desc.reshape(n, rows * cols, d).transpose(0, 1), book)  # (cells, N, codewords)
        return (dist.amin(dim=2) / d ** 0.5).transpose(0, 1).reshape(n, rows, cols)

    @torch.no_grad()
    def predict_stream(self, frames: torch.Tensor, state=None):
        amap = spread_cells(self.distances(frames), tuple(frames.shape[-2:]), self.cell)
        return amap, torch.ones(frames.shape[0], dtype=torch.bool, device=frames.device), None

    # -- fitting -------------------------------------------------------------------------------
    @property
    def needs_training_videos(self) -> bool:
        return True

    @torch.no_grad()
    def fit(self, train_set, device: torch.device, progress: bool = True) -> int:
        """A k-means codebook per cell over the descriptors of every ``frame_stride``-th training frame."""
        parts, read = [], 0
        bar = tqdm(total=sum(train_set.lengths), desc="local appearance codebooks", unit="frame",
                   disable=not progress, leave=False)
        for v in range(len(train_set.videos)):
            for start in range(0, train_set.lengths[v], self.chunk):
                frames = train_set.video_frames(v, start, start + self.chunk)
                keep = (torch.arange(start, start + frames.shape[0]) % self.frame_stride) == 0
                if keep.any():
                    parts.append(self.descriptors(frames[keep].to(device)))
                read += frames.shape[0]
                bar.update(frames.shape[0])
        bar.close()
        desc = torch.cat(parts)  # (samples, rows, cols, D)
        samples, rows, cols, d = desc.shape
        k = min(self.codewords, samples)
        if k < self.codewords:  # each frame read is then a codeword: the nearest training look, exactly
            logger.warning("LocalAppearance: %d training frames read (frame_stride %d), fewer than the %d codewords "
                           "asked for each cell: the codebooks hold those %d frames' descriptors", samples,
                           self.frame_stride, self.codewords, samples)
        centres = kmeans(desc.reshape(samples, rows * cols, d).transpose(0, 1), k, self.iterations, self.seed)
        self.codebook = centres.reshape(rows, cols, k, d).to(self.codebook.device)
        logger.info("LocalAppearance: %d codewords for each of %dx%d cells of %dx%d pixels from %d training frames",
                    k, rows, cols, self.cell, self.cell, samples)
        return read

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the grid of the fitted codebook is known only from the checkpoint: take its shape
        saved = state_dict.get(prefix + "codebook")
        if saved is not None:
            self.codebook = torch.empty_like(saved, device=self.codebook.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def kmeans(points: torch.Tensor, k: int, iterations: int, seed: int = 0) -> torch.Tensor:
    """K-means of ``G`` independent sets of points at once: ``(G, S, D)`` -> centres ``(G, k, D)``.

    Starts from ``k`` distinct samples of each set (seeded), then Lloyd's iterations; a centre
    left without points keeps its place.
    """
    g, s, d = points.shape
    gen = torch.Generator().manual_seed(int(seed))
    first = torch.stack([torch.randperm(s, generator=gen)[:k] for _ in range(g)]).to(points.device)
    centres = torch.gather(points, 1, first[..., None].expand(g, k, d)).clone()
    for _ in range(int(iterations)):
        nearest = torch.cdist(points, centres).argmin(dim=2)  # (G, S)
        one_hot = F.one_hot(nearest, k).to(points.dtype)  # (G, S, k)
        counts = one_hot.sum(dim=1)  # (G, k)
        sums = one_hot.transpose(1, 2) @ points  # (G, k, D)
        moved = counts > 0
        centres = torch.where(moved[..., None], sums / counts.clamp_min(1)[..., None], centres)
    return centres
