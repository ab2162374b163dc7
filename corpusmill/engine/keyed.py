"""Keyed steps decided on keys alone: line dedup, URL / text / near-duplicate dedup (principle 6).

A pass writes, beside each piece, the keys of the documents it kept (:mod:`corpusmill.engine.passes`),
already cut into ``partitions`` hash ranges (a *partitioned file*: an index, then one slice per range).
A keyed step runs one task per range: it reads its slice of every key file, decides on keys alone, and
sends each piece its *marks*, which the next pass applies while it streams the piece:

- line dedup (:class:`FindRepeatedLines`): each distinct line of a document is 16 bytes, ``(line hash,
  ref)``; the document's scope follows from its piece. A hash in ``min_docs`` documents of its scope is
  removed from all of them (:func:`corpusmill.dedup.lines.repeated_line_groups`); marks ``(ref, hash)``.
- URL and text dedup (:class:`FindDocDuplicates`): each document is one row ``(ref, id, location, rank,
  URL key, text key, band keys)`` (16-byte SHA-1 prefixes; about 100 bytes with the names); of the rows
  sharing a key the newest is kept (:func:`corpusmill.dedup.exact.duplicate_rows`). The text dedup sees
  only what the URL dedup kept: each URL task writes its survivors, cut by the text key, for the text tasks.
- near-duplicate dedup: the survivors' MinHash band keys, ``(band key, ref)``, cut by band key; each task
  joins its buckets' members as a star into candidate pairs; only the candidates' shingle sets are read
  back from their pieces to verify each pair by exact Jaccard; connected components
  (:mod:`corpusmill.engine.fuzzy_dedup`) give each member its cluster's first document.

So the keys never pass through Beam's shuffle (on the in-memory runner a GroupByKey holds about four
copies of what it groups): only file names, the marks (one per line or document removed) and the
candidate pairs are Beam elements. A task holds its range of the keys: a run's line keys / ``partitions``
* 16 bytes.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Dict, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np

from corpusmill.core.files import join
from corpusmill.core.steps import CONTENT, NEAR, TOKENS, URL  # noqa: F401 (the keyed kinds)
from corpusmill.engine.fuzzy_dedup import ClusterEdges, FuzzyParams, ScorePairs, stream_join
from corpusmill.engine.key_files import (  # noqa: F401 (moved; imported from here elsewhere)
    DOC_KEY_COLUMNS,
    PART_MAGIC,
    DocKeys,
    LineKeys,
    _band_slices,
    _cut,
    _doc_key_schema,
    _DocKeyWriter,
    _key16,
    _LineKeyWriter,
    _pairs,
    _pairs_slices,
    _row_slices,
    _slices_for,
    _table,
    bytes_table,
    doc_key_row,
    read_slice,
    table_bytes,
    write_partitioned,
)
from corpusmill.engine.passes import Item, Marked, line_ref, piece_name, piece_of, work_lines

LINES, DOCS, WANTED = "lines", "docs", "texts"
MARKS, REPEATED = "marks", "repeated"
TOP_LINES = 100  # repeated_lines.json: the lines in the most documents


def _marks_counted(items):
    """The marks a range task sends (``(piece, (kind, payload))``), their bytes counted: what crosses the
    shuffle to the next pass (corpusmill.engine.provenance reads the counter)."""
    from apache_beam.metrics import Metrics

    counter = Metrics.counter("corpusmill.shuffle", "mark_bytes")
    for piece, (kind, payload) in items:
        counter.inc(len(payload))
        yield piece, (kind, payload)


def _parts(pbegin, partitions: int, label: str):
    """One element per hash range (``Create`` spreads a list of several over the workers)."""
    return pbegin | f"{label}Ranges" >> beam.Create(list(range(partitions)))


# -- marks, as a pass applies them -----------------------------------------------------------------------
class PieceMarks:
    """One piece's marks (the payloads ``(kind, value)`` the keyed steps sent it), looked up by ref."""

    def __init__(self, index: int, payloads: Sequence[tuple]):
        self.index = index
        pairs = [_pairs(v) for k, v in payloads if k == LINES]
        lines = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
        order = np.argsort(lines[:, 0], kind="stable")
        self._line_refs, self._line_hashes = lines[order, 0], lines[order, 1]
        self._docs: Dict[int, Dict[str, tuple]] = {}
        self._wanted: Dict[int, List[Tuple[int, int]]] = {}
        self._scores: Dict[int, Tuple[float, float]] = {}  # ref -> (token-distribution score, cutoff)
        for kind, value in payloads:
            if kind == DOCS:
                for ref, step, kept_id, kept_location, size in json.loads(value):
                    self._docs.setdefault(ref, {})[step] = (kept_id, kept_location, size)
            elif kind == WANTED:
                for ref, scope, h in value:
                    self._wanted.setdefault(ref, []).append((scope, h))
            elif kind == TOKENS:
                for ref, score, cutoff in json.loads(value):
                    self._scores[ref] = (score, cutoff)
        self.texts_out: List[tuple] = []  # ((scope, hash), text) of the repeated lines this piece shows

    def input(self, marked: Marked, item: Item):
        """What the keyed step's filter takes for this document."""
        if marked.kind == LINES:
            lo, hi = np.searchsorted(self._line_refs, [item.ref, item.ref + 1])
            if item.ref in self._wanted:
                self._texts(item)
            return item.doc, frozenset(self._line_hashes[lo:hi].tolist()), item.hashes
        if marked.kind == TOKENS:
            return item.doc, self._scores.get(item.ref)
        mark = self._docs.get(item.ref, {}).get(marked.name)
        if marked.kind == NEAR:
            from corpusmill.dedup.fuzzy import UNCONVERGED

            if mark is None:
                return item.doc, None
            kept_id, kept_location, size = mark
            return item.doc, (UNCONVERGED if kept_id is None else ((kept_id, kept_location), size))
        return item.doc, (frozenset() if mark is None else frozenset({(0, (mark[0], mark[1]))}))

    def _texts(self, item: Item) -> None:
        from corpusmill.filters.normalize import line_hashes

        wanted = dict((h, scope) for scope, h in self._wanted[item.ref])
        hashes = item.hashes.tolist() if item.hashes is not None else line_hashes(item.doc.text)
        for line, h in zip(item.doc.text.split("\n"), hashes):
            if h in wanted:
                self.texts_out.append(((wanted.pop(h), h), line))


# -- line dedup ------------------------------------------------------------------------------------------
def _losers(payloads) -> List[int]:
    return [mark[0] for kind, value in payloads if kind == DOCS for mark in json.loads(value)]


def _filtered_line_keys(item, work_dir: str, partitions: int):
    """One piece's line keys without the documents an earlier keyed step of the pass drops: a new key file."""
    _index, sides = item
    losers = np.asarray(sorted(_losers(sides["drop"])), dtype=np.int64)
    for piece in sides["piece"]:
        if not len(losers):
            yield piece
            continue
        pairs = np.concatenate([_pairs(read_slice(piece.keys + LineKeys.suffix, p)) for p in range(partitions)])
        pairs = pairs[~np.isin(pairs[:, 1], losers)]
        keys = join(work_dir, "lines", piece_name(piece.index))
        write_partitioned(keys + LineKeys.suffix, _pairs_slices(pairs, partitions))
        yield dataclasses.replace(piece, keys=keys)


class FindRepeatedLines(beam.PTransform):
    """Pieces (with line key files) -> the line marks of every piece, and (``self.repeated``) the
    ``top`` repeated hashes as a one-element list of ``(documents, scope, hash, first ref)``.

    ``scopes``: the scope number of each piece (index = piece); ``drop``: marks of documents that earlier
    keyed steps of the same pass remove (their lines are not counted). ``bucket_docs`` N > 0: each scope
    is cut into ceil(documents / N) buckets (Llama 3's "bucket of 30M documents"), a document's bucket
    drawn by a hash of its ref; a line is counted within its bucket (:func:`bucket_scopes`)."""

    def __init__(
        self,
        scopes: Sequence[int],
        min_docs: int,
        keep_first: bool,
        partitions: int,
        work_dir: str,
        drop: Optional[beam.PCollection] = None,
        top: int = TOP_LINES,
        bucket_docs: int = 0,
    ):
        super().__init__()
        self.bucket_docs = bucket_docs
        self.scopes = np.asarray(scopes, dtype=np.int64)
        self.min_docs, self.keep_first, self.partitions, self.work_dir, self.drop, self.top = (
            min_docs,
            keep_first,
            max(1, int(partitions)),
            work_dir,
            drop,
            top,
        )
        self.repeated = None

    def expand(self, pieces):
        partitions, scopes, min_docs, keep_first, top, bucket_docs = (
            self.partitions,
            self.scopes,
            self.min_docs,
            self.keep_first,
            self.top,
            self.bucket_docs,
        )
        if self.drop is not None:
            pieces = (
                {"piece": pieces | "ByPiece" >> beam.Map(lambda p: (p.index, p)), "drop": self.drop}
                | "WithDrops" >> beam.CoGroupByKey()
                | "DropLosers" >> beam.FlatMap(_filtered_line_keys, self.work_dir, partitions)
            )

        def decide(part, pieces, counts):
            from corpusmill.dedup.lines import repeated_line_groups

            blobs = [read_slice(p.keys + LineKeys.suffix, part) for p in sorted(pieces, key=lambda p: p.index)]
            pairs = np.concatenate([_pairs(b) for b in blobs]) if blobs else np.zeros((0, 2), dtype=np.int64)
            del blobs
            ref_scopes = (
                bucket_scopes(pairs[:, 1], scopes, counts, bucket_docs) if bucket_docs else scopes[pairs[:, 1] >> 32]
            )
            (refs, hashes), (docs, scope, h, first) = repeated_line_groups(
                pairs[:, 0], pairs[:, 1], ref_scopes, min_docs, keep_first
            )
            del pairs
            order = np.lexsort((refs, refs >> 32))
            refs, hashes = refs[order], hashes[order]
            cuts = np.flatnonzero(np.diff(refs >> 32)) + 1
            for r, hh in zip(np.split(refs, cuts), np.split(hashes, cuts)):
                if len(r):
                    marks = np.empty((len(r), 2), dtype="<i8")
                    marks[:, 0], marks[:, 1] = r, hh
                    yield from _marks_counted([(int(r[0] >> 32), (LINES, marks.tobytes()))])
            for i in np.lexsort((h, scope, -docs))[:top].tolist():
                yield beam.pvalue.TaggedOutput(REPEATED, (int(docs[i]), int(scope[i]), int(h[i]), int(first[i])))

        counts = (  # the documents of each piece whose line keys are counted (for the buckets)
            pieces | "CountDocs" >> beam.Map(_documents_with_lines, partitions) if bucket_docs else None
        )
        out = _parts(pieces.pipeline, partitions, "Lines") | "Decide" >> beam.FlatMap(
            decide, beam.pvalue.AsList(pieces), beam.pvalue.AsDict(counts) if counts is not None else None
        ).with_outputs(REPEATED, main=MARKS)
        self.repeated = (
            out[REPEATED]
            | "AllRepeated" >> beam.combiners.ToList()
            | "TopRepeated" >> beam.Map(lambda xs: sorted(xs, key=lambda x: (-x[0], x[1], x[2]))[:top])
        )

        def wanted(top_list):
            by_piece: Dict[int, list] = {}
            for _n, scope, h, ref in top_list:
                by_piece.setdefault(ref >> 32, []).append((ref, scope, h))
            return [(piece, (WANTED, entries)) for piece, entries in sorted(by_piece.items())]

        texts = self.repeated | "WantedTexts" >> beam.FlatMap(wanted)
        return (out[MARKS], texts) | "LineMarks" >> beam.Flatten()


BUCKET_SPAN = 1 << 24  # a bucketed scope's number: (scope + 1) * BUCKET_SPAN + bucket


def _documents_with_lines(piece, partitions: int) -> Tuple[int, int]:
    """(piece, how many documents its line key file holds)."""
    refs = [_pairs(read_slice(piece.keys + LineKeys.suffix, p))[:, 1] for p in range(partitions)]
    return piece.index, int(len(np.unique(np.concatenate(refs)))) if refs else 0


def bucket_scopes(refs: np.ndarray, scopes: np.ndarray, counts: Dict[int, int], bucket_docs: int) -> np.ndarray:
    """The bucketed scope of each ref: its piece's scope cut into ceil(documents / ``bucket_docs``)
    buckets (``counts``: the documents of each piece whose line keys are counted), the bucket drawn by a
    64-bit mix of the ref: the same on every runner, rank and number of hash ranges."""
    from corpusmill.core.hashing import fmix64

    totals: Dict[int, int] = {}
    for index, n in counts.items():
        totals[int(scopes[index])] = totals.get(int(scopes[index]), 0) + int(n)
    per_scope = np.ones(int(scopes.max()) + 1 if len(scopes) else 1, dtype=np.uint64)
    for scope, total in totals.items():
        per_scope[scope] = max(1, -(-total // bucket_docs))
    piece_scopes = scopes[refs >> 32]
    with np.errstate(over="ignore"):
        mixed = fmix64(refs.astype(np.uint64))
    buckets = (mixed % per_scope[piece_scopes]).astype(np.int64)
    return (piece_scopes + 1) * BUCKET_SPAN + buckets


def scope_label(scope: int, scope_names: Sequence[str]) -> str:
    if scope >= BUCKET_SPAN:
        return f"{scope_names[scope // BUCKET_SPAN - 1]} bucket {scope % BUCKET_SPAN}".strip()
    return scope_names[scope]


def repeated_entries(top_list, texts, scope_names: Sequence[str]) -> List[dict]:
    """repeated_lines.json's entries: each top hash with its text (from its first document)."""
    text_of = {tuple(key): text for key, text in texts}
    return [
        {"documents": n, "scope": scope_label(scope, scope_names), "hash": h, "text": text_of.get((scope, h), "")}
        for n, scope, h, _ref in top_list
    ]


# -- URL, text and near-duplicate dedup -------------------------------------------------------------------
def _doc_marks(rows: List[list]):
    by_piece: Dict[int, list] = {}
    for row in rows:
        by_piece.setdefault(piece_of(row[0]), []).append(row)
    for piece, marks in sorted(by_piece.items()):
        yield piece, (DOCS, json.dumps(sorted(marks, key=lambda m: m[0])).encode("utf-8"))


class FindDocDuplicates(beam.PTransform):
    """Pieces (with document key files) -> marks ``(piece, (DOCS, ...))`` of the documents each step of
    ``chain`` drops: ``[(step name, kind)]``, kind ``url``, ``content`` or ``near`` (with ``fuzzy``), in
    order, each seeing only what the ones before kept. ``work_dir``: where each step's survivors are
    written for the next (cut by the next step's key)."""

    def __init__(
        self, chain: Sequence[Tuple[str, str]], partitions: int, work_dir: str, fuzzy: Optional[FuzzyParams] = None
    ):
        super().__init__()
        self.chain, self.partitions, self.work_dir, self.fuzzy = (list(chain), max(1, int(partitions)), work_dir, fuzzy)

    def expand(self, pieces):
        partitions = self.partitions
        sources = pieces | "KeyFiles" >> beam.Map(lambda piece: piece.keys + DocKeys.suffix)
        marks = []
        for i, (step, kind) in enumerate(self.chain):
            if kind == NEAR:
                marks.append(sources | f"{step}" >> NearDuplicatesOnKeys(step, self.fuzzy, pieces, partitions))
                break
            following = self.chain[i + 1][1] if i + 1 < len(self.chain) else None
            out = _parts(pieces.pipeline, partitions, step) | f"{step}Decide" >> beam.FlatMap(
                _one_per_key, beam.pvalue.AsList(sources), step, kind, following, partitions, join(self.work_dir, step)
            ).with_outputs(MARKS, main="survivors")
            marks.append(out[MARKS])
            sources = out["survivors"]
        return marks | "DocMarks" >> beam.Flatten()


def _one_per_key(
    part: int, sources: Sequence[str], step: str, column: str, following: Optional[str], partitions: int, work_dir: str
):
    """One hash range of one step: the losers' marks; with a following step, the survivors' file (its
    path is the main output), cut by that step's key."""
    import pyarrow as pa

    from corpusmill.dedup.exact import duplicate_rows

    tables = [bytes_table(read_slice(src, part)) for src in sorted(sources)]
    table = pa.concat_tables(tables) if tables else _table([])
    del tables
    keys = table.column(column).to_pylist()
    ids, locations = table.column("id").to_pylist(), table.column("location").to_pylist()
    refs, ranks = table.column("ref").to_pylist(), table.column("rank").to_pylist()
    pairs = duplicate_rows(keys, ranks, ids, locations, refs)
    for mark in _marks_counted(_doc_marks([[refs[i], step, ids[k], locations[k], None] for i, k in pairs])):
        yield beam.pvalue.TaggedOutput(MARKS, mark)
    if following is not None:
        lost = np.zeros(table.num_rows, dtype=bool)
        lost[[i for i, _k in pairs]] = True
        path = join(work_dir, f"{part:05d}.keys")
        write_partitioned(path, _slices_for(table.filter(pa.array(~lost)), following, partitions))
        yield path


class NearDuplicatesOnKeys(beam.PTransform):
    """Band key files -> the marks of the near-duplicates: each range's buckets joined as stars into
    candidate pairs -> the candidates' shingle sets read back from ``pieces`` -> exact Jaccard ->
    clusters -> marks naming each cluster's kept (first) document and its size."""

    def __init__(self, step: str, params: FuzzyParams, pieces: beam.PCollection, partitions: int):
        super().__init__()
        self.step, self.params, self.pieces, self.partitions = step, params, pieces, partitions

    def expand(self, sources):
        prm, step = self.params, self.step

        def stars(part, sources):  # each bucket's members joined to its first member (one sort)
            blobs = [_pairs(read_slice(src, part)) for src in sorted(sources)]
            pairs = np.concatenate(blobs) if blobs else np.zeros((0, 2), dtype=np.int64)
            order = np.lexsort((pairs[:, 1], pairs[:, 0]))
            band, ref = pairs[order, 0], pairs[order, 1]
            new = np.empty(len(band), dtype=bool)
            new[:1] = True
            new[1:] = band[1:] != band[:-1]
            first = ref[np.flatnonzero(new)][np.cumsum(new) - 1]
            for a, b in zip(ref[~new].tolist(), first[~new].tolist()):
                if a != b:
                    yield a, b

        candidates = (
            _parts(sources.pipeline, self.partitions, "Bands")
            | "BucketStars" >> beam.FlatMap(stars, beam.pvalue.AsList(sources))
            | "DistinctCandidates" >> beam.Distinct()
        )
        wanted = (
            candidates
            | "CandidateRefs" >> beam.FlatMap(lambda pair: pair)
            | "DistinctRefs" >> beam.Distinct()
            | "RefsByPiece" >> beam.Map(lambda ref: (piece_of(ref), ref))
        )
        read = (
            {"piece": self.pieces | "PieceByIndex" >> beam.Map(lambda p: (p.index, p)), "ref": wanted}
            | "CandidatesOfPiece" >> beam.CoGroupByKey()
            | "ReadCandidates" >> beam.FlatMap(_candidate_shingles, prm).with_outputs("names", main="shingles")
        )
        if prm.threshold > 0:
            from corpusmill.dedup import fuzzy

            edges = (
                (candidates, read["shingles"])
                | "VerifyPairs" >> ScorePairs(fuzzy.jaccard)
                | "Verified" >> beam.FlatMap(lambda ps: [ps[0]] if ps[1] >= prm.threshold else [])
            )
        else:
            edges = candidates
        members, sizes, unconverged = edges | "Clusters" >> ClusterEdges(prm.rounds)

        def named(root, sides):
            name = next(iter(sides["name"]), None)
            size = next(iter(sides["size"]), 0)
            for member in sides["member"]:
                yield [member, step, name[0], name[1], size]

        marks = stream_join(
            {"member": members | "ByRoot" >> beam.Map(lambda kv: (kv[1], kv[0])), "size": sizes, "name": read["names"]},
            "Named",
            named,
        )
        lost = unconverged | "Unresolved" >> beam.Map(lambda kv: [kv[0], step, None, None, None])
        return (
            (marks, lost)
            | "NearMarks" >> beam.Flatten()
            | "ByPieceNear" >> beam.Map(lambda m: (piece_of(m[0]), m))
            | "GroupNear" >> beam.GroupByKey()
            | "NearPayloads" >> beam.FlatMap(lambda kv: _marks_counted(_doc_marks(list(kv[1]))))
        )


def _candidate_shingles(item, prm: FuzzyParams):
    """One piece's candidates: ``(ref, shingle hashes)``, and tagged ``names``: ``(ref, (id, location))``."""
    from corpusmill.core.document import Document
    from corpusmill.dedup import minhash

    _index, sides = item
    wanted = set(sides["ref"])
    for piece in sides["piece"]:
        for line in work_lines(piece.docs):
            ref = line_ref(line)
            if ref in wanted:
                _r, doc, _h = json.loads(line)
                doc = Document.from_dict(doc)
                yield ref, minhash.shingle_hashes(doc.text, prm.shingle)
                yield beam.pvalue.TaggedOutput("names", (ref, (doc.id, doc.location)))


__all__ = [
    "PieceMarks",
    "LineKeys",
    "DocKeys",
    "FindRepeatedLines",
    "FindDocDuplicates",
    "repeated_entries",
    "LINES",
    "DOCS",
    "write_partitioned",
    "read_slice",
]
