"""Exact deduplication of whole documents, the pure part (the shuffle is
:class:`corpusmill.engine.line_dedup.FindDuplicateLines` with :func:`content_occurrence`).

Every document emits one ``(hash of its text, (doc id, 0))``; of the documents sharing a hash, the one
with the smallest id stays and the others get a non-empty removal set, which :class:`DropDuplicates`
turns into a drop. The same filter serves any "one per key" rule whose shuffle marks the losers (the
C4 stage uses it for the newest page per URL).
"""

from __future__ import annotations

import math
from typing import AbstractSet, Iterable, List, Optional, Tuple

from corpusmill.core.document import Document
from corpusmill.core.hashing import stable_hash
from corpusmill.core.text import printable
from corpusmill.filters.base import Filter, Verdict, drop, keep


def content_hash(text: str) -> int:
    """The stable hash of the exact text."""
    return stable_hash(text)


def content_occurrence(doc: Document) -> Iterable[Tuple[int, Tuple[str, int]]]:
    yield content_hash(doc.text), (doc.id, 0)


def newest_content_occurrence(doc: Document) -> Iterable[Tuple[int, Tuple[str, float]]]:
    """``(hash of the text, (doc id, rank))`` where a smaller rank is a newer crawl (the CCNet stage's
    cross-dump dedup keeps the newest copy of a text; ties: the smallest id)."""
    from corpusmill.filters.c4 import timestamp_seconds

    seconds = timestamp_seconds(doc.timestamp)
    yield content_hash(doc.text), (doc.id, -seconds if seconds is not None else math.inf)


def duplicate_rows(keys: List[bytes], ranks, ids: List[str], locations: List[str], refs) -> List[Tuple[int, int]]:
    """ "One copy per key" decided on keys alone: for rows ``(key, rank, id, location, ref)``, the pairs
    ``(loser row, kept row)``: of the rows sharing a non-empty key, the one of smallest ``(rank, id,
    location)`` is kept (rank: a newer crawl is smaller, so the newest copy; ties: the smallest id), every
    other loses to it. An empty key is never a duplicate."""
    from collections import Counter

    counts = Counter(keys)
    order = sorted(
        (i for i in range(len(keys)) if keys[i] and counts[keys[i]] > 1),
        key=lambda i: (keys[i], ranks[i], ids[i], locations[i], refs[i]),
    )
    out = []
    kept = -1
    for j, i in enumerate(order):
        if j and keys[i] == keys[order[j - 1]]:
            out.append((i, kept))
        else:
            kept = i
    return out


class DropDuplicates(Filter):
    """Takes ``(doc, removal set)``: drops ``reason`` when the set is non-empty (a better copy exists).
    When the marks name the kept copy (``MarkDuplicates(..., name_kept=True)``: ``(mark, (id, location))``)
    the dropped document says which: ``duplicate_of`` (its id) and ``duplicate_of_location``."""

    clean_output = True  # cuts, joins or annotates clean text (Filter.clean_output)

    def __init__(self, name: str = "exact_dedup", reason: str = "duplicate_content"):
        self.name = name
        self.reason = reason

    def __call__(self, item: Tuple[Document, Optional[AbstractSet]]) -> Verdict:
        doc, marks = item
        if not marks:
            return keep(doc)
        kept = sorted(m[1] for m in marks if isinstance(m, tuple) and len(m) == 2 and isinstance(m[1], tuple))
        if kept:
            kept_id, kept_location = kept[0]
            doc = doc.annotate(duplicate_of=kept_id, duplicate_of_location=printable(kept_location))
        return drop(self.reason, doc)
