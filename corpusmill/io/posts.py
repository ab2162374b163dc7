"""Reading StackExchange ``Posts.xml`` (plain, .bz2, .7z): which files and sites, byte ranges, and
``<row/>`` records for the StackExchange stage.

A plain Posts.xml is cut into byte ranges that workers read at the same time. A compressed one (a
site's ``.7z``, a ``Posts.xml.bz2``) cannot be entered in the middle, so one streaming pass decompresses
it into plain chunks of about ``split_bytes`` under an unpack directory, each cut just before a
``<row`` line and knowing the line number it starts at; the chunks are then read at the same time like
byte ranges, and every row keeps the location it had when the file was read in one piece
(``FILE!Posts.xml:LINE``, ``FILE:LINE``). Only the decompression is serial: Stack Overflow's Posts.7z
(tens of GB of XML) is no longer parsed by one worker while the others wait.
"""

from __future__ import annotations

import bz2
import dataclasses
import functools
import io
import os
import queue
import re
import threading
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import SAFE_NAME, is_safe_name
from corpusmill.filters import stackexchange as se
from corpusmill.filters.stackexchange import MAX_ROW_BYTES  # noqa: F401 (the row cap; its config default)
from corpusmill.io.documents import SplitAndRead

SPLIT_BYTES = 64 << 20
_ROW = b"<row"
_BOM = b"\xef\xbb\xbf"
_STRUCTURE = (b"<?xml", b"<posts", b"</posts")
# Other tables of a site's dump: never read, silently skipped when a directory is given.
_OTHER_TABLES = ("badges", "comments", "posthistory", "postlinks", "tags", "users", "votes")


# -- which files, which site -------------------------------------------------------------------------
def posts_kind(path: str) -> Optional[str]:
    """``plain``, ``bz2`` or ``7z`` for a Posts file of a dump; None for another table's file."""
    name = os.path.basename(path).lower()
    if name.endswith(".7z"):
        stem = name[:-3]
        if any(stem.endswith(f"-{t}") for t in _OTHER_TABLES):
            return None
        return "7z"
    for suffix, kind in ((".xml.bz2", "bz2"), (".xml", "plain")):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            if stem == "posts" or stem.endswith("-posts"):
                return kind
            return None
    return None


def site_of(path: str) -> str:
    """``math.stackexchange.com.7z`` / ``stackoverflow.com-Posts.7z`` / ``<site>/Posts.xml[.bz2]`` -> site."""
    name = os.path.basename(path)
    lower = name.lower()
    for suffix in (".7z", ".xml.bz2", ".xml"):
        if lower.endswith(suffix):
            name, lower = name[: -len(suffix)], lower[: -len(suffix)]
            break
    if lower == "posts":
        return (
            os.path.basename(os.path.dirname(os.path.abspath(path)))
            if "://" not in path
            else path.rstrip("/").split("/")[-2]
        )
    if lower.endswith("-posts"):
        return name[: -len("-posts")]
    return name


def select_posts_files(files: Sequence[str]) -> List[Tuple[str, str, str]]:
    """``(path, site, kind)`` of every Posts file; errors for no file or a site given twice."""
    chosen, seen = [], {}
    for f in files:
        kind = posts_kind(f)
        if kind is None:
            if "posts" in os.path.basename(f).lower():
                raise CorpusmillError(
                    f"input {f}: a Posts file must be Posts.xml, Posts.xml.bz2 or a .7z "
                    f"archive (as the StackExchange dump publishes them)"
                )
            continue
        site = site_of(f)
        if not is_safe_name(site):  # the site names the output folder (OUT/<site>/)
            raise CorpusmillError(
                f"input {f}: its site name {site!r} cannot name an output folder (expected "
                f"{SAFE_NAME.pattern}, as the dump's sites are named: math.stackexchange.com); "
                f"rename the file or its folder"
            )
        if site in seen:
            raise CorpusmillError(f"site {site} is given twice ({seen[site]} and {f}); pass each site once")
        seen[site] = f
        chosen.append((f, site, kind))
    if not chosen:
        raise CorpusmillError(
            "no Posts.xml, Posts.xml.bz2 or .7z site archive among the inputs; point --input "
            "at a StackExchange dump (a directory of <site>.7z files or <site>/Posts.xml)"
        )
    return chosen


# -- reading -----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class _Range:
    path: str
    site: str
    kind: str  # plain, bz2, 7z (read whole), chunk (an unpacked piece of a compressed file), error
    start: int
    end: int  # -1: to the end (compressed files are read whole)
    first_line: int = 1  # chunk: the line number of its first line in the whole file
    where: str = ""  # chunk, error: the location prefix of the whole file (FILE!Posts.xml, FILE)
    error: str = ""


def split_posts_file(
    item: Tuple[str, str, str], split_bytes: int = SPLIT_BYTES, unpack_dir: Optional[str] = None
) -> Iterator[_Range]:
    path, site, kind = item
    if kind != "plain":
        if unpack_dir is None:
            yield _Range(path, site, kind, 0, -1)
        else:
            yield from unpack_to_chunks(item, split_bytes, unpack_dir)
        return
    size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
    for start in range(0, max(size, 1), split_bytes):
        yield _Range(path, site, kind, start, min(start + split_bytes, size))


def _read_line(handle, limit: int) -> Tuple[bytes, bool]:
    """One line (at most ``limit`` bytes kept); True when it was longer (the rest is skipped)."""
    line = handle.readline(limit + 1)
    if len(line) <= limit or line.endswith(b"\n"):
        return line, False
    while True:  # skip the rest of an overlong line without keeping it
        more = handle.readline(1 << 20)
        if not more or more.endswith(b"\n"):
            return line[:limit], True


def _plain_lines(rng: _Range, limit: int) -> Iterator[Tuple[str, Optional[bytes]]]:
    """Lines of one byte range. A range owns the lines from its first row start up to the first row
    start at or after its end (the first range also owns the file's header), so every line is read by
    exactly one range and a row spread over several lines is never cut."""
    with FileSystems.open(rng.path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        if rng.start > 0:
            handle.seek(rng.start - 1)
            if handle.read(1) != b"\n":
                _read_line(handle, limit)  # the rest of a line that started in the previous range
        pos = handle.tell()
        seeking = rng.start > 0
        while True:
            line, overlong = _read_line(handle, limit)
            if not line:
                return
            at_row = line.lstrip().startswith(_ROW)
            if seeking:
                if not at_row:  # still the previous range's row or trailer
                    pos = handle.tell()
                    continue
                if pos >= rng.end:  # no row starts in this range
                    return
                seeking = False
            elif pos >= rng.end and at_row:
                return
            yield f"{rng.path}@{pos}", (None if overlong else line)
            pos = handle.tell()


class _ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (lets a push decompressor feed readline)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


_END = object()


SEVENZIP_CHUNK = 8 << 20


def _is_posts_member(name: str) -> bool:
    return os.path.basename(name).lower() == "posts.xml"


def iter_7z_member(path: str, want=_is_posts_member, max_queue: int = 2) -> Iterator[bytes]:
    """Stream one member of a .7z archive as decompressed chunks of at most 8 MiB, holding at most
    ``max_queue`` chunks (plus one being decompressed) in memory.

    py7zr decompresses in a background thread into a writer object whose ``write`` puts each chunk on
    a bounded queue; this generator takes them off. Closing the generator stops the extraction.
    py7zr sizes its chunks by ``get_memory_limit()`` (up to 128 MB); corpusmill caps that at 8 MiB."""
    try:
        import py7zr
        import py7zr.py7zr as py7zr_impl
        from py7zr.io import Py7zIO, WriterFactory
    except ImportError:
        raise CorpusmillError("reading .7z archives needs the py7zr package: pip install py7zr") from None
    if (
        hasattr(py7zr_impl, "get_memory_limit")
        and getattr(py7zr_impl.get_memory_limit, "__name__", "") != "_capped_chunk"
    ):
        original = py7zr_impl.get_memory_limit

        def _capped_chunk():
            return min(original(), SEVENZIP_CHUNK)

        py7zr_impl.get_memory_limit = _capped_chunk

    chunks: "queue.Queue" = queue.Queue(maxsize=max_queue)
    stop = threading.Event()

    class _Stopped(Exception):
        pass

    class Sink(Py7zIO):
        def __init__(self):
            self._size = 0

        def write(self, s) -> int:
            data = bytes(s)
            while True:
                if stop.is_set():
                    raise _Stopped()
                try:
                    chunks.put(data, timeout=0.2)
                    break
                except queue.Full:
                    continue
            self._size += len(data)
            return len(data)

        def read(self, size=None) -> bytes:
            return b""

        def seek(self, offset, whence=0) -> int:
            return 0

        def flush(self) -> None:
            pass

        def size(self) -> int:
            return self._size

    class Factory(WriterFactory):
        def create(self, filename):
            return Sink()

    def work():
        try:
            with (
                FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw,
                py7zr.SevenZipFile(raw, mode="r") as archive,
            ):
                names = [n for n in archive.getnames() if want(n)]
                if not names:
                    raise ValueError(
                        f"{path}: the archive has no Posts.xml (members: {', '.join(archive.getnames()[:10])})"
                    )
                archive.extract(targets=[names[0]], factory=Factory())
            result = _END
        except _Stopped:
            result = _END
        except BaseException as exc:  # noqa: BLE001 - handed to the reading side
            result = exc
        while not stop.is_set():
            try:
                chunks.put(result, timeout=0.2)
                return
            except queue.Full:
                continue

    worker = threading.Thread(target=work, name=f"7z:{os.path.basename(path)}", daemon=True)
    worker.start()
    try:
        while True:
            item = chunks.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                chunks.get(timeout=0.2)
            except queue.Empty:
                pass


def _open_stream(path: str, kind: str):
    """(decompressed stream, underlying file or None, the location prefix of its lines)."""
    if kind == "bz2":
        raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        return bz2.BZ2File(raw), raw, path
    return io.BufferedReader(_ChunkReader(iter_7z_member(path)), 1 << 20), None, f"{path}!Posts.xml"


_ROW_START = re.compile(rb"\n[ \t]*<row")


def _cut(buf: bytes, at: int, limit: int) -> Optional[int]:
    """Where to end a chunk of ``buf`` at or after ``at``: just before a line that starts a row (so no
    row is split); past ``at + limit`` without one, after any line end. None: read more first."""
    m = _ROW_START.search(buf, max(0, at - 1))
    if m:
        return m.start() + 1
    if len(buf) > at + limit:
        nl = buf.rfind(b"\n")
        return nl + 1 if nl >= at else len(buf)
    return None


def unpack_to_chunks(
    item: Tuple[str, str, str], split_bytes: int, unpack_dir: str, limit: int = MAX_ROW_BYTES
) -> Iterator[_Range]:
    """One streaming pass over a compressed Posts.xml: plain chunk files of about ``split_bytes`` under
    ``unpack_dir``, one :class:`_Range` each (with the line number it starts at). A read error ends the
    pass: the complete lines before it are kept, then one ``error`` range says where and why."""
    from corpusmill.core.files import join
    from corpusmill.core.hashing import stable_hash
    from corpusmill.io.files import atomic_write

    path, site, kind = item
    stem = join(unpack_dir, f"{stable_hash(path) & ((1 << 64) - 1):016x}")
    line, n, buf = 1, 0, b""
    where = f"{path}!Posts.xml" if kind == "7z" else path

    def chunk(data: bytes) -> _Range:
        nonlocal line, n
        name = f"{stem}-{n:05d}.xml"
        with atomic_write(name) as handle:
            handle.write(data)
        rng = _Range(name, site, "chunk", 0, -1, first_line=line, where=where)
        line += data.count(b"\n")
        n += 1
        return rng

    stream = raw = None
    try:
        stream, raw, where = _open_stream(path, kind)
        while True:
            data = stream.read1(1 << 20)  # (what was decompressed before a read error is kept)
            buf += data
            while buf and (len(buf) >= split_bytes or not data):
                cut = _cut(buf, split_bytes, limit) if data else len(buf)
                if cut is None:
                    break
                yield chunk(buf[:cut])
                buf = buf[cut:]
            if not data:
                return
    except Exception as exc:  # noqa: BLE001 - a corrupt stream or archive: the lines before it stay
        done = buf.rfind(b"\n") + 1
        if done:
            yield chunk(buf[:done])
        at = f"{where}:{line - 1}" if line > 1 else f"{path}@0"
        yield _Range(
            path,
            site,
            "error",
            0,
            -1,
            where=at,
            error=(
                f"reading {at} failed after this point ({type(exc).__name__}: {str(exc)[:300]}); the rest of the "
                f"file is unreadable, the rows before it were kept"
            ),
        )
    finally:
        if stream is not None:
            stream.close()
        if raw is not None:
            raw.close()


def _chunk_lines(rng: _Range, limit: int) -> Iterator[Tuple[str, Optional[bytes]]]:
    """Lines of an unpacked chunk, named as in the whole file (``WHERE:LINE``)."""
    with FileSystems.open(rng.path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        lineno = rng.first_line
        while True:
            line, overlong = _read_line(handle, limit)
            if not line:
                return
            yield f"{rng.where}:{lineno}", (None if overlong else line)
            lineno += 1


def _stream_lines(rng: _Range, limit: int) -> Iterator[Tuple[str, Optional[bytes]]]:
    """Lines of a compressed Posts.xml, numbered from 1 (the location names the line)."""
    handle, raw, where = _open_stream(rng.path, rng.kind)
    try:
        lineno = 0
        while True:
            line, overlong = _read_line(handle, limit)
            if not line:
                return
            lineno += 1
            yield f"{where}:{lineno}", (None if overlong else line)
    finally:
        handle.close()
        if raw is not None:
            raw.close()


def group_rows(
    site: str, lines: Iterable[Tuple[str, Optional[bytes]]], limit: int = MAX_ROW_BYTES, path: str = ""
) -> Iterator[se.PostLine]:
    """Lines -> one :class:`PostLine` per row; stray content and read errors -> error records, each
    naming the file and line (``path`` names the file when nothing of it could be read)."""
    last = f"{path}@0" if path else site  # the last line read: where a read error is reported
    row: List[bytes] = []
    row_at = ""
    junk_at, junk_first, junk_n = "", b"", 0

    def junk_record():
        return se.PostLine(
            site,
            junk_at,
            error=(
                f"{junk_at}: {junk_n} line(s) that are not <row .../> elements, starting with "
                f"{junk_first[:120]!r}; a Posts.xml holds only <row/> lines (a DOCTYPE or ENTITY declaration is "
                f"refused: entities are never expanded)"
            ),
        )

    lines = iter(lines)
    while True:
        try:
            item = next(lines)
        except StopIteration:
            break
        except Exception as exc:  # noqa: BLE001 - corrupt compressed stream, archive error
            if row:
                yield se.PostLine(site, row_at, error=f"{row_at}: the row is cut off by a read error")
            where = row_at or junk_at or last
            yield se.PostLine(
                site,
                where,
                error=f"reading {where} failed after this point "
                f"({type(exc).__name__}: {str(exc)[:300]}); the rest of the file "
                f"is unreadable, the rows before it were kept",
            )
            return
        where, line = item
        last = where
        if line is None:
            if row:
                yield se.PostLine(site, row_at, error=f"{row_at}: row longer than {limit} bytes; skipped")
                row = []
            yield se.PostLine(site, where, error=f"{where}: a line longer than {limit} bytes; skipped")
            continue
        stripped = line.strip()
        if stripped.startswith(_BOM):  # real dumps start with a UTF-8 byte-order mark (and end lines CRLF)
            stripped = stripped[len(_BOM) :].lstrip()
        if row and stripped.startswith(_ROW):  # the open row never closed: report it, start the new one
            yield se.PostLine(site, row_at, error=f"{row_at}: the row is not closed (no '/>') before the next row")
            row = []
        if row:
            row.append(line)
            if sum(map(len, row)) > limit:
                yield se.PostLine(site, row_at, error=f"{row_at}: row longer than {limit} bytes; skipped")
                row = []
            elif stripped.endswith(b"/>"):
                yield se.PostLine(site, row_at, b"".join(row))
                row = []
            continue
        if stripped.startswith(_ROW) or not stripped or stripped.startswith(_STRUCTURE):
            if junk_n:
                yield junk_record()
                junk_n = 0
            if stripped.startswith(_ROW):
                if stripped.endswith(b"/>"):
                    yield se.PostLine(site, where, stripped)
                else:
                    row, row_at = [line], where
            continue
        if not junk_n:
            junk_at, junk_first = where, stripped
        junk_n += 1
    if row:
        yield se.PostLine(
            site, row_at, error=f"{row_at}: the row is not closed before the end of the file (truncated file?)"
        )
    if junk_n:
        yield junk_record()


def read_posts_range(rng: _Range, max_row_bytes: int = MAX_ROW_BYTES) -> Iterator[se.PostLine]:
    if rng.kind == "error":
        return iter([se.PostLine(rng.site, rng.where, error=rng.error)])
    if rng.kind == "chunk":
        return group_rows(rng.site, _chunk_lines(rng, max_row_bytes), max_row_bytes, rng.where)
    lines = _plain_lines(rng, max_row_bytes) if rng.kind == "plain" else _stream_lines(rng, max_row_bytes)
    return group_rows(rng.site, lines, max_row_bytes, rng.path)


class ReadPostsXml(SplitAndRead):
    """``(path, site, kind)`` -> :class:`PostLine` per row, spread over workers. With ``unpack_dir``, a
    compressed file is unpacked into plain chunks there first, which are read at the same time (see the
    module docstring); without, it is read whole by one worker."""

    def __init__(
        self,
        files: Sequence[Tuple[str, str, str]],
        split_bytes: int = SPLIT_BYTES,
        max_row_bytes: int = MAX_ROW_BYTES,
        unpack_dir: Optional[str] = None,
    ):
        super().__init__(
            files,
            functools.partial(split_posts_file, split_bytes=split_bytes, unpack_dir=unpack_dir),
            functools.partial(read_posts_range, max_row_bytes=max_row_bytes),
            spread_records=True,
        )


class RankSites(beam.PTransform):
    """Posts -> ``(post, rank of its site)`` (None: not among the sites kept), ranked by post count."""

    def __init__(self, top, only):
        super().__init__()
        self.top, self.only = top, only

    def expand(self, posts):
        ranks = (
            posts
            | "SiteOfPost" >> beam.Map(lambda d: d.metadata["site"])
            | "PostsPerSite" >> beam.combiners.Count.PerElement()
            | "AllSites" >> beam.combiners.ToList()
            | "RankSites" >> beam.Map(se.rank_sites, self.top, self.only)
        )
        return posts | "AttachRank" >> beam.Map(
            lambda d, r: (d, r.get(d.metadata["site"])), r=beam.pvalue.AsSingleton(ranks)
        )


class GroupThreads(beam.PTransform):
    """Posts -> one Thread per question (its answers with it)."""

    def expand(self, posts):
        return (
            posts
            | "KeyByQuestion" >> beam.Map(lambda d: (se.question_key(d), d))
            | "GroupThreads" >> beam.GroupByKey()
            | "Thread" >> beam.MapTuple(lambda key, group: se.Thread(key, list(group)))
        )
