"""Marking duplicates by shuffle, with memory bounded per key (no group of occurrences is ever held).

``MarkDuplicates(occurrences_fn, keep=...)`` turns documents into ``(doc, marks)`` pairs:

1. Every document emits ``(key, (doc_id, mark))`` occurrences (``occurrences_fn``): a line hash in a
   scope, a sentence span, a URL, a content hash.
2. ``GroupByKey`` on the key, and the values are *streamed* through
   :func:`corpusmill.dedup.lines.repeated_occurrences`: a key seen in one distinct occurrence emits
   nothing; otherwise every occurrence becomes a mark ``(doc_id, mark)`` (with ``min_docs``: a key in
   at least that many distinct occurrences). It holds ``min_docs`` values, so a line in a million
   documents costs no more worker memory than a line in two (runners page large groups).
3. With ``keep=rank`` one occurrence per repeated key is spared: the key's values are read twice (a
   grouped value list is re-iterable), once to find the occurrence of smallest ``rank(value)``, once to
   mark the others, each mark naming the spared document when asked (``name_kept``).
4. Marks are joined to the documents (``CoGroupByKey``; a document's marks are bounded by its
   own size), giving ``(doc, frozenset of marks)``. Documents are keyed by ``(id, location)``, not by id
   alone, so two documents that share an id (two inputs with the same JSON id) never get each other's
   marks; in the values ``doc_id`` stands for that key. Two documents with the same id *and* location
   (one record given twice) cannot be told apart: the first (by text) is kept, the others become
   dead letters ``duplicate_id`` at the next step.

Users: C4's sentence spans and newest page per URL, GitHub's exact file dedup. The documents cross its
shuffles (the join of step 4); the CCNet stage and ``corpusmill filter`` decide on keys alone instead
(:mod:`corpusmill.engine.keyed`; docs/ccnet.md, "Passes").
"""

from __future__ import annotations

from typing import Callable, Hashable, Optional

import apache_beam as beam

from corpusmill.core.inputs import Skipped
from corpusmill.core.text import printable
from corpusmill.dedup.lines import repeated_occurrences

DUPLICATE_ID = "duplicate_id"


def _whole(value):
    return value


def by_value(value):
    """``keep=by_value``: spare the smallest ``(doc_id, mark)``: the first copy by document id."""
    return value


def _keeper_marks(values, rank: Callable, distinct: Callable, name_kept: bool):
    """One key's marks when one occurrence is spared: the values are read twice (a grouped value list is
    re-iterable on every runner, and paged, so memory stays O(1)): first for the occurrence of smallest
    ``rank`` and whether a second distinct occurrence exists, then to mark every other one. With
    ``name_kept`` a mark is ``(mark, (kept doc id, kept location))``: the copy it duplicates."""
    best, first, many = None, None, False
    for value in values:
        d = distinct(value)
        if first is None:
            first = d
        elif d != first:
            many = True
        if best is None or rank(value) < rank(best):
            best = value
    if not many:
        return
    for doc_key, mark in values:
        if (doc_key, mark) != best:
            yield doc_key, ((mark, best[0]) if name_kept else mark)


def _count_repeated(item, distinct, min_docs: int = 2):
    """``(occurrences, key, smallest document key)`` of a key in ``min_docs`` or more distinct occurrences
    (values streamed, O(min_docs) memory)."""
    key, values = item
    n, seen, smallest = 0, set(), None
    for value in values:
        n += 1
        if len(seen) < min_docs:
            seen.add(distinct(value))
        smallest = value[0] if smallest is None or value[0] < smallest else smallest
    if len(seen) >= min_docs:
        yield n, key, smallest


class MarkDuplicates(beam.PTransform):
    """Documents -> ``(doc, frozenset of marks)`` for every document (see the module docstring).

    ``keep``: None marks every occurrence of a repeated key; a function ``rank(value)`` spares the
    occurrence of smallest rank. ``distinct(value)``: what makes two occurrences different (default the
    whole ``(doc_id, mark)`` value). ``name_kept`` (with ``keep``): each mark also names the spared
    occurrence's document, ``(mark, (id, location))``, so a dropped copy says what it duplicates.
    """

    def __init__(
        self,
        occurrences_fn: Callable,
        keep: Optional[Callable] = None,
        distinct: Callable[[Hashable], Hashable] = _whole,
        top: int = 0,
        name_kept: bool = False,
        min_docs: int = 2,
    ):
        super().__init__()
        if min_docs > 2 and keep is not None:
            raise ValueError("min_docs > 2 marks every occurrence; it does not go with keep")
        self.min_docs = min_docs
        self.name_kept = name_kept
        self.occurrences_fn = occurrences_fn
        self.keep = keep
        self.distinct = distinct
        # top > 0: after expand, ``self.top_keys`` is a one-element PCollection, the list of the ``top``
        # keys in most occurrences, as (occurrences, key, the smallest document key that has it)
        self.top = top
        self.top_keys = None

    def expand(self, docs):
        distinct = self.distinct

        keep, name_kept, min_docs = self.keep, self.name_kept, self.min_docs

        def marks(item):
            _key, values = item
            if keep is not None:
                yield from _keeper_marks(values, keep, distinct, name_kept)
                return
            for doc_id, mark in repeated_occurrences(values, distinct, min_docs):
                yield doc_id, mark

        occurrences_fn = self.occurrences_fn

        def occurrences_of(item):  # the document's own key in place of its id (ids may repeat)
            key, doc = item
            for occ_key, (_doc_id, mark) in occurrences_fn(doc):
                yield occ_key, (key, mark)

        keyed = docs | "KeyByDocument" >> beam.Map(lambda d: ((d.id, d.location), d))
        occurrences = keyed | "Occurrences" >> beam.FlatMap(occurrences_of)
        grouped = occurrences | "GroupByKey" >> beam.GroupByKey()
        tagged = {"doc": keyed, "mark": grouped | "Marks" >> beam.FlatMap(marks)}
        if self.top:
            self.top_keys = (
                grouped
                | "CountRepeated" >> beam.FlatMap(_count_repeated, distinct, min_docs)
                | "TopRepeated" >> beam.combiners.Top.Of(self.top)
            )

        def join(item):
            _doc_id, grouped = item
            found = frozenset(grouped["mark"])
            docs = list(grouped["doc"])
            if not docs:
                return
            if len(docs) > 1:  # the same id at the same location: whose marks are these? neither's: the
                docs.sort(key=lambda d: (d.text, d.to_json()))  # first copy keeps them, the others are dead letters
                for other in docs[1:]:
                    yield Skipped(
                        printable(other.location),
                        DUPLICATE_ID,
                        f"document id {other.id!r} at {other.location!r} is given twice; "
                        f"make ids (or locations) unique",
                    )
            yield docs[0], found

        return tagged | "JoinMarks" >> beam.CoGroupByKey() | "AttachMarks" >> beam.FlatMap(join)
