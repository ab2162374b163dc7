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

from typing import AbstractSet, Callable, Hashable, Iterable, Iterator, List, Optional, Tuple

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


def line_occurrences(doc: Document, scope: str = "", normalize: str = "ccnet"
                     ) -> Iterator[Tuple[Tuple[str, int], Tuple[str, int]]]:
    """``((scope, hash), (doc_id, hash))`` once per distinct line hash of the document."""
    for h in dict.fromkeys(line_hashes(doc.text, normalize)):
        yield (scope, h), (doc.id, h)


def repeated_occurrences(values: Iterable[Hashable], distinct: Callable[[Hashable], Hashable] = lambda v: v,
                         min_count: int = 2) -> Iterator[Hashable]:
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


def remove_lines(text: str, remove: AbstractSet[int], normalize: str = "ccnet") -> str:
    """cc_net's ``finalize_doc``: drop every line whose hash is in ``remove``, and every later copy of a
    line already kept in this document."""
    lines = text.split("\n")
    return "\n".join(line for line, kept in zip(lines, kept_lines(text, remove, normalize)) if kept)


def kept_lines(text: str, remove: AbstractSet[int], normalize: str = "ccnet") -> List[bool]:
    """For each line of ``text``, whether :func:`remove_lines` keeps it."""
    seen = set()
    out = []
    for h in line_hashes(text, normalize):
        out.append(h not in seen and h not in remove)
        seen.add(h)
    return out


class RemoveDuplicateLines(Filter):
    """The ``line_dedup`` step: takes ``(doc, line hashes to remove)``; drops ``too_short`` docs.

    Records ``original_nlines``/``original_length`` (before dedup) and ``nlines``/``length`` after, as
    cc_net does.
    """

    name = "line_dedup"
    scores = ("length",)  # judged by the length after the removal (annotated), not the text it drops with

    def __init__(self, min_length: int = 300, normalize: str = "ccnet"):
        if normalize not in DEDUP_NORMALIZERS:
            raise ValueError(f"unknown dedup normalization {normalize!r}; use one of {', '.join(DEDUP_NORMALIZERS)}")
        self.min_length = min_length
        self.normalize = normalize

    def thresholds(self):
        return {"length": self.min_length}

    def __call__(self, item: Tuple[Document, Optional[AbstractSet[int]]]) -> Verdict:
        doc, remove = item
        original = doc
        text = remove_lines(doc.text, remove or frozenset(), self.normalize)
        nlines = text.count("\n") + 1 if text else 0
        doc = doc.replace(text=text).annotate(
            original_nlines=doc.text.count("\n") + 1, original_length=len(doc.text),
            nlines=nlines, length=len(text))
        if not text or len(text) < self.min_length:  # cc_net drops a document left with no line
            # the record keeps the text as it came, with the lines dedup removed, so a person can judge it
            mask = kept_lines(original.text, remove or frozenset(), self.normalize)
            return drop("too_short", doc.replace(text=original.text).annotate(
                removed_lines=[i for i, k in enumerate(mask) if not k]))
        return keep(doc)
