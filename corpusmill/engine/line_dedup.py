"""Line dedup across the whole run, by shuffle (no worker holds every hash).

1. Every document emits ``(line_hash, (doc_id, line_index))`` for its lines.
2. ``GroupByKey`` on the hash: each group is every occurrence of one normalized line, anywhere in the
   run. A group of one is unique; otherwise :func:`lines_to_remove` picks the occurrences to delete
   (all of them, or all but the first by document id). Runners stream large groups.
3. The removals are grouped per document id and joined back to the documents (``CoGroupByKey``),
   giving ``(doc, line indexes to remove)`` for the ``line_dedup`` step.

The same shuffle serves any "keep one occurrence" rule: pass ``occurrences_fn(doc) -> (hash, (doc_id,
index))`` pairs and ``choose_fn(occurrences, keep_mode) -> occurrences to remove`` (sentence spans and
whole-document hashes in corpusmill.dedup.spans / corpusmill.dedup.exact; newest page per URL in C4).
"""

from __future__ import annotations

import apache_beam as beam

from corpusmill.dedup.lines import line_occurrences, lines_to_remove


class FindDuplicateLines(beam.PTransform):
    """Documents -> ``(doc, frozenset of line indexes to remove)`` for every document."""

    def __init__(self, keep_mode: str = "none", occurrences_fn=line_occurrences, choose_fn=lines_to_remove):
        super().__init__()
        self.keep_mode = keep_mode
        self.occurrences_fn = occurrences_fn
        self.choose_fn = choose_fn

    def expand(self, docs):
        keep_mode, choose_fn = self.keep_mode, self.choose_fn

        def removals(item):
            _hash, occurrences = item
            for doc_id, index in choose_fn(occurrences, keep_mode):
                yield doc_id, index

        by_id = docs | "KeyById" >> beam.Map(lambda d: (d.id, d))
        remove = (
            docs
            | "LineHashes" >> beam.FlatMap(self.occurrences_fn)
            | "GroupByLine" >> beam.GroupByKey()
            | "Removals" >> beam.FlatMap(removals)
        )

        def join(item):
            _doc_id, grouped = item
            indexes = frozenset(grouped["remove"])
            for doc in grouped["doc"]:
                yield doc, indexes

        return (
            {"doc": by_id, "remove": remove}
            | "JoinRemovals" >> beam.CoGroupByKey()
            | "AttachRemovals" >> beam.FlatMap(join)
        )
