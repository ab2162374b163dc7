"""Reading and writing documents on Beam.

Readers turn input files into small *references* or raw records and spread them over workers with a
Reshuffle, so no worker reads a whole input file into memory and large inputs are split:

- WARC / WARC.gz / ARC / WET: a first pass per file records where each record starts (warcio's
  offsets, without parsing HTTP), then the records are reshuffled and each is parsed where it lands
  (:class:`RecordRef`). A corrupt region (truncated gzip, garbage between records) becomes a RecordRef
  with an ``error`` that the extraction step sends to the dead-letter output; the scan then resyncs
  at the next record and the rest of the file is still read.
- JSONL (.gz) and Parquet documents: plain JSONL is split into byte ranges, Parquet by row group;
  each line / row becomes a :class:`RawRecord` that the ``read`` step parses (a bad line is a
  dead-letter record naming the file and line, not a crashed run).

Writers shard documents deterministically: a document goes to shard ``hash(id) % n`` of its group
(language, bucket, ...), each shard is sorted by id and written once to a fixed name through a
temporary file that is renamed when complete. Same input and options, same bytes, on any runner.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import math
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from corpusmill.core.document import Document, _json_default
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import (
    check_group,
    encode_jsonl_gz,
    join,
)
from corpusmill.core.hashing import stable_hash
from corpusmill.core.inputs import Skipped
from corpusmill.core.outputs import FORMATS
from corpusmill.core.progress import expect_input
from corpusmill.filters.base import Filter, Verdict, drop, keep
from corpusmill.io.files import atomic_write

EXTENSIONS = {"jsonl": ".jsonl.gz", "parquet": ".parquet"}


def _parquet_table(docs: List[Document]):
    import pyarrow as pa

    columns = {
        "id": [d.id for d in docs],
        "source": [d.source for d in docs],
        "url": [d.url for d in docs],
        "timestamp": [d.timestamp for d in docs],
        "location": [d.location for d in docs],
        "text": [d.text for d in docs],
        # annotations vary by stage: stored as one JSON string, the same form JSONL uses
        "metadata": [json.dumps(d.metadata, ensure_ascii=False, sort_keys=True) for d in docs],
    }
    return pa.table({k: pa.array(v, type=pa.string()) for k, v in columns.items()})


def write_documents_file(path: str, docs: List[Document], fmt: str, level: int = 6) -> int:
    """Write ``docs`` (already in their final order) to one file; returns the number written.
    ``level``: the gzip level of JSONL (1 for a run's own intermediate files)."""
    # the glue already did; a writer never fails on a surrogate (JSONL writes metadata's as \udXXX)
    docs = [d.repaired(metadata=fmt == "parquet")[0] for d in docs]
    with atomic_write(path) as handle:
        if fmt == "jsonl":
            encode_jsonl_gz((d.to_dict() for d in docs), handle, level)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            buf = io.BytesIO()
            pq.write_table(_parquet_table(docs), buf, compression="zstd", row_group_size=1000)
            handle.write(buf.getvalue())
        else:
            raise CorpusmillError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return len(docs)


# ---------------------------------------------------------------------------------------------------
# reading documents (JSONL / Parquet)
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class RawRecord:
    """One unparsed input record: a JSON line (bytes) or a Parquet row (dict), or a read error."""

    location: str
    payload: Any = None
    error: str = ""
    path: str = ""  # the input file

    @property
    def nbytes(self) -> int:
        if isinstance(self.payload, bytes):
            return len(self.payload)
        if isinstance(self.payload, dict):
            return len(str(self.payload.get("text", "")).encode("utf-8", "surrogatepass"))
        return 0


@dataclasses.dataclass(frozen=True, slots=True)
class _Range:
    path: str
    kind: str  # "jsonl" (byte range of a plain file), "jsonl_gz" (whole file), "parquet" (row group)
    start: int
    end: int
    error: str = ""  # the file could not be split (a 0-byte or truncated Parquet file): one dead letter


SPLIT_BYTES = 64 << 20


def _split_document_file(path: str) -> Iterator[_Range]:
    try:
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                groups = pq.ParquetFile(handle).metadata.num_row_groups
            ranges = [_Range(path, "parquet", g, g + 1) for g in range(max(groups, 1))]
        elif path.endswith(".gz"):
            ranges = [_Range(path, "jsonl_gz", 0, -1)]
        else:
            size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
            ranges = [
                _Range(path, "jsonl", start, min(start + SPLIT_BYTES, size))
                for start in range(0, max(size, 1), SPLIT_BYTES)
            ]
    except Exception as exc:  # noqa: BLE001 - an unreadable file is one dead letter, not a crashed run
        ranges = [_Range(path, "error", 0, 0, f"unreadable file: {type(exc).__name__}: {exc}"[:1000])]
    yield from ranges


def _read_range(rng: _Range) -> Iterator[RawRecord]:
    """Yield the records of one range; a read error becomes a RawRecord with ``error`` set."""
    if rng.error:
        yield RawRecord(f"{rng.path}@{rng.start}", None, rng.error, rng.path)
        return
    if rng.kind == "parquet":
        import pyarrow.parquet as pq

        try:
            with FileSystems.open(rng.path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                table = pq.ParquetFile(handle).read_row_group(rng.start)
            for i, row in enumerate(table.to_pylist()):  # rows are numbered within the row group
                yield RawRecord(f"{rng.path}#rowgroup{rng.start}:{i}", row, path=rng.path)
        except Exception as exc:  # noqa: BLE001
            yield RawRecord(f"{rng.path}#rowgroup{rng.start}", None, f"{type(exc).__name__}: {exc}", rng.path)
        return
    if rng.kind == "jsonl_gz":
        lineno = 0
        try:
            with FileSystems.open(rng.path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                for lineno, raw in enumerate(gzip.GzipFile(fileobj=handle, mode="rb"), 1):
                    yield RawRecord(f"{rng.path}:{lineno}", raw, path=rng.path)
        except Exception as exc:  # noqa: BLE001 - truncated gzip, bad CRC, ...
            yield RawRecord(
                f"{rng.path}:{lineno + 1}",
                None,
                f"{type(exc).__name__}: {exc} (the rest of this file is unreadable)",
                rng.path,
            )
        return
    # plain JSONL byte range: a line belongs to the range its first byte is in
    try:
        yield from _read_jsonl_range(rng)
    except OSError as exc:  # the file went away or cannot be read: the rest of the range is one dead letter
        yield RawRecord(f"{rng.path}@{rng.start}", None, f"{type(exc).__name__}: {exc}", rng.path)


def _read_jsonl_range(rng: _Range) -> Iterator[RawRecord]:
    with FileSystems.open(rng.path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        pos = rng.start
        if rng.start > 0:
            handle.seek(rng.start - 1)
            if handle.read(1) != b"\n":
                skipped = handle.readline()
                pos += len(skipped)
        else:
            handle.seek(0)
        while pos < rng.end:
            raw = handle.readline()
            if not raw:
                break
            yield RawRecord(f"{rng.path}@{pos}", raw, path=rng.path)
            pos += len(raw)


def read_document_records(path: str) -> Iterator[RawRecord]:
    """Every record of one JSONL(.gz) or Parquet file, in file order (its ranges read one after another):
    the streaming passes' reader. An unreadable file or range is a RawRecord with ``error``."""
    for rng in _split_document_file(path):
        yield from _read_range(rng)


class ParseDocument(Filter):
    """The ``read`` step for document inputs: a JSON line or Parquet row -> Document."""

    name = "read"

    def __init__(self, default_source: str = ""):
        self.default_source = default_source

    def __call__(self, record: RawRecord) -> Verdict:
        if record.error:
            raise IOError(record.error)
        payload = record.payload
        if isinstance(payload, bytes):
            if not payload.strip():
                return drop("blank_line")
            try:
                line = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{record.location}: not UTF-8 ({exc}); re-encode the file as UTF-8") from None
            doc = Document.from_json(line, where=record.location)
        else:
            doc = Document.from_dict(payload, where=record.location)
        if doc.metadata:  # what a writer could not encode fails here, as this record's dead letter
            json.dumps(doc.metadata, default=_json_default)
        if not doc.source and self.default_source:
            doc.source = self.default_source  # (a document just made: no one else holds it)
        if not doc.location:
            doc.location = record.location
        return keep(doc)


class SplitAndRead(beam.PTransform):
    """How every reader spreads its input: ``items`` (files, directories) -> ``split_fn(item)`` yields
    small read tasks (byte ranges, record offsets, repositories) -> the tasks are reshuffled over
    workers -> ``read_fn(task)`` yields records. With ``spread_records`` the records are reshuffled
    too (when reading a task is cheap but processing each record is not, e.g. WARC records).
    Both functions must be picklable (module-level functions or ``functools.partial`` of them)."""

    def __init__(
        self,
        items: Sequence[Any],
        split_fn: Callable[[Any], Iterable[Any]],
        read_fn: Callable[[Any], Iterable[Any]],
        spread_records: bool = False,
        skipped: Sequence[Skipped] = (),
    ):
        super().__init__()
        self.items = list(items)
        self.split_fn = split_fn
        self.read_fn = read_fn
        self.spread_records = spread_records
        # links and unreadable entries met while listing the input (expand_inputs' ``skipped``): the
        # stage's first step counts each
        self.skipped = list(skipped) if skipped else list(getattr(items, "skipped", ()))
        expect_input(self.items)  # the input's size, for the live progress line

    def expand(self, pbegin):
        split_fn, read_fn = self.split_fn, self.read_fn
        records = (  # items and tasks travel boxed: a file name may not be UTF-8 (see _Boxed)
            create_items(pbegin, self.items)
            | "Split" >> beam.FlatMap(lambda box: (_Boxed(task) for task in split_fn(box.value)))
            | "SpreadTasks" >> beam.Reshuffle()
            | "Read" >> beam.FlatMap(lambda box: read_fn(box.value))
        )
        if self.spread_records:
            records = records | "SpreadRecords" >> beam.Reshuffle()
        return with_skipped(pbegin, records, self.skipped)


@dataclasses.dataclass(frozen=True, slots=True)
class _Boxed:
    """An item in a pickled box: Beam's string coder encodes strict UTF-8, so a file name that is
    not UTF-8 (``os.listdir``'s surrogate escapes) would crash it."""

    value: Any


def create_items(pbegin, items: Sequence[Any], label: str = "Items", spread: bool = False):
    """``beam.Create(items)`` of boxed items (then a Reshuffle with ``spread``): the next step takes
    ``box.value``. Beam encodes bare strings as strict UTF-8, even to sample their size inside a fused
    stage, so a non-UTF-8 file name must never travel unboxed."""
    boxed = pbegin | label >> beam.Create([_Boxed(i) for i in items])
    if spread:
        boxed = boxed | f"Spread{label}" >> beam.Reshuffle()
    return boxed


def with_skipped(pbegin, records, skipped: Sequence[Skipped], label: str = "Skipped"):
    """``records`` plus the :class:`Skipped` entries of the listing, for the first step to count."""
    if not skipped:
        return records
    return (records, pbegin | label >> beam.Create(list(skipped))) | f"With{label}" >> beam.Flatten()


class ReadRawRecords(SplitAndRead):
    """Files -> :class:`RawRecord` (one per JSON line / Parquet row), split and spread over workers."""

    def __init__(self, files: List[str], skipped=()):
        super().__init__(files, _split_document_file, _read_range, skipped=skipped)


# ---------------------------------------------------------------------------------------------------
# writing documents
# ---------------------------------------------------------------------------------------------------
def shard_of(doc_id: str, num_shards: int) -> int:
    return stable_hash(doc_id) % num_shards


class WriteDocuments(beam.PTransform):
    """Write documents to ``OUT/<group>/part-NNNNN<ext>``, deterministically.

    ``group_fn(doc)`` names the sub-directory (the language, ``<lang>_<bucket>``, or "" for none).
    Each group gets ``ceil(count / docs_per_shard)`` shards; a shard holds at most about
    ``docs_per_shard`` documents sorted by id (one shard is sorted in one worker's memory).
    Returns a PCollection of ``(relative_path, count)`` for every file written.
    """

    def __init__(
        self,
        out_dir: str,
        fmt: str = "jsonl",
        group_fn: Optional[Callable[[Document], str]] = None,
        docs_per_shard: int = 10_000,
        level: int = 6,
    ):
        super().__init__()
        if fmt not in FORMATS:
            raise CorpusmillError(f"--format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
        self.out_dir = out_dir
        self.fmt = fmt
        self.group_fn = group_fn or (lambda doc: "")
        self.docs_per_shard = max(1, int(docs_per_shard))
        self.level = level

    def expand(self, docs):
        group_fn, per_shard, out_dir, fmt, level = (
            self.group_fn,
            self.docs_per_shard,
            self.out_dir,
            self.fmt,
            self.level,
        )
        keyed = docs | "Group" >> beam.Map(lambda d: (check_group(group_fn(d)), d))
        counts = keyed | "Count" >> beam.combiners.Count.PerKey()

        def assign(item, counts):
            group, doc = item
            shards = max(1, math.ceil(counts[group] / per_shard))
            return (group, shard_of(doc.id, shards)), doc

        def write(item):
            (group, shard), group_docs = item
            ordered = sorted(group_docs, key=lambda d: (d.id, d.location, d.text))  # ids may repeat
            rel = join(group, f"part-{shard:05d}{EXTENSIONS[fmt]}") if group else f"part-{shard:05d}{EXTENSIONS[fmt]}"
            write_documents_file(join(out_dir, rel), ordered, fmt, level)
            return rel, len(ordered)

        return (
            keyed
            | "AssignShard" >> beam.Map(assign, counts=beam.pvalue.AsDict(counts))
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShard" >> beam.Map(write)
        )
