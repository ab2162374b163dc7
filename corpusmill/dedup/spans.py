"""Three-sentence-span deduplication across the corpus (the C4 paper's rule; datatrove's SentenceDedup
with ``n_sentences=3``), the pure part. The Beam part is the shared shuffle in
:class:`corpusmill.engine.line_dedup.FindDuplicateLines` with :func:`span_occurrences`.

A document's sentences (:func:`corpusmill.filters.c4.sentence_spans`, line by line) are hashed in every
window of ``n`` consecutive sentences (each sentence normalized as for line dedup: lowercase, digits ->
0, punctuation removed). Every window hash seen more than once in the corpus keeps its first occurrence
(smallest document id, then position) and the sentences of every other occurrence are removed.
"""

from __future__ import annotations

from typing import AbstractSet, Iterable, List, Optional, Tuple

from corpusmill.core.document import Document
from corpusmill.core.hashing import stable_hash_signed
from corpusmill.filters.base import Filter, Verdict, drop, keep
from corpusmill.filters.c4 import sentence_spans
from corpusmill.filters.normalize import normalize_for_dedup


def doc_sentences(text: str) -> List[Tuple[int, int, int]]:
    """``(line index, start, end)`` of every sentence of ``text``, in order."""
    out = []
    for index, line in enumerate(text.split("\n")):
        out.extend((index, start, end) for start, end in sentence_spans(line))
    return out


def span_hashes(text: str, n: int = 3) -> List[Optional[int]]:
    """One 64-bit hash per window of ``n`` sentences (None for a window with no content)."""
    lines = text.split("\n")
    norm = [normalize_for_dedup(lines[i][s:e]) for i, s, e in doc_sentences(text)]
    out: List[Optional[int]] = []
    for i in range(len(norm) - n + 1):
        window = norm[i : i + n]
        if not all(window):
            out.append(None)
            continue
        out.append(stable_hash_signed("\n".join(window)))
    return out


def span_occurrences(doc: Document, n: int = 3) -> Iterable[Tuple[int, Tuple[str, int]]]:
    """``(span hash, (doc id, span index))`` for every window of ``n`` sentences."""
    for index, h in enumerate(span_hashes(doc.text, n)):
        if h is not None:
            yield h, (doc.id, index)


def remove_spans(text: str, span_indexes: AbstractSet[int], n: int = 3) -> Tuple[str, int, int]:
    """Text without the sentences of the given windows; returns (text, sentences left, sentences removed)."""
    sentences = doc_sentences(text)
    gone = {i + k for i in span_indexes for k in range(n)}
    lines = text.split("\n")
    rebuilt: List[List[str]] = [[] for _ in lines]
    for i, (line, start, end) in enumerate(sentences):
        if i not in gone:
            rebuilt[line].append(lines[line][start:end])
    out = "\n".join(" ".join(parts) for parts in rebuilt if parts)
    removed = len(gone & set(range(len(sentences))))
    return out, len(sentences) - removed, removed


class RemoveDuplicateSpans(Filter):
    """The ``span_dedup`` step: takes ``(doc, span indexes to remove)``; drops ``too_few_sentences`` when
    fewer than ``min_sentences`` are left (the builder re-checks its 3-sentence minimum after dedup)."""

    name = "span_dedup"

    def __init__(self, n: int = 3, min_sentences: int = 3):
        self.n = n
        self.min_sentences = min_sentences

    def __call__(self, item: Tuple[Document, Optional[AbstractSet[int]]]) -> Verdict:
        doc, indexes = item
        if not indexes:
            return keep(doc)
        text, left, removed = remove_spans(doc.text, indexes, self.n)
        doc = doc.replace(text=text).annotate(sentences_removed=removed)
        if left < self.min_sentences:
            return drop("too_few_sentences", doc)
        return keep(doc)
