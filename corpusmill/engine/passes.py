"""Streaming passes: shuffle keys, not documents.

A *piece* is what one input file becomes: piece F holds the documents of the run's F-th input file, in
file order, each with its *ref* (``F << 32 | ordinal``, the ordinal of its record in the file). A pass
streams each piece through its steps inside ONE DoFn call: it reads a document from a file, applies every
step in order with the usual accounting (:class:`corpusmill.engine.step.StepAccount`: read = kept +
dropped + failed per step, profile rows, dead letters naming ``path@offset``), and writes what is kept, in
order, to the pass's own file for that piece. A document is never a Beam element: not between two steps,
and never in a shuffle.

Only keys cross a shuffle. At the end of a pass the keys the next pass's *keyed steps* need (line hashes;
URL, text and MinHash keys with the document's id and location) are written beside the piece
(:mod:`corpusmill.engine.keyed` reads them, decides on them, and hands every piece its *marks*: the lines
to remove, the documents that lose to another copy). The next pass reads the piece again, applies the marks
as its first steps and streams on. So memory holds one document, one piece's marks and the keys.

Pass files (all under the run's ``_shards/``, never part of the output):

    <dir>/pieces/FFFFFF.jsonl[.gz]   one JSON array per document: [ref, document, line hashes or null]
    <dir>/keys/FFFFFF.lines          the distinct line hashes of each document: little-endian int64 pairs
                                     (hash, ref)
    <dir>/keys/FFFFFF.docs           the documents' URL / text / MinHash keys (Arrow IPC)

A final pass writes the stage's output instead: ``OUT/<group>/part-FFFFFF-KKKK.<ext>``, each file the
documents of one piece and group in input order (``--docs-per-shard`` at most), so the output of a piece
is the same whichever machine, rank or runner wrote it.
"""

from __future__ import annotations

import dataclasses
import heapq
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from corpusmill.core.document import Document
from corpusmill.core.files import join
from corpusmill.core.hashing import stable_hash
from corpusmill.core.profile import HIST, OUTPUT, OUTPUT_STEP, SCORES, bin_of, label, number
from corpusmill.core.stats import DROPPED, FAILED, KEPT
from corpusmill.engine.step import STATS, Dropped, StepAccount, acquire_filter
from corpusmill.engine.work import (  # noqa: F401 (keyed.py and the stages import some from here)
    SAMPLES,
    TEXTS,
    GroupWriter,
    Item,
    LineSink,
    Piece,
    WorkWriter,
    json_line,
    line_ref,
    make_ref,
    piece_name,
    piece_of,
    read_work,
    work_lines,
    work_suffix,
)
from corpusmill.filters.base import Filter


# -- keys written for the next pass ------------------------------------------------------------------
class KeySpec:
    """What the next pass's keyed steps need from each document this pass writes (subclasses:
    :class:`corpusmill.engine.keyed.LineKeys`, :class:`corpusmill.engine.keyed.DocKeys`)."""

    suffix = ""

    def open(self, path: str):  # -> a writer with add(item) and close() -> bytes written
        raise NotImplementedError


# -- what a streaming DoFn drops and fails ----------------------------------------------------------------
class Outcomes:
    """Where a streaming DoFn's dropped and failed records go: every dead letter (and with
    ``write_dropped`` every dropped document) is written per piece as it comes, under ``run_dir`` --
    ``_failed/failed-<label>-<piece>.jsonl.gz``, ``_dropped/<step>/<reason>-<piece>.jsonl.gz`` -- never
    gathered; otherwise the dropped documents' sample (the records Run.finish keeps: the largest
    ``-stable_hash(sort key)`` per step and reason) is kept per bundle, so only candidates leave the DoFn."""

    def __init__(self, run_dir: str, label: str, write_dropped: bool, dropped_sample: int):
        self.run_dir, self.label, self.write_dropped, self.dropped_sample = (
            run_dir,
            label,
            write_dropped,
            dropped_sample,
        )
        self._heaps: Dict[Tuple[str, str], list] = {}
        self._sinks: Dict[Tuple[str, str], LineSink] = {}
        self.piece = 0

    def open_piece(self, piece: int) -> None:
        self.piece, self._sinks = piece, {}

    def _sink(self, key: Tuple[str, str], path: str) -> "LineSink":
        sink = self._sinks.get(key)
        if sink is None:
            sink = self._sinks[key] = LineSink(path, compress=True, level=6)
        return sink

    def route(self, outcome: str, value) -> None:
        if outcome == FAILED:
            self._sink(
                ("", FAILED), join(self.run_dir, "_failed", f"failed-{self.label}-{piece_name(self.piece)}.jsonl.gz")
            ).write(json_line(value.to_dict()))
        elif outcome == DROPPED:
            self.drop(value)

    def drop(self, record: Dropped) -> None:
        if self.write_dropped:
            self._sink(
                (record.step, record.reason),
                join(self.run_dir, "_dropped", record.step, f"{record.reason}-{piece_name(self.piece)}.jsonl.gz"),
            ).write(json_line(record.to_dict()))
            return
        if self.dropped_sample <= 0:
            return
        heap = self._heaps.setdefault((record.step, record.reason), [])
        entry = (-stable_hash(record.sort_key), record.sort_key, record.location, len(heap), record)
        if len(heap) < self.dropped_sample:
            heapq.heappush(heap, entry)
        elif entry[:3] > heap[0][:3]:
            heapq.heapreplace(heap, entry)

    def close_piece(self) -> None:
        for sink in self._sinks.values():
            sink.close()
        self._sinks = {}

    def abort(self, exc: BaseException) -> None:
        for sink in self._sinks.values():
            sink.abort(exc)
        self._sinks = {}

    def sample(self) -> List[Dropped]:
        """This bundle's sampled dropped records (and the sample starts again)."""
        out = [entry[-1] for heap in self._heaps.values() for entry in heap]
        self._heaps = {}
        return out


# -- the pass -----------------------------------------------------------------------------------------
@dataclasses.dataclass
class Marked:
    """A keyed step as a pass applies it: its filter takes what ``PieceMarks.input(kind, item)`` gives
    (the document and the piece's marks for it; :mod:`corpusmill.engine.keyed`)."""

    name: str
    filter: Filter
    kind: str


@dataclasses.dataclass
class PassSpec:
    """One streaming pass: how it reads a piece, the steps it applies, and what it writes.

    readers: for a first pass, ``{file suffixes: (step name, filter, read function)}``; ``read(path)``
    yields the file's records in order. reading: for a later pass, the step that reads the work files
    back (``collect``), or None. marked: the keyed steps applied first; steps: the document steps.
    out_dir: where the work files (or, with ``group_fn``, the stage's output) are written; run_dir: the
    run whose ``_dropped/`` gets the dropped documents (with ``write_dropped``).
    """

    label: str
    out_dir: str
    run_dir: str
    readers: Dict[Tuple[str, ...], Tuple[str, Filter, Callable[[str], Iterator[Any]]]] = dataclasses.field(
        default_factory=dict
    )
    reading: Optional[Tuple[str, Filter]] = None
    marked: List[Marked] = dataclasses.field(default_factory=list)
    steps: List[Tuple[str, Filter]] = dataclasses.field(default_factory=list)
    keys: List[KeySpec] = dataclasses.field(default_factory=list)
    hashes: Optional[str] = None  # compute each written document's line hashes (this dedup normalization)
    group_fn: Optional[Callable[[Document], str]] = None  # a final pass: the output group of a document
    fmt: str = "jsonl"
    docs_per_shard: int = 10_000
    write_dropped: bool = False
    dropped_sample: int = 100
    placement: Optional[Dict[int, dict]] = None  # first pass: the metadata each piece's documents get
    skipped: Sequence[Any] = ()  # the listing's links and unreadable entries (core.inputs.Skipped) ...
    skipped_piece: int = -1  # ... counted by the reading step when this piece is read

    def filters(self) -> List[Tuple[str, Filter]]:
        """Every step of the pass, in order, with its filter."""
        out = [(name, f) for name, f, _r in self.readers.values()]
        out += [self.reading] if self.reading else []
        return out + [(m.name, m.filter) for m in self.marked] + list(self.steps)


class StreamPiece(beam.DoFn):
    """Streams one piece through a pass (see the module docstring). Takes the piece's :class:`Piece` (and
    its marks, from a side input); yields the written :class:`Piece`, and tagged: stats rows,
    sampled dropped documents, repeated lines' texts and the sample of the output. Dead letters (and with
    ``write_dropped`` every dropped document) are written per piece as they come:
    ``RUN/_failed/failed-<pass>-<piece>.jsonl.gz``, ``RUN/_dropped/<step>/<reason>-<piece>.jsonl.gz``."""

    def __init__(self, spec: PassSpec, marks_fn: Callable, handle: shared.Shared):
        self.spec = spec
        self.marks_fn = marks_fn  # (piece index, [mark payloads]) -> corpusmill.engine.keyed.PieceMarks
        self.handle = handle
        self._holders: list = []
        # built here, so a filter's unknown scores are refused when the pipeline is built
        self._accounts: Dict[str, StepAccount] = {name: StepAccount(name, f) for name, f in spec.filters()}

    def setup(self):
        self._holders = []
        for name, filt in self.spec.filters():
            holder = acquire_filter(self.handle, name, filt)
            self._holders.append(holder)
            self._accounts[name].live = holder.filter
        self._shuffled = Metrics.counter("corpusmill.shuffle", "key_bytes")

    def start_bundle(self):
        from corpusmill.core.progress import Tally

        for account in self._accounts.values():
            account.start_bundle()
        if getattr(self, "_input", None) is None:
            self._input = Tally("")  # the input files read (the progress line's share and ETA)
        if getattr(self, "_outcomes", None) is None:
            self._outcomes = Outcomes(
                self.spec.run_dir, self.spec.label, self.spec.write_dropped, self.spec.dropped_sample
            )
        self._samples: Dict[str, list] = {}  # group -> heap of the written sample
        self._profile: Dict[str, list] = {}

    def process(self, piece: Piece, marks=None):
        """``marks``: the keyed steps' marks, a multimap side input looked up by piece (the runner fetches
        one piece's at a time)."""
        index = piece.index
        pieces = [piece]
        marks = self.marks_fn(index, list(marks[index]) if marks is not None else [])
        spec = self.spec
        writer = (
            GroupWriter(spec.out_dir, index, spec.fmt, spec.group_fn, spec.docs_per_shard)
            if spec.group_fn is not None
            else WorkWriter(spec.out_dir, index)
        )
        key_writers = [k.open(join(spec.out_dir, "keys", piece_name(index) + k.suffix)) for k in spec.keys]
        self._outcomes.open_piece(index)
        out: List[Any] = []
        try:
            for item in self._stream(pieces[0], marks, out):
                if spec.hashes is not None and item.hashes is None:
                    from corpusmill.filters.normalize import line_hashes

                    item.hashes = np.asarray(line_hashes(item.doc.text, spec.hashes), dtype=np.int64)
                for keys in key_writers:
                    keys.add(item)
                if spec.group_fn is not None:
                    group = spec.group_fn(item.doc)
                    writer.add(item.doc, group, item.raw)
                    self._written(item.doc, group)
                else:
                    writer.add(item)
                if len(out) >= 64:
                    yield from out
                    out.clear()
            writer.close()
            key_bytes = sum(k.close() for k in key_writers)
            self._outcomes.close_piece()
        except BaseException as exc:
            for w in [writer, *key_writers, self._outcomes]:
                w.abort(exc)
            raise
        self._shuffled.inc(key_bytes)
        yield from out
        for text in marks.texts_out:
            yield beam.pvalue.TaggedOutput(TEXTS, text)
        work = isinstance(writer, WorkWriter)
        yield Piece(
            index,
            writer.path if work else "",
            join(spec.out_dir, "keys", piece_name(index)) if key_writers else "",
            writer.documents if work else 0,
        )

    def _records(self, piece: Piece) -> Iterator[Tuple[Optional[str], Any, int]]:
        """(reading step, its input element, ref) for every record of the piece, in order."""
        spec = self.spec
        if spec.readers:
            if piece.index == spec.skipped_piece:
                for entry in spec.skipped:
                    yield None, entry, -1
            for suffixes, (step, _filt, read) in spec.readers.items():
                if piece.docs.lower().endswith(suffixes):
                    size = _local_size(piece.docs)
                    done = 0
                    for ordinal, record in enumerate(read(piece.docs)):
                        yield step, record, make_ref(piece.index, ordinal)
                        if size:  # a WARC record's place in the file; a JSON line's bytes (about)
                            ref = getattr(record, "ref", record)
                            at = getattr(ref, "offset", 0) + getattr(ref, "length", 0) or done + record.nbytes
                            step_bytes = min(at, size - 1) - done
                            if step_bytes > 0:
                                self._input.advance(step_bytes)
                                done += step_bytes
                    if size:
                        self._input.advance(size - done)
                    return
            raise ValueError(f"piece {piece.index}: no reader for {piece.docs}")
        step = spec.reading[0] if spec.reading else None
        for item in read_work(piece.docs):
            yield step, item, item.ref

    def _stream(self, piece: Piece, marks, out: list) -> Iterator[Item]:
        """The piece's documents that every step kept, in order (the others routed and counted)."""
        from corpusmill.core.inputs import Skipped

        spec = self.spec
        placed = spec.placement.get(piece.index) if spec.placement is not None else None
        first = next(iter(spec.readers.values()))[0] if spec.readers else None
        for step, record, ref in self._records(piece):
            if isinstance(record, Skipped):
                self._route(*self._accounts[first].skipped(record), out)
                continue
            if isinstance(record, Item):
                item = record
                if step is not None:
                    doc = self._apply(step, item.doc, out)
                    if doc is None:
                        continue
                    self._changed(item, doc, step)
            else:
                doc = self._apply(step, record, out)
                if doc is None:
                    continue
                item = Item(ref, doc.annotate(**placed) if placed else doc, nbytes=self._accounts[step].size_out)
            for m in spec.marked:
                doc = self._apply(m.name, marks.input(m, item), out, item.nbytes)
                if doc is None:
                    break
                self._changed(item, doc, m.name)
            else:
                for name, _filt in spec.steps:
                    doc = self._apply(name, item.doc, out, item.nbytes)
                    if doc is None:
                        break
                    self._changed(item, doc, name)
                else:
                    yield item

    def _changed(self, item: Item, doc: Document, step: str) -> None:
        item.nbytes = self._accounts[step].size_out
        if doc is not item.doc:
            if item.hashes is not None and doc.text != item.doc.text:
                item.hashes = None  # computed again where the next pass needs them
            item.doc, item.raw = doc, None

    def _apply(self, step: str, element, out: list, size_in: Optional[int] = None) -> Optional[Document]:
        """One step on one element: the kept document, or None (dropped or failed: routed and counted)."""
        account = self._accounts[step]
        outcome, value = account.route(element, account.verdict(element), size_in)
        if outcome == KEPT:
            return value
        self._route(outcome, value, out)
        return None

    def _route(self, outcome: str, value, out: list) -> None:
        self._outcomes.route(outcome, value)

    def _written(self, doc: Document, group: str) -> None:
        """A written document's profile rows, and its chance to be in the output's sample."""
        for name, chars in output_profile_names(doc, group):
            acc = self._profile.get(name)
            if acc is None:
                self._profile[name] = [1, chars]
            else:
                acc[0] += 1
                acc[1] += chars
        heap = self._samples.setdefault(group, [])
        entry = (-stable_hash(f"{doc.id}\x00{doc.location}"), doc.id, doc.location, doc)
        if len(heap) < SAMPLE_SIZE:
            heapq.heappush(heap, entry)
        elif entry[:3] > heap[0][:3]:
            heapq.heapreplace(heap, entry)

    def finish_bundle(self):
        from apache_beam.transforms.window import GlobalWindows

        for account in self._accounts.values():
            for row in account.stats_rows():
                yield beam.pvalue.TaggedOutput(STATS, GlobalWindows.windowed_value(row))
        self._input.flush()
        for name, (n, chars) in sorted(self._profile.items()):
            yield beam.pvalue.TaggedOutput(
                STATS, GlobalWindows.windowed_value(((OUTPUT_STEP, OUTPUT, name), (n, chars, 0)))
            )
        for record in self._outcomes.sample():
            yield beam.pvalue.TaggedOutput(DROPPED, GlobalWindows.windowed_value(record))
        for group, heap in sorted(self._samples.items()):
            for entry in heap:
                yield beam.pvalue.TaggedOutput(SAMPLES, GlobalWindows.windowed_value((group, entry[-1])))
        self._samples, self._profile = {}, {}


def _local_size(path: str) -> int:
    import os

    try:
        return os.path.getsize(path) if "://" not in path else 0
    except OSError:
        return 0


SAMPLE_SIZE = 5  # written documents sampled per output group (OUT/_samples/; corpusmill.engine.run.KEPT_SAMPLE)


def output_profile_names(doc: Document, group: str) -> List[Tuple[str, int]]:
    """profile.json's rows of one written document: ``(name, characters)`` (corpusmill.core.profile)."""
    lang = label(doc.metadata.get("language"))
    rows = [
        (f"groups\t{label(group or '(all)')}", len(doc.text)),
        (f"languages\t{lang}", 0),
        (f"sources\t{label(doc.source)}", 0),
        (f"{HIST}\tlength\x1f{lang}\x1f{bin_of('length', len(doc.text))}", 0),
    ]
    for score in SCORES:
        value = number(doc.metadata.get(score))
        if value is not None:
            rows.append((f"{HIST}\t{score}\x1f{lang}\x1f{bin_of(score, value)}", 0))
    return rows


__all__ = ["Piece", "Item", "PassSpec", "Marked", "StreamPiece", "KeySpec", "make_ref", "piece_of", "read_work"]
