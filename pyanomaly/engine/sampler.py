"""An endless, resumable, distributed sampler of training clips.

All processes share one global stream of sample indices: the permutations of epoch 0,
1, 2, ... (epoch ``e`` drawn from ``seed + e``) laid end to end. Process ``rank`` of
``world`` takes the global positions ``rank, rank + world, rank + 2 * world, ...``, so with
``B`` clips per process, global step ``s`` trains on positions ``[s*B*world, (s+1)*B*world)``
of the stream whatever the number of processes: one process with batch ``2B`` and two with
batch ``B`` see the same clips at every step. The order is a pure function of the seed and
the position, so resuming needs only the number of samples consumed.

Example:
    >>> it = iter(InfiniteSampler(10, seed=0, rank=1, world=2, start=8))  # 4 steps of 2 x 1 done
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class InfiniteSampler(Sampler[int]):
    """Args:
        size: number of samples (clips) in the dataset.
        seed: the data-order seed (``SYSTEM.SEED``).
        shuffle: permute each epoch; False visits ``0..size-1`` in order.
        rank, world: this process and the number of processes.
        start: global position to start at = samples consumed by all processes together
            (``steps * batch_size * world``).
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world: int = 1,
                 start: int = 0):
        if size < 1:
            raise ValueError("InfiniteSampler needs at least one sample")
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world, self.start = rank, world, start

    def _epoch(self, e: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        g = torch.Generator().manual_seed(self.seed + e)
        return torch.randperm(self.size, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        position = self.start + self.rank
        epoch, order = -1, []
        while True:
            e, i = divmod(position, self.size)
            if e != epoch:  # draw each epoch's permutation once, when the stream reaches it
                epoch, order = e, self._epoch(e)
            yield order[i]
            position += self.world
