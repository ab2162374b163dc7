"""Held-out documents checked against the training documents by content, before packing (no Beam here).

A held-out set is disjoint from training by document id, but the web repeats itself: a page and its
near-copy, a post quoted in another. Each held-out document's token windows (:data:`WINDOW` tokens, every
position) are looked up among the windows of the training documents; a held-out token is *seen* when a
window covering it occurs in training (Llama 3's contamination analysis counts tokens in n-grams seen in
pretraining, with a per-set threshold). A document whose seen share is at least :data:`THRESHOLD` is
contaminated and left out of the eval set; the manifest reports, per source, the documents checked, the
ones dropped and the share of seen held-out tokens before and after.

Memory: the held-out windows' hashes (8 bytes per held-out token) and the matched ones; the training
documents stream by, each looked up alone.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from corpusmill.core.hashing import fmix64  # MurmurHash3's finalizer: spreads the window sum's bits

WINDOW = 32  # tokens: a window this long shared with training is not chance
THRESHOLD = 0.1  # a held-out document with this share of its tokens seen in training is contaminated
_CHUNK = 1 << 16  # windows hashed at a time (bounded memory on a long document)
_POWERS = np.array([pow(1_000_003, WINDOW - 1 - j, 1 << 64) for j in range(WINDOW)], dtype=np.uint64)


def window_hashes(tokens: np.ndarray) -> np.ndarray:
    """A 64-bit hash of every window of :data:`WINDOW` tokens, in position order (none if shorter)."""
    tokens = np.asarray(tokens).astype(np.uint64)
    n = len(tokens) - WINDOW + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    out = np.empty(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for a in range(0, n, _CHUNK):
            b = min(n, a + _CHUNK)
            view = np.lib.stride_tricks.sliding_window_view(tokens[a : b + WINDOW - 1], WINDOW)
            out[a:b] = fmix64((view * _POWERS).sum(axis=1, dtype=np.uint64))
    return out


def union(parts: Iterable[np.ndarray]) -> np.ndarray:
    parts = [p for p in parts if len(p)]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)


def found_in(hashes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Which of ``hashes`` are in the sorted ``table``."""
    if not len(table) or not len(hashes):
        return np.zeros(len(hashes), dtype=bool)
    at = np.minimum(np.searchsorted(table, hashes), len(table) - 1)
    return table[at] == hashes


def seen_share(tokens: np.ndarray, seen: np.ndarray) -> float:
    """The share of ``tokens`` covered by a window whose hash is in ``seen`` (sorted)."""
    hit = found_in(window_hashes(tokens), seen)
    if not hit.any():
        return 0.0
    covered = np.convolve(hit.astype(np.int32), np.ones(WINDOW, dtype=np.int32))[: len(tokens)] > 0
    return float(covered.sum()) / len(tokens)
