"""Common Crawl input: WARC, WARC.gz, ARC and WET files, read in parallel by record offset.

First pass (one task per file, streaming): warcio walks the file without parsing HTTP and records
each record's offset, length, type and WARC headers as a :class:`RecordRef`. The refs are reshuffled
over workers, and the ``extract`` step (:class:`ExtractWarcRecord`) seeks to each record and turns it
into a :class:`Document` (or a drop reason). So one big WARC is processed by many workers, and no step
holds more than one record in memory.

Where the scan hits a corrupt region (a truncated or damaged gzip member, garbage between records), it
emits a RecordRef carrying the error (the extract step sends it to the dead-letter output with the
file and offset) and resyncs at the next record boundary, so the rest of the file is still read.

:func:`read_records` is the other way in, for the streaming passes of the CCNet stage: one sequential
read of a file that yields each record whole (:class:`LoadedRecord`, decompressed once, at most
``keep`` bytes of it held), with the same error refs and resync.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import zlib
from typing import Iterator, Optional

from corpusmill.core.document import Document, make_id
from corpusmill.core.stats import NON_DOCUMENT_WARC_TYPES
from corpusmill.filters import html as html_text
from corpusmill.filters.base import Filter, Verdict, drop, keep
from corpusmill.filters.charset import MAX_REPLACEMENT_SHARE, UNDECODABLE, replacement_share
from corpusmill.io.documents import SplitAndRead
from corpusmill.io.files import open_input
from corpusmill.io.http import fetch_range, is_http

# WARC record types that never carry a document.
_NON_DOCUMENT_TYPES = frozenset(NON_DOCUMENT_WARC_TYPES)
_GZIP_MAGIC = b"\x1f\x8b\x08"
_WARC_MAGIC = re.compile(rb"(?:^|\n)(WARC/1\.[01]\r?\n)")
_RESYNC_WINDOW = 1 << 20


@dataclasses.dataclass(slots=True)
class RecordRef:
    """Where one WARC record is, and what its WARC headers say (no payload)."""

    path: str
    offset: int
    length: int = 0
    warc_type: str = ""
    uri: str = ""
    date: str = ""
    record_id: str = ""
    digest: str = ""
    error: str = ""  # set for a region the scan could not read

    @property
    def location(self) -> str:
        return f"{self.path}@{self.offset}"

    @property
    def nbytes(self) -> int:
        return self.length


def _open_raw(path: str):
    return open_input(path)


def _find_next_record(handle, start: int, gz: bool) -> Optional[int]:
    """The offset of the next record boundary at or after ``start`` (gzip member or ``WARC/1.x``)."""
    pos = start
    while True:
        handle.seek(pos)
        chunk = handle.read(_RESYNC_WINDOW + 16)
        if not chunk:
            return None
        if gz:
            i = chunk.find(_GZIP_MAGIC)
            if i >= 0:
                return pos + i
        else:
            m = _WARC_MAGIC.search(chunk)
            if m:
                return pos + m.start(1)
        if len(chunk) <= 16:
            return None
        pos += len(chunk) - 16


def scan_records(path: str) -> Iterator[RecordRef]:
    """Yield a RecordRef per record of one WARC/ARC/WET file; corrupt regions become error refs, and a
    file that cannot be read (a 404, a network that stays down) becomes one error ref from where the
    reading stopped."""
    last = 0
    try:
        with _open_raw(path) as handle:
            gz = handle.read(3) == _GZIP_MAGIC
            handle.seek(0)
            for ref in _scan_gzip(path, handle) if gz else _scan_plain(path, handle):
                last = ref.offset + ref.length
                yield ref
    except Exception as exc:  # noqa: BLE001 - the file (or the rest of it) cannot be read
        yield RecordRef(
            path=path,
            offset=last,
            warc_type="corrupt",
            error=f"cannot read {path} from byte {last}: {type(exc).__name__}: {str(exc)[:300]}",
        )


def _ref_from_headers(path: str, offset: int, length: int, record) -> RecordRef:
    headers = record.rec_headers
    return RecordRef(
        path=path,
        offset=offset,
        length=length,
        warc_type=(record.rec_type or "").lower(),
        uri=headers.get_header("WARC-Target-URI") or "",
        date=headers.get_header("WARC-Date") or "",
        record_id=headers.get_header("WARC-Record-ID") or "",
        digest=headers.get_header("WARC-Payload-Digest") or headers.get_header("WARC-Block-Digest") or "",
    )


def _error_ref(path: str, start: int, end: int, exc: Exception) -> RecordRef:
    return RecordRef(
        path=path,
        offset=start,
        length=max(0, end - start),
        warc_type="corrupt",
        error=f"unreadable WARC region at byte {start} ({type(exc).__name__}: {str(exc)[:300]})",
    )


_HEAD_BYTES = 1 << 16  # WARC + HTTP headers fit in this; the payload is not kept by the scan


def _gzip_member(handle, pos: int, keep: int = _HEAD_BYTES):
    """Decompress the gzip member at ``pos``; returns (compressed length, content length, first bytes).

    Raises on a damaged member (bad data, CRC, truncation). Memory: one read buffer plus ``keep`` bytes.
    """
    handle.seek(pos)
    inflater = zlib.decompressobj(wbits=31)
    head = bytearray()
    fed = produced = 0
    while not inflater.eof:
        chunk = handle.read(1 << 16)
        if not chunk:
            raise EOFError("gzip member is truncated (the file ends inside it)")
        fed += len(chunk)
        out = inflater.decompress(chunk)
        produced += len(out)
        if len(head) < keep:
            head += out[: keep - len(head)]
    return fed - len(inflater.unused_data), produced, bytes(head)


def _check_one_record(head: bytes, produced: int, record) -> None:
    """A WARC.gz member must hold exactly one record; a whole-file gzip holds them all."""
    if not head.startswith(b"WARC/"):
        return
    header_len = head.find(b"\r\n\r\n") + 4
    declared = int(record.rec_headers.get_header("Content-Length") or 0)
    if header_len > 3 and produced > header_len + declared + 8:
        raise ValueError("records are not individually gzipped (fix the file with `warcio recompress IN OUT`)")


def _scan_gzip(path: str, handle) -> Iterator[RecordRef]:
    """Record-per-member gzip (the WARC.gz convention): walk members ourselves, so a damaged member
    is found exactly (warcio would print the zlib error and carry on with garbage)."""
    from warcio.recordloader import ArcWarcRecordLoader

    loader = ArcWarcRecordLoader(arc2warc=True)
    size = _file_size(handle)
    pos = 0
    while pos < size:
        try:
            length, produced, head = _gzip_member(handle, pos)
        except (zlib.error, EOFError, OSError) as exc:
            nxt = _find_next_record(handle, pos + 1, gz=True)
            end = nxt if nxt is not None else size
            yield _error_ref(path, pos, end, exc)
            pos = end
            continue
        if head.strip():  # members holding only blank lines are padding, not records
            try:
                record = loader.parse_record_stream(io.BytesIO(head), no_record_parse=True)
                _check_one_record(head, produced, record)
                yield _ref_from_headers(path, pos, length, record)
            except Exception as exc:  # noqa: BLE001 - valid gzip, but not one WARC/ARC record
                yield _error_ref(path, pos, pos + length, exc)
        pos += length


def _scan_plain(path: str, handle) -> Iterator[RecordRef]:
    """Uncompressed WARC/ARC: warcio walks it; on a parse error, resync at the next ``WARC/1.x``."""
    from warcio.archiveiterator import ArchiveIterator

    size = _file_size(handle)
    pos = 0
    while pos < size:
        handle.seek(pos)
        it = ArchiveIterator(handle, no_record_parse=True, arc2warc=True)
        last_end = pos
        try:
            for record in it:
                offset = it.get_record_offset()
                it.read_to_end(record)
                length = it.get_record_length()
                if length <= 0 or offset < last_end:
                    raise ValueError("cannot place records in this file")
                last_end = offset + length
                yield _ref_from_headers(path, offset, length, record)
            return
        except Exception as exc:  # noqa: BLE001 - corrupt region: report it, then resync
            nxt = _find_next_record(handle, last_end + 1, gz=False)
            end = nxt if nxt is not None else size
            yield _error_ref(path, last_end, end, exc)
            pos = end


def _file_size(handle) -> int:
    handle.seek(0, os.SEEK_END)
    return handle.tell()


# -- one sequential pass: every record whole ---------------------------------------------------------
@dataclasses.dataclass(slots=True)
class LoadedRecord:
    """One record read whole by :func:`read_records`: its decompressed bytes (WARC headers, HTTP headers,
    payload). ``truncated``: the record was larger than the reader keeps, so ``data`` holds its start only
    (every header is there; the extract step drops such a page as ``too_large``)."""

    ref: RecordRef
    data: bytes
    truncated: bool = False
    record: object = None  # the WARC headers parsed (warcio), its stream at the block: a WET record's text

    @property
    def path(self) -> str:
        return self.ref.path

    @property
    def location(self) -> str:
        return self.ref.location

    @property
    def nbytes(self) -> int:
        return self.ref.length


class _Stream:
    """A forward reader over a raw handle that knows its offset and can give back what it read too far
    (the bytes after a gzip member's end), so members are read without seeking."""

    def __init__(self, handle):
        self.handle = handle
        self.pos = 0
        self._pending = b""

    def read(self, n: int = 1 << 16) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
        else:
            data = self.handle.read(n)
        self.pos += len(data)
        return data

    def unread(self, data: bytes) -> None:
        if data:
            self._pending = data + self._pending
            self.pos -= len(data)

    def seek(self, pos: int) -> None:
        self.handle.seek(pos)
        self.pos, self._pending = pos, b""


def _next_member(stream: _Stream, keep: int):
    """The gzip member at the stream's position, read once: (offset, compressed length, decompressed
    length, its first ``keep`` bytes); None at the end. Raises on a damaged or cut member."""
    start = stream.pos
    first = stream.read()
    if not first:
        return None
    inflater = zlib.decompressobj(wbits=31)
    kept = bytearray()
    produced = 0
    chunk = first
    while True:
        out = inflater.decompress(chunk)
        produced += len(out)
        if len(kept) < keep:
            kept += out[: keep - len(kept)]
        if inflater.eof:
            stream.unread(inflater.unused_data)
            return start, stream.pos - start, produced, bytes(kept)
        chunk = stream.read()
        if not chunk:
            raise EOFError("gzip member is truncated (the file ends inside it)")


def _read_gzip(path: str, handle, keep: int) -> Iterator[object]:
    from warcio.recordloader import ArcWarcRecordLoader

    loader = ArcWarcRecordLoader(arc2warc=True)
    stream = _Stream(handle)
    while True:
        pos = stream.pos
        try:
            member = _next_member(stream, keep)
        except (zlib.error, EOFError, OSError) as exc:
            nxt = _find_next_record(handle, pos + 1, gz=True)
            end = nxt if nxt is not None else max(stream.pos, pos)
            yield _error_ref(path, pos, end, exc)
            if nxt is None:
                return
            stream.seek(nxt)
            continue
        if member is None:
            return
        offset, length, produced, data = member
        if not data.strip():  # members holding only blank lines are padding, not records
            continue
        try:
            record = loader.parse_record_stream(io.BytesIO(data), no_record_parse=True)
            _check_one_record(data, produced, record)
            ref = _ref_from_headers(path, offset, length, record)
        except Exception as exc:  # noqa: BLE001 - valid gzip, but not one WARC/ARC record
            yield _error_ref(path, offset, offset + length, exc)
            continue
        yield LoadedRecord(ref, data, produced > len(data), record)


def _read_plain(path: str, handle, keep: int) -> Iterator[object]:
    """Uncompressed WARC/ARC: the scan's references, each record's bytes read at its offset."""
    with _open_raw(path) as body:
        for ref in _scan_plain(path, handle):
            if ref.error:
                yield ref
                continue
            body.seek(ref.offset)
            data = body.read(min(ref.length, keep))
            yield LoadedRecord(ref, data, ref.length > len(data))


def read_records(path: str, keep: int) -> Iterator[object]:
    """Every record of one WARC/ARC/WET file, in file order, in one sequential read: a
    :class:`LoadedRecord` per record (at most ``keep`` bytes of it held), a :class:`RecordRef` with
    ``error`` for a corrupt region (the read resyncs at the next record) or for a file that cannot be
    read from some byte on (a 404, a network that stays down)."""
    last = 0
    try:
        with _open_raw(path) as handle:
            gz = handle.read(3) == _GZIP_MAGIC
            handle.seek(0)
            for item in _read_gzip(path, handle, keep) if gz else _read_plain(path, handle, keep):
                ref = item.ref if isinstance(item, LoadedRecord) else item
                last = ref.offset + ref.length
                yield item
    except Exception as exc:  # noqa: BLE001 - the file (or the rest of it) cannot be read
        yield RecordRef(
            path=path,
            offset=last,
            warc_type="corrupt",
            error=f"cannot read {path} from byte {last}: {type(exc).__name__}: {str(exc)[:300]}",
        )


def _whole_file(path: str):
    return [path]


class ReadWarcRecords(SplitAndRead):
    """Files -> RecordRefs: one scan task per file, then the records spread over workers."""

    def __init__(self, files, skipped=()):
        super().__init__(files, _whole_file, scan_records, spread_records=True, skipped=skipped)


_STATUS_CODE = re.compile(r"^[1-5][0-9][0-9]$")


def _check_http_status_line(http_headers) -> None:
    """warcio reads a garbage status line leniently; corpusmill calls it a broken record."""
    protocol = (http_headers.protocol or "").upper()
    if not protocol.startswith("HTTP/") or not _STATUS_CODE.match(http_headers.get_statuscode() or ""):
        line = f"{http_headers.protocol} {http_headers.statusline}"[:100]
        raise ValueError(f"broken HTTP header: status line {line!r} is not 'HTTP/x.y NNN ...'")


class ExtractWarcRecord(Filter):
    """The ``extract`` step: a RecordRef -> a Document with the page's main text.

    Drops (reason): ``warc_<type>`` for records that carry no document (request, metadata, warcinfo,
    revisit), ``http_status`` (not 200), ``not_html`` (images, PDFs, ...), ``too_large`` (payload over
    ``max_bytes``; never read into memory), ``no_main_text`` (nothing left after boilerplate removal).
    A record that cannot be parsed (broken HTTP header, corrupt gzip) raises, which sends it to the
    dead-letter output with its file and offset.
    """

    name = "extract"
    transient = ("_local",)

    def __init__(
        self,
        source: str = "cc",
        max_bytes: int = 5 << 20,
        fast: bool = False,
        extractor: str = "trafilatura",
        max_tags: int = html_text.MAX_PAGE_TAGS,
    ):
        if extractor not in html_text.EXTRACTORS:
            raise ValueError(f"unknown extractor {extractor!r}; use one of {', '.join(html_text.EXTRACTORS)}")
        self.source = source
        self.max_bytes = max_bytes
        self.fast = fast
        self.extractor = extractor
        self.max_tags = max_tags
        self._local = None

    def __deepcopy__(self, memo):
        return ExtractWarcRecord(self.source, self.max_bytes, self.fast, self.extractor, self.max_tags)

    def setup(self) -> None:
        import threading

        if self._local is None:
            self._local = threading.local()

    def _open(self, path: str):
        """This thread's open handle on ``path``: the runner shares one filter between the threads of a
        worker (Dataflow runs several bundles per process), so no handle is shared between threads."""
        if self._local is None:  # used directly, without setup()
            self.setup()
        local = self._local
        if getattr(local, "path", None) != path:
            if getattr(local, "handle", None) is not None:
                local.handle.close()
            local.handle, local.path = _open_raw(path), path
        return local.handle

    def __call__(self, element) -> Verdict:
        loaded = element if isinstance(element, LoadedRecord) else None
        ref = loaded.ref if loaded is not None else element
        if ref.error:
            raise IOError(ref.error)
        if ref.warc_type in _NON_DOCUMENT_TYPES:
            return drop(f"warc_{ref.warc_type}")
        if ref.warc_type not in ("response", "resource", "conversion"):
            return drop("warc_other")
        from warcio.archiveiterator import ArchiveIterator

        if loaded is not None and loaded.record is not None and ref.warc_type == "conversion":
            record = loaded.record  # a WET record: its WARC headers were read by the pass; the text follows
        else:
            if loaded is not None:  # read whole by a sequential pass (read_records)
                handle = io.BytesIO(loaded.data)
            elif is_http(ref.path) and ref.length:  # one ranged GET per record, not a stream to the file's end
                handle = io.BytesIO(fetch_range(ref.path, ref.offset, ref.offset + ref.length))
            else:
                handle = self._open(ref.path)
                handle.seek(ref.offset)
            record = next(iter(ArchiveIterator(handle, arc2warc=True)))
        uri = ref.uri or record.rec_headers.get_header("WARC-Target-URI") or ""
        location = f"{ref.path}@{ref.offset}"
        doc_id = make_id(self.source, ref.record_id or f"{os.path.basename(ref.path)}@{ref.offset}")
        meta = {"warc_digest": ref.digest} if ref.digest else {}

        if ref.warc_type == "conversion":  # WET: the text is already extracted
            body = record.content_stream().read(self.max_bytes + 1)
            if len(body) > self.max_bytes:
                return drop("too_large")
            text = body.decode("utf-8", "replace")
            if not text.strip():
                return drop("no_main_text")
            if replacement_share(text) > MAX_REPLACEMENT_SHARE:  # not UTF-8 after all: never mojibake
                return drop(UNDECODABLE)
            return keep(Document(doc_id, text, self.source, uri, ref.date, location, meta))

        if record.http_headers is not None and record.rec_type == "response":
            _check_http_status_line(record.http_headers)
            status = record.http_headers.get_statuscode()
            if status != "200":
                return drop("http_status")
            content_type = record.http_headers.get_header("Content-Type")
        else:  # resource records (and ARC files without HTTP) declare the type in the WARC header
            content_type = record.rec_headers.get_header("Content-Type")
        if not html_text.is_html(content_type):
            return drop("not_html")
        body = record.content_stream().read(self.max_bytes + 1)
        if len(body) > self.max_bytes:
            return drop("too_large")
        page, charset = html_text.decode_html(body, content_type)
        if page is None:
            return drop(UNDECODABLE)
        if self.max_tags and html_text.markup_size(page) > self.max_tags:  # deterministic, unlike a time limit
            return drop("too_complex")
        text = html_text.extract_main_text(page, uri, fast=self.fast, extractor=self.extractor)
        if text is None:
            return drop("no_main_text")
        if replacement_share(text) > MAX_REPLACEMENT_SHARE:
            return drop(UNDECODABLE)
        meta["charset"] = charset
        return keep(Document(doc_id, text, self.source, uri, ref.date, location, meta))
