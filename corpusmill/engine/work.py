"""The files of a streaming pass (corpusmill.engine.passes): pieces, refs, work files and output files.

A *piece* is what one input file becomes; a document's *ref* is ``F << 32 | ordinal`` (its input file
and the record's ordinal in it). A pass writes what it keeps to a work file per piece
(``<dir>/pieces/FFFFFF.jsonl[.gz]``: one JSON array per document, ``[ref, document, line hashes]``), or,
in a final pass, the stage's output (``OUT/<group>/part-FFFFFF-KKKK.<ext>``).
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from corpusmill.core.document import Document
from corpusmill.core.files import check_group, join
from corpusmill.io.documents import EXTENSIONS, write_documents_file
from corpusmill.io.files import atomic_write

REF_SHIFT = 32
TEXTS = "texts"  # the tagged output of repeated lines' texts
SAMPLES = "samples"  # the tagged output of (group, document) candidates for OUT/_samples/


def make_ref(piece: int, ordinal: int) -> int:
    return (piece << REF_SHIFT) | ordinal


def piece_of(ref: int) -> int:
    return ref >> REF_SHIFT


def piece_name(piece: int) -> str:
    return f"{piece:06d}"


@dataclasses.dataclass(frozen=True)
class Piece:
    """One piece as a pass sees it: its index, the file holding its documents (a run's input file for a
    first pass, else a pass's work file) and the prefix of its key files ("" when none were written)."""

    index: int
    docs: str
    keys: str = ""
    documents: int = 0


@dataclasses.dataclass
class Item:
    """A document on its way through a pass: its ref and, once computed, its line hashes."""

    ref: int
    doc: Document
    hashes: Optional[np.ndarray] = None
    nbytes: Optional[int] = None  # the document's UTF-8 bytes, once a step counted them
    raw: Optional[bytes] = None  # the document's JSON as read, while no step changed it


# -- work files ---------------------------------------------------------------------------------------
def work_suffix(out_dir: str) -> str:
    """Work files are plain JSON lines on a local disk (fast) and gzip level 1 on an object store."""
    return ".jsonl.gz" if "://" in out_dir else ".jsonl"


def encode_hashes(hashes: Optional[np.ndarray]) -> Optional[str]:
    return None if hashes is None else base64.b64encode(np.asarray(hashes, dtype="<i8").tobytes()).decode("ascii")


def decode_hashes(text: Optional[str]) -> Optional[np.ndarray]:
    return None if text is None else np.frombuffer(base64.b64decode(text), dtype="<i8")


def read_work(path: str) -> Iterator[Item]:
    """The items of one work file, in order."""
    from corpusmill.core.document import Document

    for line in work_lines(path):
        ref, doc, hashes = json.loads(line)
        # the document's own JSON is the text between the ref and the hashes (written by json_line)
        raw = line[line.index(b",") + 1 : line.rindex(b",")] + b"\n"
        yield Item(ref, Document.from_dict(doc), decode_hashes(hashes), raw=raw)


def work_lines(path: str) -> Iterator[bytes]:
    """The lines of one work file (one document each), in order."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if path.endswith(".gz") else raw
        for line in stream:
            if line.strip():
                yield line


def line_ref(line: bytes) -> int:
    """The ref of a work file's line, without parsing the document."""
    return int(line[1 : line.index(b",")])


class LineSink:
    """Bytes written to one file through an atomic temporary name, in chunks of about 1 MB."""

    def __init__(self, path: str, compress: bool = False, level: int = 1):
        self.path = path
        self._context = atomic_write(path)
        self._handle = self._context.__enter__()
        self._gz = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._handle, mtime=0, compresslevel=level)
            if compress
            else None
        )
        self._buf: List[bytes] = []
        self._size = 0
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self._buf.append(data)
        self._size += len(data)
        self.bytes += len(data)
        if self._size > 1 << 20:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            (self._gz or self._handle).write(b"".join(self._buf))
            self._buf, self._size = [], 0

    def close(self) -> int:
        self._flush()
        if self._gz is not None:
            self._gz.close()
        self._context.__exit__(None, None, None)
        return self.bytes

    def abort(self, exc: BaseException) -> None:
        try:
            self._context.__exit__(type(exc), exc, exc.__traceback__)
        except BaseException:  # noqa: BLE001 - the temporary file is gone; the pass's error is raised
            pass


def json_line(value) -> bytes:
    from corpusmill.core.document import _json_default

    return (
        json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode(
            "utf-8", "backslashreplace"
        )
        + b"\n"
    )


class WorkWriter:
    """A pass's documents for one piece, in order, as a work file."""

    def __init__(self, out_dir: str, piece: int):
        self.path = join(out_dir, "pieces", piece_name(piece) + work_suffix(out_dir))
        self._sink = LineSink(self.path, compress=self.path.endswith(".gz"))
        self.documents = 0

    def add(self, item: Item) -> None:
        self._sink.write(json_line([item.ref, item.doc.to_dict(), encode_hashes(item.hashes)]))
        self.documents += 1

    def close(self) -> None:
        self._sink.close()

    def abort(self, exc: BaseException) -> None:
        self._sink.abort(exc)


class GroupWriter:
    """The stage's output for one piece: ``OUT/<group>/part-FFFFFF-KKKK.<ext>``, each file at most
    ``per_file`` documents of one group, in input order. JSONL is compressed as it goes (a group's lines
    are held until 1 MB, then compressed into its open file); Parquet holds one file's rows."""

    def __init__(
        self, out_dir: str, piece: int, fmt: str, group_fn: Callable[[Document], str], per_file: int, level: int = 6
    ):
        self.out_dir, self.piece, self.fmt, self.group_fn = out_dir, piece, fmt, group_fn
        self.per_file, self.level = max(1, int(per_file)), level
        self._open: Dict[str, list] = {}  # group -> [file number, documents in it, state]
        self.files: List[str] = []

    def _path(self, group: str, k: int) -> str:
        name = f"part-{piece_name(self.piece)}-{k:04d}{EXTENSIONS[self.fmt]}"
        return join(self.out_dir, group, name) if group else join(self.out_dir, name)

    def add(self, doc: Document, group: str, raw: Optional[bytes] = None) -> None:
        """``raw``: the document's JSON line, when it is at hand already (the same bytes)."""
        entry = self._open.get(group)
        if entry is None:
            entry = self._open[check_group(group)] = [0, 0, None]
        elif entry[1] >= self.per_file:
            self._close(group, entry)
            entry[0], entry[1], entry[2] = entry[0] + 1, 0, None
        if self.fmt == "parquet":
            if entry[2] is None:
                entry[2] = []
            entry[2].append(doc)
        else:
            if entry[2] is None:
                entry[2] = _JsonlGroupFile(self._path(group, entry[0]), self.level)
            entry[2].add(doc, raw)
        entry[1] += 1

    def _close(self, group: str, entry: list) -> None:
        path = self._path(group, entry[0])
        if self.fmt == "parquet":
            write_documents_file(path, entry[2], self.fmt, self.level)
        else:
            entry[2].close()
        self.files.append(path)

    def close(self) -> None:
        for group in sorted(self._open):
            entry = self._open[group]
            if entry[1]:
                self._close(group, entry)
        self._open = {}

    def abort(self, exc: BaseException) -> None:
        for entry in self._open.values():
            if isinstance(entry[2], _JsonlGroupFile):
                entry[2].abort(exc)
        self._open = {}


class _JsonlGroupFile:
    """One output file of JSON lines, gzip with a fixed header (mtime 0, no name): same documents, same bytes."""

    HOLD = 1 << 20

    def __init__(self, path: str, level: int):
        self.path, self.level = path, level
        self._lines: List[bytes] = []
        self._size = 0
        self._context = None
        self._gz = None

    def add(self, doc: Document, raw: Optional[bytes] = None) -> None:
        line = raw if raw is not None else json_line(doc.to_dict())
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self.HOLD:
            self._spill()

    def _spill(self) -> None:
        if self._gz is None:
            self._context = atomic_write(self.path)
            handle = self._context.__enter__()
            self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0, compresslevel=self.level)
        self._gz.write(b"".join(self._lines))
        self._lines, self._size = [], 0

    def close(self) -> None:
        self._spill()
        self._gz.close()
        self._context.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        if self._context is not None:
            try:
                self._context.__exit__(type(exc), exc, exc.__traceback__)
            except BaseException:  # noqa: BLE001
                pass
