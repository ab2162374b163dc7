"""A keyed permutation of ``[0, n)`` (numpy only): the order the mixer and the trainer draw rows in."""

from __future__ import annotations

import numpy as np


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised (uint64 arithmetic wraps)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


class FeistelPermutation:
    """A keyed bijection of ``[0, n)``; ``perm(idx)`` is vectorised over a numpy array."""

    ROUNDS = 4

    def __init__(self, n: int, key: int):
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n = n
        bits = max(2, (n - 1).bit_length())
        bits += bits % 2
        self.half = bits // 2
        self.mask = np.uint64((1 << self.half) - 1)
        keys = _mix64(np.arange(self.ROUNDS, dtype=np.uint64) + _mix64(np.array([key], dtype=np.uint64)))
        self.keys = keys

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        h = np.uint64(self.half)
        left, right = x >> h, x & self.mask
        for k in self.keys:
            with np.errstate(over="ignore"):
                f = _mix64(right ^ k) & self.mask
            left, right = right, left ^ f
        return (left << h) | right

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        x = self._encrypt(np.asarray(idx, dtype=np.uint64))
        n = np.uint64(self.n)
        todo = x >= n
        while todo.any():  # cycle walking: the domain is < 4n, so few rounds
            x[todo] = self._encrypt(x[todo])
            todo = x >= n
        return x.astype(np.int64)


def shuffle_key(seed: int) -> int:
    """The key of the mixer's row shuffle for ``seed``."""
    from corpusmill.core.hashing import stable_hash

    return stable_hash(f"{seed}\x00rows")


def row_positions(first: int, count: int, total_rows: int, seed: int):
    """Shuffled global positions of rows ``first .. first + count - 1`` (packing order)."""
    return FeistelPermutation(total_rows, shuffle_key(seed))(np.arange(first, first + count, dtype=np.uint64))


def original_row_order(total_rows: int, seed: int):
    """``order[i]``: the global position (``ShardDataset`` index) of the ``i``-th row in packing order."""
    return row_positions(0, total_rows, total_rows, seed)
