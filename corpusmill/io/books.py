"""Reading books: one per .txt(.gz/.bz2) file, or one per JSON line with a 'text' field."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import os
from typing import Iterator, List, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from corpusmill.core.progress import expect_input
from corpusmill.filters.gutenberg import BookRecord
from corpusmill.io.documents import create_items, with_skipped

TEXT_SUFFIXES = (".txt", ".txt.gz", ".txt.bz2")
JSON_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".jsonl.bz2")
_CHUNK = 1 << 20


@contextlib.contextmanager
def open_decompressed(path: str):
    """A binary file object over ``path`` (local or gs://), decompressed by its suffix, whose
    ``read(n)`` / ``readline(limit)`` never hold more than asked."""
    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    low = path.lower()
    try:
        if low.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as fh:
                yield fh
        elif low.endswith(".bz2"):
            with bz2.BZ2File(raw, mode="rb") as fh:
                yield fh
        else:
            yield raw
    finally:
        raw.close()


def book_keys(files: Sequence[str]) -> List[tuple]:
    """``(path, key)``: a book's key is its path relative to the inputs' common directory, so ids do not
    depend on where the collection sits (only on its layout)."""
    if not files:
        return []
    local = ["://" not in f for f in files]
    root = os.path.commonpath([os.path.dirname(f) for f in files]) if all(local) else ""
    out = []
    for f in files:
        key = os.path.relpath(f, root) if root else f.split("://", 1)[-1]
        out.append((f, key.replace(os.sep, "/")))
    return out


def _read_capped(handle, limit: int) -> tuple:
    """Read up to ``limit`` bytes; returns (data, too_large)."""
    data = handle.read(limit + 1)
    return (data[:limit], True) if len(data) > limit else (data, False)


def read_book_file(item: tuple, max_bytes: int) -> Iterator[BookRecord]:
    """One file -> its book records (runs after the Reshuffle, on the worker that reads the file)."""
    path, key = item
    low = path.lower()
    try:
        size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
        if low.endswith(TEXT_SUFFIXES):
            if size > max_bytes:  # decided from the size: the file is never opened
                yield BookRecord("txt", path, key, path, size, None, "", True)
                return
            with open_decompressed(path) as fh:
                data, too_large = _read_capped(fh, max_bytes)
            yield BookRecord(
                "txt", path, key, path, size if too_large else len(data), None if too_large else data, "", too_large
            )
            return
        yield from _read_json_lines(path, key, max_bytes)
    except Exception as exc:  # noqa: BLE001 - unreadable file: a dead letter naming it
        yield BookRecord("txt", path, key, path, 0, None, f"{type(exc).__name__}: {exc}"[:1000])


def _read_json_lines(path: str, key: str, max_bytes: int) -> Iterator[BookRecord]:
    lineno = 0
    with open_decompressed(path) as fh:
        while True:
            lineno += 1
            line = fh.readline(max_bytes + 1)
            if not line:
                return
            where = f"{path}:{lineno}"
            if len(line) > max_bytes and not line.endswith(b"\n"):
                size = len(line)
                while True:  # skip the rest of the line without holding it
                    chunk = fh.readline(_CHUNK)
                    size += len(chunk)
                    if not chunk or chunk.endswith(b"\n"):
                        break
                yield BookRecord("json", path, f"{key}:{lineno}", where, size, None, "", True)
                continue
            if not line.strip():
                continue
            yield BookRecord("json", path, f"{key}:{lineno}", where, len(line), line)


class ReadBooks(beam.PTransform):
    def __init__(self, files: Sequence[str], max_bytes: int):
        super().__init__()
        self.items = book_keys(files)
        self.skipped = list(getattr(files, "skipped", ()))  # links and unreadable entries: counted by ``read``
        expect_input(files)
        self.max_bytes = max_bytes

    def expand(self, pbegin):
        cap = self.max_bytes
        records = create_items(pbegin, self.items, "Files", spread=True) | "ReadFiles" >> beam.FlatMap(
            lambda box: read_book_file(box.value, cap)
        )
        return with_skipped(pbegin, records, self.skipped)
