"""The one stable hash: the first 8 bytes of SHA-1, as an unsigned 64-bit integer (and, for hashes
that go through a shuffle by the million, the same bytes as a signed one).

Used wherever an order or a sample must be the same on every run and runner: output shard
assignment, dropped-document samples, held-out splits, exact dedup keys, the mixer's draws.
Python's ``hash()`` is salted per process, so it is never used for any of these.
"""

from __future__ import annotations

import hashlib


def stable_hash(text: str) -> int:
    """SHA-1 of the UTF-8 text (lone surrogates kept as they are), first 8 bytes, big-endian."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()[:8], "big")


def stable_hash_signed(text: str) -> int:
    """The same 8 bytes read as a *signed* 64-bit integer: for hashes that travel through a shuffle by
    the million (line and sentence-span hashes). Beam's coders write an int64 natively and pickle any
    wider int, which is half of all unsigned values."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()[:8], "big", signed=True)


def fmix64(x):
    """MurmurHash3's 64-bit finalizer over a numpy uint64 array (wrapping arithmetic): spreads every input
    bit over the output (MinHash shingles, the contamination check's windows, line-dedup buckets)."""
    import numpy as np

    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(33))
        x = x * np.uint64(0xFF51AFD7ED558CCD)
        x = x ^ (x >> np.uint64(33))
        x = x * np.uint64(0xC4CEB9FE1A85EC53)
        return x ^ (x >> np.uint64(33))
