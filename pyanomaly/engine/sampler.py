"""An endless, resumable, distributed sampler of training clips.

Epoch ``e`` visits a permutation drawn from ``seed + e``; process ``rank`` of ``world`` takes
every ``world``-th index. Starting at ``start`` (samples this process already consumed)
reproduces exactly the order an uninterrupted run would have seen, so resume needs only
the step count.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class InfiniteSampler(Sampler[int]):
    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world: int = 1,
                 start: int = 0):
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world, self.start = rank, world, start

    def _epoch(self, e: int) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + e)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        # Pad so that every process gets the same number of samples per epoch.
        per = -(-self.size // self.world)
        order = (order * (per * self.world // max(len(order), 1) + 1))[: per * self.world]
        return order[self.rank::self.world]

    def __iter__(self) -> Iterator[int]:
        per = -(-self.size // self.world)
        e, offset = divmod(self.start, per)
        while True:
            yield from self._epoch(e)[offset:]
            e, offset = e + 1, 0
