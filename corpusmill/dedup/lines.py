"""Line-level deduplication as cc_net does it, the pure part (the shuffle is corpusmill.engine.line_dedup).

cc_net's rule, within one *scope* (a group of shards of one snapshot by default):

- every line (paragraph) is hashed in its dedup-normalized form (:func:`line_hashes`);
- a hash that occurs in two or more different documents of the scope is removed from all of them
  (navigation, cookie banners, footers: boilerplate that survives extraction); Llama 3's variant removes
  a line only when it is in more than 6 documents of its bucket (``--line-max-docs 6``);
- inside one document, a line repeated only there keeps its first copy (cc_net's ``finalize_doc``).

``--dedup-keep first`` is corpusmill's variant: of a repeated line, the document with the smallest id
keeps its copy. The shuffle gives each document the set of its line hashes to remove; :class:`RemoveDuplicateLines`
rebuilds the text.
"""

from __future__ import annotations

from typing import AbstractSet, Callable, Hashable, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from corpusmill.core.document import Document
from corpusmill.filters.base import Filter, Verdict, drop, keep
from corpusmill.filters.normalize import DEDUP_NORMALIZERS, line_hashes

KEEP_MODES = ("none", "first")
SCOPES = ("group", "snapshot", "run")


def scope_of(doc: Document, scope: str, group_size: int) -> str:
    """The dedup scope a document belongs to: its snapshot and shard group, its snapshot, or the run."""
    if scope == "run":
        return ""
    dump = doc.metadata.get("dump", "")
    if scope == "snapshot":
        return dump
    return f"{dump}/{int(doc.metadata.get('shard', 0)) // group_size}"


def line_occurrences(
    doc: Document, scope: str = "", normalize: str = "ccnet"
) -> Iterator[Tuple[Tuple[str, int], Tuple[str, int]]]:
    """``((scope, hash), (doc_id, hash))`` once per distinct line hash of the document."""
    for h in dict.fromkeys(line_hashes(doc.text, normalize)):
        yield (scope, h), (doc.id, h)


def repeated_occurrences(
    values: Iterable[Hashable], distinct: Callable[[Hashable], Hashable] = lambda v: v, min_count: int = 2
) -> Iterator[Hashable]:
    """Every value of one key, streamed, once ``min_count`` distinct ones were seen (cc_net: 2, a line in
    another document; Llama 3: 7, a line in more than 6); nothing for a key seen fewer times.

    Memory is O(min_count) whatever the number of values: the first values are held until the
    ``min_count``-th distinct one arrives, then everything is passed through. This is how a line in a
    million documents is handled.
    """
    held: list = []
    keys: set = set()
    released = False
    for value in values:
        if released:
            yield value
            continue
        key = distinct(value)
        if key in keys:  # the same occurrence again (a duplicated id): held with the first
            continue
        keys.add(key)
        held.append(value)
        if len(keys) >= min_count:
            released = True
            yield from held
            held = []


def repeated_line_groups(
    hashes: np.ndarray, refs: np.ndarray, scopes: np.ndarray, min_docs: int = 2, keep_first: bool = False
):
    """cc_net's rule decided on keys alone. Given every occurrence ``(scope, line hash, document ref)``
    of one hash range (a document gives each of its distinct line hashes once), returns

    - the marks: ``(refs, hashes)`` of the occurrences to remove (a hash in ``min_docs`` or more documents
      of its scope is removed from all of them; with ``keep_first``, from all but the first document);
    - the repeated hashes: ``(documents, scope, hash, first ref)`` arrays, one entry per such hash.

    Vectorized (one sort); memory is the occurrences' 24 bytes each."""
    hashes, refs, scopes = (np.asarray(a, dtype=np.int64) for a in (hashes, refs, scopes))
    n = len(hashes)
    empty = np.zeros(0, dtype=np.int64)
    if n == 0:
        return (empty, empty), (empty, empty, empty, empty)
    order = np.lexsort((refs, hashes, scopes))
    h, r, s = hashes[order], refs[order], scopes[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = (h[1:] != h[:-1]) | (s[1:] != s[:-1])
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, n))
    repeated = sizes >= min_docs
    marked = repeated[np.cumsum(new) - 1]
    if keep_first:
        marked[starts] = False
    return (r[marked], h[marked]), (sizes[repeated], s[starts][repeated], h[starts][repeated], r[starts][repeated])


def remove_lines(
    text: str, remove: AbstractSet[int], normalize: str = "ccnet", hashes: Optional[Sequence[int]] = None
) -> str:
    """cc_net's ``finalize_doc``: drop every line whose hash is in ``remove``, and every later copy of a
    line already kept in this document. ``hashes``: the lines' hashes, when they are known already."""
    lines = text.split("\n")
    return "\n".join(line for line, kept in zip(lines, kept_lines(text, remove, normalize, hashes)) if kept)


def kept_lines(
    text: str, remove: AbstractSet[int], normalize: str = "ccnet", hashes: Optional[Sequence[int]] = None
) -> List[bool]:
    """For each line of ``text``, whether :func:`remove_lines` keeps it."""
    seen = set()
    out = []
    for h in line_hashes(text, normalize) if hashes is None else hashes:
        out.append(h not in seen and h not in remove)
        seen.add(h)
    return out


class RemoveDuplicateLines(Filter):
    """The ``line_dedup`` step: takes ``(doc, line hashes to remove)``; drops ``too_short`` docs.

    Records ``original_nlines``/``original_length`` (before dedup) and ``nlines``/``length`` after, as
    cc_net does.
    """

    clean_output = True  # cuts, joins or annotates clean text (Filter.clean_output)

    name = "line_dedup"
    scores = ("length",)  # judged by the length after the removal (annotated), not the text it drops with

    def __init__(self, min_length: int = 300, normalize: str = "ccnet"):
        if normalize not in DEDUP_NORMALIZERS:
            raise ValueError(f"unknown dedup normalization {normalize!r}; use one of {', '.join(DEDUP_NORMALIZERS)}")
        self.min_length = min_length
        self.normalize = normalize

    def thresholds(self):
        return {"length": self.min_length}

    def __call__(self, item: Tuple) -> Verdict:
        """``item``: ``(doc, line hashes to remove)``, or ``(doc, to remove, the hashes of its lines)``."""
        doc, remove = item[0], item[1] or frozenset()
        hashes = item[2].tolist() if len(item) > 2 and item[2] is not None else line_hashes(doc.text, self.normalize)
        original = doc
        mask = kept_lines(doc.text, remove, self.normalize, hashes)
        text = "\n".join(line for line, kept in zip(doc.text.split("\n"), mask) if kept)
        nlines = text.count("\n") + 1 if text else 0
        doc = doc.replace(text=text).annotate(
            original_nlines=doc.text.count("\n") + 1, original_length=len(doc.text), nlines=nlines, length=len(text)
        )
        if not text or len(text) < self.min_length:  # cc_net drops a document left with no line
            # the record keeps the text as it came, with the lines dedup removed, so a person can judge it
            return drop(
                "too_short",
                doc.replace(text=original.text).annotate(removed_lines=[i for i, k in enumerate(mask) if not k]),
            )
        return keep(doc)
