"""Deterministic data order: which rows make up the global batch of a step.

The order is a function of (seed, number of rows, position) only. Position ``p`` (the count of rows
consumed before this one, over the whole run) maps to epoch ``p // N`` and to row
``perm(seed, epoch)(p % N)``, where ``perm`` is a keyed pseudo-random permutation of ``[0, N)``
(a 4-round Feistel network on the next even power of two, with cycle walking): O(1) memory and O(1)
per row, for any N. A global batch is the ``global_batch_rows`` consecutive positions starting at the
run's ``consumed_rows``; process ``r`` of ``W`` takes the slice ``[r * G/W, (r + 1) * G/W)`` of it.
So the global batches are the same whatever the number of processes, and resuming only needs
``consumed_rows``.

No torch at import time (numpy only).
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


from corpusmill.core.shuffle import FeistelPermutation, _mix64  # noqa: E402,F401


def epoch_key(seed: int, epoch: int) -> int:
    return int(_mix64(np.array([(seed & 0xFFFFFFFF) << 32 | (epoch & 0xFFFFFFFF)], dtype=np.uint64))[0])


class DataOrder:
    """Global rows for positions ``[start, start + count)`` of a run over ``num_rows`` rows."""

    def __init__(self, num_rows: int, seed: int, shuffle: bool = True):
        if num_rows < 1:
            raise ValueError("no training rows")
        self.num_rows, self.seed, self.shuffle = num_rows, seed, shuffle
        self._perms: dict = {}

    def _perm(self, epoch: int) -> FeistelPermutation:
        perm = self._perms.get(epoch)
        if perm is None:
            if len(self._perms) > 4:
                self._perms.clear()
            perm = self._perms[epoch] = FeistelPermutation(self.num_rows, epoch_key(self.seed, epoch))
        return perm

    def rows(self, start: int, count: int) -> np.ndarray:
        pos = np.arange(start, start + count, dtype=np.int64)
        if not self.shuffle:
            return pos % self.num_rows
        epochs, within = np.divmod(pos, self.num_rows)
        out = np.empty(count, dtype=np.int64)
        for e in np.unique(epochs):
            sel = epochs == e
            out[sel] = self._perm(int(e))(within[sel])
        return out


def rank_slice(global_batch_rows: int, rank: int, world: int) -> Tuple[int, int]:
    """This process's ``[start, stop)`` within a global batch."""
    per = global_batch_rows // world
    return rank * per, (rank + 1) * per


def load_rows(ds, indices: np.ndarray, with_starts: bool) -> Tuple[np.ndarray, List[np.ndarray]]:
    """Stack rows ``indices`` of a ShardDataset into int64 ``(n, seq_len + 1)`` plus a bool start-flag
    matrix ``(n, seq_len + 1)`` (or None)."""
    width = ds.seq_len + 1
    tokens = np.empty((len(indices), width), dtype=np.int64)
    flags = np.zeros((len(indices), width), dtype=bool) if with_starts else None
    for k, i in enumerate(indices.tolist()):
        row, starts = ds[i]
        tokens[k] = row
        if flags is not None:
            flags[k, starts] = True
    return tokens, flags
