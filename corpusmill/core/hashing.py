"""The one stable hash: the first 8 bytes of SHA-1, as an unsigned 64-bit integer.

Used wherever an order or a sample must be the same on every run and runner: output shard
assignment, dropped-document samples, held-out splits, exact dedup keys, the mixer's draws.
Python's ``hash()`` is salted per process, so it is never used for any of these.
"""

from __future__ import annotations

import hashlib


def stable_hash(text: str) -> int:
    """SHA-1 of the UTF-8 text (lone surrogates kept as they are), first 8 bytes, big-endian."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()[:8], "big")
