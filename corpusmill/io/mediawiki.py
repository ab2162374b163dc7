"""Reading MediaWiki XML dumps in parallel: bz2 stream boundaries, byte ranges of plain XML, the
<siteinfo> header, and page records for the Wikipedia stage.
"""

from __future__ import annotations

import bisect
import bz2
import dataclasses
import functools
import os
import re
import zlib
from typing import Iterator, List, Optional, Sequence, Tuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from corpusmill.core.files import check_name
from corpusmill.filters.wikitext import (
    PageRecord,
    SiteInfo,
    hardened_parser,
)
from corpusmill.io.documents import SplitAndRead

SUFFIXES = (".xml", ".xml.bz2", ".xml.gz", ".bz2", ".gz")
_READ = 1 << 20
_MAX_HEADER = 16 << 20
_BZ2_STREAM = re.compile(rb"BZh[1-9](?:1AY&SY|\x17rE8P\x90)")


@dataclasses.dataclass(slots=True)
class ChunkRef:
    """A piece of one dump that one worker reads: bytes ``[start, end)`` of the (compressed) file."""

    path: str
    kind: str  # "xml" (plain, byte range), "bz2" (range of whole bz2 streams), "gz" (whole file)
    start: int
    end: int
    site: Optional[SiteInfo] = None
    error: str = ""

    @property
    def location(self) -> str:
        return f"{self.path}@{self.start}"


# ---------------------------------------------------------------------------------------------------
# opening and decompressing
# ---------------------------------------------------------------------------------------------------
def _kind(path: str) -> str:
    low = path.lower()
    if low.endswith(".bz2"):
        return "bz2"
    if low.endswith(".gz"):
        return "gz"
    return "xml"


def _open_raw(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _size(path: str) -> int:
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


class TruncatedInput(IOError):
    pass


class DamagedStream(IOError):
    """A bz2 stream that does not decompress; ``start`` is its compressed offset."""

    def __init__(self, start: int, cause: BaseException):
        super().__init__(f"the bz2 stream starting at byte {start} is damaged ({type(cause).__name__}: {cause})")
        self.start = start


def next_bz2_stream(path: str, after: int) -> Optional[int]:
    """The offset of the first bz2 stream header after byte ``after``, or None."""
    with _open_raw(path) as fh:
        fh.seek(after + 1)
        pos, prev = after + 1, b""
        while True:
            data = fh.read(8 << 20)
            if not data:
                return None
            buf = prev + data
            m = _BZ2_STREAM.search(buf)
            if m:
                return pos - len(prev) + m.start()
            prev = buf[-16:]
            pos += len(data)


def _decompressed(path: str, kind: str, start: int, end: int, on_stream=None) -> Iterator[Tuple[bytes, bool]]:
    """Yield ``(data, inside)`` pieces of the decompressed stream from ``start``.

    bz2: ``on_stream(offset)`` is called with each stream's compressed offset before its first data.

    ``inside`` is True while the data comes from the chunk's own range (plain: bytes before ``end``;
    bz2: streams that start before ``end``) and False afterwards, when the reader only finishes a page.
    Raises :class:`TruncatedInput` (or the decompressor's error) on a damaged or truncated file.
    """
    with _open_raw(path) as fh:
        fh.seek(start)
        if kind == "xml":
            pos = start
            while True:
                data = fh.read(_READ)
                if not data:
                    return
                if pos < end <= pos + len(data):
                    yield data[: end - pos], True
                    if pos + len(data) > end:
                        yield data[end - pos :], False
                else:
                    yield data, pos < end
                pos += len(data)
        if kind == "gz":
            dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while True:
                data = fh.read(_READ)
                if not data:
                    if not dec.eof:
                        raise TruncatedInput("gzip stream ends early (truncated file)")
                    return
                while data:
                    out = dec.decompress(data)
                    if out:
                        yield out, True
                    data = dec.unused_data
                    if dec.eof and data:  # concatenated gzip members
                        dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    elif dec.eof:
                        break
            return
        # bz2: a sequence of streams; the streams that start before ``end`` are the chunk's own
        pos = start  # compressed offset of the current stream's start
        consumed = 0  # compressed bytes fed to the current decompressor
        dec = bz2.BZ2Decompressor()
        inside = start < end
        pending = b""
        if on_stream is not None:
            on_stream(pos)
        while True:
            data = pending or fh.read(_READ)
            pending = b""
            if not data:
                if consumed and not dec.eof:
                    raise TruncatedInput(f"bz2 stream starting at byte {pos} ends early (truncated file)")
                return
            try:
                out = dec.decompress(data)
            except (OSError, EOFError, ValueError) as exc:  # a bad block: the reader goes on at the next stream
                raise DamagedStream(pos, exc) from None
            consumed += len(data)
            if out:
                yield out, inside
            if dec.eof:
                rest = dec.unused_data
                pos = pos + consumed - len(rest)
                consumed = 0
                dec = bz2.BZ2Decompressor()
                if pos >= end:
                    inside = False
                pending = rest
                if on_stream is not None:
                    on_stream(pos)


# ---------------------------------------------------------------------------------------------------
# the dump header
# ---------------------------------------------------------------------------------------------------
def _detect_encoding(head: bytes) -> str:
    if head.startswith(b"\xff\xfe"):
        return "utf-16-le"
    if head.startswith(b"\xfe\xff"):
        return "utf-16-be"
    if head.startswith(b"<\x00?\x00"):
        return "utf-16-le"
    if head.startswith(b"\x00<\x00?"):
        return "utf-16-be"
    m = re.match(rb"(?:\xef\xbb\xbf)?\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']", head)
    return m.group(1).decode("ascii").lower() if m else "utf-8"


def _codec(encoding: str) -> str:
    """The codec that encodes markers as they appear after the byte order mark."""
    enc = encoding.lower().replace("_", "-")
    if enc in ("utf-16", "utf16"):
        return "utf-16-le"  # refined from the BOM by _detect_encoding; bare utf-16 declarations are LE
    return enc


_DUMP_NAME = re.compile(r"^([a-z][a-z0-9_]*?)wiki-")  # enwiki-20240401-pages-articles..., zh_yuewiki-...


def _site_from_name(path: str, encoding: str, has_pages: bool) -> SiteInfo:
    """A dump without ``<siteinfo>`` (a hand-cut slice): the wiki from Wikimedia's file name, ``<db>wiki-DATE-...``.
    The local names of the File and Category namespaces are then unknown (the English ones still apply)."""
    name = os.path.basename(path.rstrip("/"))
    m = _DUMP_NAME.match(name)
    if not has_pages or m is None:
        what = "pages but no <siteinfo> header" if has_pages else "no <siteinfo> header and no <page>"
        raise ValueError(
            f"{path}: {what}; is this a MediaWiki XML dump (pages-articles.xml[.bz2])? A dump without "
            f"<siteinfo> is read when its name says the wiki, as Wikimedia names them "
            f"(enwiki-YYYYMMDD-pages-articles.xml.bz2)"
        )
    lang = m.group(1).replace("_", "-")
    return SiteInfo(
        dbname=f"{m.group(1)}wiki",
        language=lang,
        encoding=encoding,
        base_url=f"https://{lang}.wikipedia.org/wiki/Main_Page",
        no_text_namespaces=(),
    )


def read_site_info(path: str, kind: str) -> SiteInfo:
    """Parse the dump's ``<mediawiki>`` start tag and ``<siteinfo>`` (hardened parser)."""
    from lxml import etree

    head = b""
    for data, _inside in _decompressed(path, kind, 0, 1 << 62):
        head += data
        if len(head) >= 4096 or len(head) > _MAX_HEADER:
            enc = _codec(_detect_encoding(head))
            page = "<page>".encode(enc)
            if page in head or "</siteinfo>".encode(enc) in head or len(head) > _MAX_HEADER:
                break
    encoding = _codec(_detect_encoding(head))
    marker = "<page>".encode(encoding)
    cut = head.find(marker)
    header = head[:cut] if cut >= 0 else head[:_MAX_HEADER]
    close = "</siteinfo>".encode(encoding)
    if close not in header:
        return _site_from_name(path, encoding, has_pages=cut >= 0)
    header = header[: header.find(close) + len(close)]
    text = header.decode(encoding, "strict").lstrip("\ufeff")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ValueError(
            f"{path}: the dump declares a DTD/entities; MediaWiki dumps have none, so the file is "
            f"refused (XXE / entity-expansion protection)"
        )
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text) + "</mediawiki>"
    try:
        root = etree.fromstring(text, hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"{path}: malformed dump header ({exc})") from None
    lang = root.get("{http://www.w3.org/XML/1998/namespace}lang") or ""
    site = SiteInfo(encoding=encoding)
    no_text = []
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
        if tag == "dbname":
            site.dbname = (el.text or "").strip()
        elif tag == "base":
            site.base_url = (el.text or "").strip()
        elif tag == "namespace" and el.get("key") in ("6", "14") and el.text:
            no_text.append(el.text.strip().lower())
    site.no_text_namespaces = tuple(no_text)
    if not lang and site.dbname.endswith("wiki"):
        lang = site.dbname[:-4].replace("_", "-")
    # the language names the output folder (OUT/<lang>/): a BCP 47 tag, compared without case
    site.language = check_name(lang.lower(), f"{path}: the dump's language (xml:lang or dbname)") if lang else "unknown"
    return site


# ---------------------------------------------------------------------------------------------------
# scan: file -> chunk refs
# ---------------------------------------------------------------------------------------------------
def bz2_stream_offsets(path: str) -> List[int]:
    """Byte offsets where bz2 streams start (the file's start and every later stream header)."""
    offsets = [0]
    overlap = 16
    with _open_raw(path) as fh:
        pos = 0
        prev = b""
        while True:
            data = fh.read(8 << 20)
            if not data:
                break
            buf = prev + data
            base = pos - len(prev)
            for m in _BZ2_STREAM.finditer(buf):
                off = base + m.start()
                if off > offsets[-1]:
                    offsets.append(off)
            prev = buf[-overlap:]
            pos += len(data)
    return offsets


def scan_dump(path: str, split_bytes: int) -> Iterator[ChunkRef]:
    kind = _kind(path)
    try:
        size = _size(path)
        site = read_site_info(path, kind)
        if kind == "xml":
            starts = list(range(0, max(size, 1), split_bytes))
            bounds = [(s, min(s + split_bytes, size)) for s in starts]
        elif kind == "bz2":
            offsets = bz2_stream_offsets(path)
            groups, begin = [], 0
            for off in offsets[1:]:
                if off - begin >= split_bytes:
                    groups.append((begin, off))
                    begin = off
            groups.append((begin, size))
            bounds = groups
        else:
            bounds = [(0, size)]
    except Exception as exc:  # noqa: BLE001 - the whole file is unreadable: one failed ref
        yield ChunkRef(path, kind, 0, 0, None, f"{type(exc).__name__}: {exc}"[:1000])
        return
    for start, end in bounds:
        yield ChunkRef(path, kind, start, end, site)


# ---------------------------------------------------------------------------------------------------
# read: chunk -> page records
# ---------------------------------------------------------------------------------------------------
def _aligned_find(buf: bytes, marker: bytes, start: int, base: int, unit: int) -> int:
    i = buf.find(marker, start)
    while i >= 0 and (base + i) % unit:
        i = buf.find(marker, i + 1)
    return i


def read_chunk(ref: ChunkRef, max_page_bytes: int = 256 << 20) -> Iterator[PageRecord]:
    """The ``<page>`` fragments a chunk owns, one at a time (see the module docstring)."""
    site = ref.site
    if ref.error or site is None:
        yield PageRecord(ref.path, ref.location, SiteInfo(), b"", ref.error or "no dump header")
        return
    enc = site.encoding
    opener, closer = "<page>".encode(enc), "</page>".encode(enc)
    unit = 2 if enc.startswith("utf-16") else 1
    # UTF-16 markers must start at an even offset of the file (plain files; compressed chunks start on a
    # stream boundary, which Wikipedia's multistream dumps put between pages).
    align = ref.start if ref.kind == "xml" else 0

    # bz2: where each stream's data begins (decompressed offset, compressed stream offset), so a page is
    # named by its own stream (``path@bz2:STREAM+OFFSET``): stable whatever another stream holds
    streams: List[Tuple[int, int]] = []

    def stream_begins(pos: int) -> None:
        streams.append((base + len(buf), pos))

    def where(rel: int) -> str:
        if ref.kind == "xml":
            return f"{ref.path}@{ref.start + rel}"
        if ref.kind == "bz2" and streams:
            i = max(bisect.bisect_right([s[0] for s in streams], rel) - 1, 0)
            return f"{ref.path}@bz2:{streams[i][1]}+{rel - streams[i][0]}"
        return f"{ref.path}@{ref.kind}:{ref.start}+{rel}"

    buf = b""
    base = 0  # decompressed offset (from the chunk start) of buf[0]
    inside_limit: Optional[int] = None  # decompressed offset where the chunk's own data ends
    page_start: Optional[int] = None  # offset in buf of the current page's <page>
    search_from = 0
    source = _decompressed(ref.path, ref.kind, ref.start, ref.end, stream_begins)
    exhausted = False
    while True:
        if page_start is None:
            i = _aligned_find(buf, opener, search_from, align + base, unit)
            if i >= 0:
                if inside_limit is not None and base + i >= inside_limit:
                    return  # the next chunk's page
                page_start, search_from = i, i + len(opener)
                continue
            if exhausted:
                return
            keep_from = max(0, len(buf) - len(opener) + 1)
            buf, base, search_from = buf[keep_from:], base + keep_from, 0
        else:
            j = buf.find(closer, search_from)
            k = _aligned_find(buf, opener, page_start + len(opener), align + base, unit)
            at = where(base + page_start)
            if j >= 0 and (k < 0 or j < k):
                end = j + len(closer)
                yield PageRecord(ref.path, at, site, buf[page_start:end])
                buf, base = buf[end:], base + end
                page_start, search_from = None, 0
                continue
            if k >= 0:  # a new <page> before this one closed: malformed XML; go on from the next page
                yield PageRecord(
                    ref.path, at, site, b"", f"malformed XML: the <page> at {at} has no </page> before the next <page>"
                )
                buf, base = buf[k:], base + k
                page_start, search_from = None, 0
                continue
            if len(buf) - page_start > max_page_bytes:
                yield PageRecord(
                    ref.path,
                    at,
                    site,
                    b"",
                    f"page at {at} is larger than {max_page_bytes} bytes (or has no </page>); skipped",
                )
                base += len(buf) - len(opener)
                buf = buf[-len(opener) :]
                page_start, search_from = None, 0
                continue
            if exhausted:
                yield PageRecord(
                    ref.path, at, site, b"", f"the dump ends inside the page starting at {at} (truncated file)"
                )
                return
            search_from = max(page_start + len(opener), len(buf) - len(closer) + 1)
        try:
            data, inside = next(source)
        except StopIteration:
            exhausted = True
            continue
        except DamagedStream as exc:  # lose that stream only: go on at the next stream header
            at = where(base + (page_start if page_start is not None else len(buf)))
            resume = next_bz2_stream(ref.path, exc.start)
            if exc.start < ref.end:  # the chunk that owns the stream reports it (once)
                yield PageRecord(
                    ref.path,
                    at,
                    site,
                    b"",
                    f"unreadable dump data near {at}: {exc}; the pages of that stream are lost, "
                    f"reading goes on at " + (f"byte {resume}" if resume is not None else "the end"),
                )
            if resume is None or resume >= ref.end or exc.start >= ref.end:
                return
            buf, base, page_start, search_from, inside_limit = b"", 0, None, 0, None
            streams.clear()
            source = _decompressed(ref.path, ref.kind, resume, ref.end, stream_begins)
            continue
        except Exception as exc:  # noqa: BLE001 - truncated / corrupt compressed data
            at = where(base + (page_start if page_start is not None else len(buf)))
            yield PageRecord(
                ref.path,
                at,
                site,
                b"",
                f"unreadable dump data near {at} ({type(exc).__name__}: {exc}); the rest of this chunk is lost",
            )
            return
        if not inside and inside_limit is None:
            inside_limit = base + len(buf)
        buf += data


class ReadWikiPages(SplitAndRead):
    """Dump files -> :class:`PageRecord` (one per ``<page>``), spread over workers by chunk."""

    def __init__(self, files: Sequence[str], split_bytes: int = 64 << 20):
        super().__init__(files, functools.partial(scan_dump, split_bytes=int(split_bytes)), read_chunk)
