"""The key files of a streaming pass's keyed steps (no decisions here: corpusmill.engine.keyed makes them).

A key file is cut into hash-range slices (CMPART1 and an index, then the slices) so that one task per
range reads its slice of every piece's file: line keys are little-endian int64 (hash, ref) pairs, document
keys an Arrow table (ref, id, location, rank, url, content, MinHash bands)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import struct
from typing import List, Optional, Sequence, Tuple

import numpy as np

from corpusmill.core.steps import CONTENT, NEAR, URL  # noqa: F401 (the keyed kinds)
from corpusmill.engine.fuzzy_dedup import FuzzyParams
from corpusmill.engine.passes import Item, KeySpec

# -- partitioned files: an index, then one slice of bytes per hash range ----------------------------------
PART_MAGIC = b"CMPART1\n"


def write_partitioned(path: str, slices: Sequence[bytes]) -> int:
    """Write ``slices`` (one per range, in order) to ``path`` behind an index of their offsets; returns
    the bytes written."""
    from corpusmill.io.files import atomic_write

    offsets = np.zeros(len(slices) + 1, dtype="<i8")
    offsets[1:] = np.cumsum([len(x) for x in slices])
    head = PART_MAGIC + struct.pack("<q", len(slices)) + offsets.tobytes()
    with atomic_write(path) as handle:
        handle.write(head)
        for piece in slices:
            if piece:
                handle.write(piece)
    return len(head) + int(offsets[-1])


def read_slice(path: str, part: int) -> bytes:
    """Slice ``part`` of a partitioned file (one ranged read after the index)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        head = fh.read(len(PART_MAGIC) + 8)
        if head[: len(PART_MAGIC)] != PART_MAGIC:
            raise ValueError(f"{path}: not a corpusmill key file")
        (parts,) = struct.unpack("<q", head[len(PART_MAGIC) :])
        if not 0 <= part < parts:
            raise ValueError(
                f"{path}: has {parts} hash ranges, not {part + 1} (written with another --shuffle-partitions)"
            )
        offsets = np.frombuffer(fh.read(8 * (parts + 1)), dtype="<i8")
        start, end = int(offsets[part]), int(offsets[part + 1])
        if start == end:
            return b""
        fh.seek(len(PART_MAGIC) + 8 + 8 * (parts + 1) + start)
        return fh.read(end - start)


def _cut(values: np.ndarray, partitions: int) -> Tuple[np.ndarray, np.ndarray]:
    """(the order that groups rows by range, the rows per range) for keys ``values``."""
    part = np.mod(values, partitions)
    return np.argsort(part, kind="stable"), np.bincount(part, minlength=partitions)


def _pairs_slices(pairs: np.ndarray, partitions: int) -> List[bytes]:
    """``(key, ref)`` int64 rows cut by key into ``partitions`` slices of bytes."""
    order, counts = _cut(pairs[:, 0], partitions)
    rows = pairs[order]
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [rows[bounds[p] : bounds[p + 1]].tobytes() for p in range(partitions)]


def _pairs(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i8").reshape(-1, 2)


# -- keys, as a pass writes them -------------------------------------------------------------------------
@dataclasses.dataclass
class LineKeys(KeySpec):
    """Each written document's distinct line hashes, ``(hash, ref)`` int64 pairs, cut by hash."""

    partitions: int = 1
    suffix = ".lines"

    def open(self, path: str):
        return _LineKeyWriter(path, self.partitions)


class _LineKeyWriter:
    def __init__(self, path: str, partitions: int):
        self.path, self.partitions = path, partitions
        self.arrays: List[np.ndarray] = []

    def add(self, item: Item) -> None:
        distinct = np.unique(item.hashes)
        pairs = np.empty((len(distinct), 2), dtype="<i8")
        pairs[:, 0] = distinct
        pairs[:, 1] = item.ref
        self.arrays.append(pairs)

    def close(self) -> int:
        pairs = np.concatenate(self.arrays) if self.arrays else np.zeros((0, 2), dtype="<i8")
        self.arrays = []
        return write_partitioned(self.path, _pairs_slices(pairs, self.partitions))

    def abort(self, exc: BaseException) -> None:
        self.arrays = []


@dataclasses.dataclass
class DocKeys(KeySpec):
    """Each written document's row for the document dedups: ref, id, location, rank (a newer crawl is
    smaller), the 16-byte keys of its normalized URL and its text, and with ``fuzzy`` its MinHash band
    keys; cut by the key of ``first``, the first of the dedups (for ``near``: band keys and refs only)."""

    first: str = URL
    fuzzy: Optional[FuzzyParams] = None
    partitions: int = 1
    suffix = ".docs"

    def open(self, path: str):
        return _DocKeyWriter(path, self)


DOC_KEY_COLUMNS = ("ref", "id", "location", "rank", "url", "content", "bands")


def _key16(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()[:16]


def doc_key_row(doc, ref: int, fuzzy: Optional[FuzzyParams]) -> tuple:
    from corpusmill.filters.c4 import normalize_url, timestamp_seconds

    url = normalize_url(doc.url)
    seconds = timestamp_seconds(doc.timestamp)
    bands: List[int] = []
    if fuzzy is not None:
        from corpusmill.dedup import minhash

        sig = minhash.signature(minhash.shingle_hashes(doc.text, fuzzy.shingle), fuzzy.num_perm, fuzzy.seed)
        bands = minhash.band_hashes(sig, fuzzy.bands, fuzzy.rows)
    return (
        ref,
        doc.id,
        doc.location,
        -seconds if seconds is not None else math.inf,
        _key16(url) if url else b"",
        _key16(doc.text),
        bands,
    )


def _doc_key_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("ref", pa.int64()),
            ("id", pa.string()),
            ("location", pa.string()),
            ("rank", pa.float64()),
            ("url", pa.binary()),
            ("content", pa.binary()),
            ("bands", pa.list_(pa.int64())),
        ]
    )


def _table(rows: List[tuple]):
    import pyarrow as pa

    columns = list(zip(*rows)) if rows else [[] for _ in DOC_KEY_COLUMNS]
    return pa.table(dict(zip(DOC_KEY_COLUMNS, columns)), schema=_doc_key_schema())


def table_bytes(table) -> bytes:
    import pyarrow as pa

    if not table.num_rows:
        return b""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def bytes_table(data: bytes):
    import pyarrow as pa

    if not data:
        return _table([])
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def _row_slices(table, column: str, partitions: int) -> List[bytes]:
    """A table's rows cut by ``column``'s key (a row with no key: by its ref) into Arrow slices."""
    import pyarrow as pa

    keys = table.column(column).to_pylist()
    refs = table.column("ref").to_pylist()
    values = np.fromiter(
        ((int.from_bytes(k[:8], "little", signed=True) if k else r) for k, r in zip(keys, refs)),
        dtype=np.int64,
        count=table.num_rows,
    )
    order, counts = _cut(values, partitions)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [table_bytes(table.take(pa.array(order[bounds[p] : bounds[p + 1]]))) for p in range(partitions)]


def _band_slices(table, partitions: int) -> List[bytes]:
    """The rows' ``(band key, ref)`` pairs, cut by band key."""
    refs = np.asarray(table.column("ref").to_pylist(), dtype=np.int64)
    lists = table.column("bands").to_pylist()
    width = len(lists[0]) if lists else 0
    keys = np.asarray(lists, dtype=np.int64).reshape(len(refs), width)
    pairs = np.empty((keys.size, 2), dtype="<i8")
    pairs[:, 0] = keys.reshape(-1)
    pairs[:, 1] = np.repeat(refs, width)
    return _pairs_slices(pairs, partitions)


def _slices_for(table, kind: Optional[str], partitions: int) -> List[bytes]:
    if kind == NEAR:
        return _band_slices(table, partitions)
    return _row_slices(table, kind, partitions)


class _DocKeyWriter:
    def __init__(self, path: str, spec: DocKeys):
        self.path, self.spec = path, spec
        self.rows: List[tuple] = []

    def add(self, item: Item) -> None:
        self.rows.append(doc_key_row(item.doc, item.ref, self.spec.fuzzy))

    def close(self) -> int:
        table = _table(self.rows)
        self.rows = []
        return write_partitioned(self.path, _slices_for(table, self.spec.first, self.spec.partitions))

    def abort(self, exc: BaseException) -> None:
        self.rows = []
