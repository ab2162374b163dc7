"""Line-level deduplication, the pure part (the Beam part is corpusmill.engine.line_dedup).

CCNet removes every line (paragraph) whose normalized hash occurs more than once in the corpus: that
strips navigation, cookie banners, footers and other boilerplate that survives HTML extraction.
corpusmill counts hashes across the whole run with a shuffle, then each document gets the indexes of
its lines to remove and :class:`RemoveDuplicateLines` rebuilds its text.
"""

from __future__ import annotations

from typing import AbstractSet, Iterable, List, Optional, Tuple

from corpusmill.core.document import Document
from corpusmill.filters.base import Filter, Verdict, drop, keep
from corpusmill.filters.normalize import line_hashes

KEEP_MODES = ("none", "first")


def line_occurrences(doc: Document) -> Iterable[Tuple[int, Tuple[str, int]]]:
    """``(hash, (doc_id, line_index))`` for every line with content."""
    for index, h in enumerate(line_hashes(doc.text)):
        if h is not None:
            yield h, (doc.id, index)


def lines_to_remove(occurrences: Iterable[Tuple[str, int]], keep_mode: str) -> List[Tuple[str, int]]:
    """Given every (doc_id, line_index) sharing one hash, the ones to remove.

    ``none``: all of them when there is more than one (cc_net's behaviour).
    ``first``: all but the smallest (doc_id, line_index), so one copy survives, always the same one.
    """
    occ = list(occurrences)
    if len(occ) < 2:
        return []
    if keep_mode == "none":
        return occ
    if keep_mode == "first":
        first = min(occ)
        return [o for o in occ if o != first]
    raise ValueError(f"unknown dedup keep mode {keep_mode!r}; use one of {', '.join(KEEP_MODES)}")


def remove_lines(text: str, indexes: AbstractSet[int]) -> str:
    if not indexes:
        return text
    return "\n".join(line for i, line in enumerate(text.split("\n")) if i not in indexes)


class RemoveDuplicateLines(Filter):
    """The ``line_dedup`` step: takes ``(doc, line indexes to remove)``; drops ``too_short`` docs.

    Records ``original_nlines``/``original_length`` (before dedup) and ``nlines``/``length`` after, as
    cc_net does.
    """

    name = "line_dedup"

    def __init__(self, min_length: int = 300):
        self.min_length = min_length

    def __call__(self, item: Tuple[Document, Optional[AbstractSet[int]]]) -> Verdict:
        doc, indexes = item
        text = remove_lines(doc.text, indexes or frozenset())
        nlines = text.count("\n") + 1 if text else 0
        doc = doc.replace(text=text).annotate(
            original_nlines=doc.text.count("\n") + 1, original_length=len(doc.text),
            nlines=nlines, length=len(text))
        if len(text) < self.min_length:
            return drop("too_short", doc)
        return keep(doc)
