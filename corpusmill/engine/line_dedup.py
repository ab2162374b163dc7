"""Marking duplicates by shuffle, with memory bounded per key (no group of occurrences is ever held).

``MarkDuplicates(occurrences_fn, keep=...)`` turns documents into ``(doc, marks)`` pairs:

1. Every document emits ``(key, (doc_id, mark))`` occurrences (``occurrences_fn``): a line hash in a
   scope, a sentence span, a URL, a content hash.
2. ``GroupByKey`` on the key, and the values are *streamed* through
   :func:`corpusmill.dedup.lines.repeated_occurrences`: a key seen in one distinct occurrence emits
   nothing; otherwise every occurrence becomes a mark ``(doc_id, mark)``. It holds one value, so a line in
   a million documents costs no more worker memory than a line in two (runners page large groups).
3. With ``keep=rank`` one occurrence per repeated key is spared: a combiner (O(1) state per key) finds the
   occurrence of smallest ``rank(value)`` and emits it as an *unmark*.
4. Marks and unmarks are joined to the documents (``CoGroupByKey``; a document's marks are bounded by its
   own size), giving ``(doc, frozenset of marks)``. Documents are keyed by ``(id, location)``, not by id
   alone, so two documents that share an id (two inputs with the same JSON id) never get each other's
   marks; in the values ``doc_id`` stands for that key. Two documents with the same id *and* location
   (one record given twice) cannot be told apart: the first (by text) is kept, the others become
   dead letters ``duplicate_id`` at the next step.

Users: the CCNet line dedup (marks are line hashes; ``distinct`` is the document id, so a line repeated
inside one document only is not a duplicate), C4's sentence spans and newest page per URL, GitHub's
exact file dedup, the CCNet cross-dump document dedup.
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


class _Smallest(beam.CombineFn):
    """Per key: the value of smallest rank, and whether a second distinct value exists. O(1) state."""

    def __init__(self, rank: Callable, distinct: Callable):
        self.rank = rank
        self.distinct = distinct

    def create_accumulator(self):
        return None, None, False  # (best value, one distinct key seen, a second distinct key seen)

    def add_input(self, acc, value):
        return self.merge_accumulators([acc, (value, self.distinct(value), False)])

    def merge_accumulators(self, accumulators):
        best, key, many = None, None, False
        for b, k, m in accumulators:
            if b is None:
                continue
            many = many or m or (key is not None and k != key)
            if key is None:
                key = k
            if best is None or self.rank(b) < self.rank(best):
                best = b
        return best, key, many

    def extract_output(self, acc):
        return acc


def _count_repeated(item, distinct):
    """``(occurrences, key, smallest document key)`` of a key in two or more distinct occurrences (values
    streamed, O(1) memory)."""
    key, values = item
    n, first, smallest, many = 0, None, None, False
    for value in values:
        n += 1
        d = distinct(value)
        many = many or (first is not None and d != first)
        first = d if first is None else first
        smallest = value[0] if smallest is None or value[0] < smallest else smallest
    if many:
        yield n, key, smallest


class MarkDuplicates(beam.PTransform):
    """Documents -> ``(doc, frozenset of marks)`` for every document (see the module docstring).

    ``keep``: None marks every occurrence of a repeated key; a function ``rank(value)`` spares the
    occurrence of smallest rank. ``distinct(value)``: what makes two occurrences different (default the
    whole ``(doc_id, mark)`` value).
    """

    def __init__(self, occurrences_fn: Callable, keep: Optional[Callable] = None,
                 distinct: Callable[[Hashable], Hashable] = _whole, top: int = 0):
        super().__init__()
        self.occurrences_fn = occurrences_fn
        self.keep = keep
        self.distinct = distinct
        # top > 0: after expand, ``self.top_keys`` is a one-element PCollection, the list of the ``top``
        # keys in most occurrences, as (occurrences, key, the smallest document key that has it)
        self.top = top
        self.top_keys = None

    def expand(self, docs):
        distinct = self.distinct

        def marks(item):
            _key, values = item
            for doc_id, mark in repeated_occurrences(values, distinct):
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
            self.top_keys = (grouped | "CountRepeated" >> beam.FlatMap(_count_repeated, distinct)
                             | "TopRepeated" >> beam.combiners.Top.Of(self.top))
        if self.keep is not None:
            def unmark(item):
                _key, (best, _k, many) = item
                if many:
                    yield best

            tagged["unmark"] = (
                occurrences
                | "Keeper" >> beam.CombinePerKey(_Smallest(self.keep, distinct))
                | "Unmarks" >> beam.FlatMap(unmark)
            )

        def join(item):
            _doc_id, grouped = item
            found = frozenset(grouped["mark"]) - frozenset(grouped.get("unmark", ()))
            docs = list(grouped["doc"])
            if not docs:
                return
            if len(docs) > 1:  # the same id at the same location: whose marks are these? neither's: the
                docs.sort(key=lambda d: (d.text, d.to_json()))  # first copy keeps them, the others are dead letters
                for other in docs[1:]:
                    yield Skipped(printable(other.location), DUPLICATE_ID,
                                  f"document id {other.id!r} at {other.location!r} is given twice; "
                                  f"make ids (or locations) unique")
            yield docs[0], found

        return tagged | "JoinMarks" >> beam.CoGroupByKey() | "AttachMarks" >> beam.FlatMap(join)
