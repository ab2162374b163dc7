"""Reading files over HTTP(S): seekable, with retries, backoff and resumption of a cut download.

Common Crawl serves every file at ``https://data.commoncrawl.org/<path>``. :class:`HttpFile` is a
seekable raw stream over one URL: a read opens ``GET`` with ``Range: bytes=<pos>-`` and streams; when the
connection is cut, times out, or the server answers 429/5xx, it waits (exponential backoff) and
re-opens at the byte it had reached, so a cut download resumes where it stopped and the bytes a reader
sees are those of an uninterrupted download. 404/403/401 are not retried: they raise
:class:`FileNotFoundError` / :class:`PermissionError` naming the URL.

Nothing here runs unless the user named an ``http(s)://`` input.
"""

from __future__ import annotations

import io
import os
import re
import socket
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from typing import Optional

RETRIES = int(os.environ.get("CORPUSMILL_HTTP_RETRIES", "8"))
BACKOFF_S = float(os.environ.get("CORPUSMILL_HTTP_BACKOFF", "1.0"))  # first wait; doubles, capped at 60 s
TIMEOUT_S = float(os.environ.get("CORPUSMILL_HTTP_TIMEOUT", "60"))
# a transfer slower than SPEED_LIMIT bytes/s for SPEED_TIME seconds is cut and retried (curl's
# --speed-limit / --speed-time): a server that trickles a byte a second never reaches the socket timeout
SPEED_LIMIT = float(os.environ.get("CORPUSMILL_HTTP_SPEED_LIMIT", "1000"))
SPEED_TIME = float(os.environ.get("CORPUSMILL_HTTP_SPEED_TIME", "30"))

# URLs whose server answered a Range request with the whole file (200): read as one sequential stream
# (http.server, many ad-hoc mirrors). Counted per process; readers report it (counters.http_no_range).
NO_RANGE: set = set()
USER_AGENT = "corpusmill (https://github.com/corpusmill/corpusmill)"

_TRANSIENT = (ConnectionError, socket.timeout, TimeoutError, HTTPException, urllib.error.URLError, OSError)


def is_http(path: str) -> bool:
    return path.startswith(("http://", "https://"))


class _Fatal(Exception):
    pass


def _request(url: str, start: int, end: Optional[int] = None, method: str = "GET"):
    headers = {"User-Agent": USER_AGENT}
    if method == "GET" and (start or end is not None):
        headers["Range"] = f"bytes={start}-" + ("" if end is None else str(end - 1))
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers, method=method), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # the range starts at or past the end
            return None
        if exc.code == 404:
            raise _Fatal(FileNotFoundError(f"{url}: HTTP 404 Not Found")) from None
        if exc.code in (401, 403):
            raise _Fatal(PermissionError(f"{url}: HTTP {exc.code} {exc.reason}")) from None
        if exc.code == 429 or exc.code >= 500:
            raise ConnectionError(f"HTTP {exc.code} {exc.reason}") from None
        raise _Fatal(OSError(f"{url}: HTTP {exc.code} {exc.reason}")) from None


def _retrying(url: str, what):
    """Call ``what()`` until it succeeds; transient errors are retried with backoff, others raised."""
    delay = BACKOFF_S
    for attempt in range(RETRIES + 1):
        try:
            return what()
        except _Fatal as exc:
            raise exc.args[0] from None
        except _TRANSIENT as exc:
            if attempt == RETRIES:
                raise OSError(f"{url}: gave up after {RETRIES} retries ({type(exc).__name__}: {exc})") from None
            time.sleep(delay)
            delay = min(delay * 2, 60.0)


def _skip(resp, count: int, url: str) -> None:
    """Read and discard ``count`` bytes of a response (a server that ignores Range)."""
    speed = _Speed(url)
    while count:
        chunk = resp.read(min(count, 1 << 20))
        if not chunk:
            raise ConnectionError(f"connection closed {count} bytes before the offset asked for")
        speed.add(len(chunk))
        count -= len(chunk)


def _check_content_range(resp, start: int, url: str) -> None:
    """A 206 must be the range asked for; another one is retried (then a dead letter), never used."""
    value = resp.headers.get("Content-Range") or ""
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", value)
    if m is None or int(m.group(1)) != start:
        resp.close()
        raise ConnectionError(f"asked for the bytes from {start}, the server answered Content-Range {value!r}")


class _Speed:
    """Cut a transfer slower than SPEED_LIMIT bytes/s over any SPEED_TIME-second window."""

    def __init__(self, url: str):
        self.url, self.since, self.bytes = url, time.monotonic(), 0

    def add(self, n: int) -> None:
        self.bytes += n
        elapsed = time.monotonic() - self.since
        if elapsed >= SPEED_TIME:
            if self.bytes / elapsed < SPEED_LIMIT:
                raise TimeoutError(
                    f"transfer slower than {SPEED_LIMIT:g} bytes/s for {elapsed:.0f} s "
                    f"(CORPUSMILL_HTTP_SPEED_LIMIT / _SPEED_TIME)"
                )
            self.since, self.bytes = time.monotonic(), 0


class HttpFile(io.RawIOBase):
    """A read-only, seekable stream over one URL (see the module docstring)."""

    def __init__(self, url: str, end: Optional[int] = None):
        super().__init__()
        self.url = url
        self._end = end  # ask only for bytes before this offset
        self._pos = 0
        self._size: Optional[int] = None
        self._resp = None
        self._resp_pos = -1
        self._speed = _Speed(url)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    @property
    def size(self) -> int:
        if self._size is None:

            def head():
                resp = _request(self.url, 0, method="HEAD")
                with resp:
                    length = resp.headers.get("Content-Length")
                if length is None:
                    raise _Fatal(OSError(f"{self.url}: the server sends no Content-Length"))
                return int(length)

            self._size = _retrying(self.url, head)
        return self._size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self.size + offset
        return self._pos

    def _drop_response(self) -> None:
        if self._resp is not None:
            try:
                self._resp.close()
            except Exception:  # noqa: BLE001 - a broken connection is closed anyway
                pass
        self._resp, self._resp_pos = None, -1

    def readinto(self, buffer) -> int:
        want = len(buffer)
        if want == 0:
            return 0

        def attempt():
            if self._resp is None or self._resp_pos != self._pos:
                self._drop_response()
                resp = _request(self.url, self._pos, self._end)
                if resp is None:
                    return 0
                if resp.status == 200 and self._pos:  # the server ignored the range: one stream from byte 0,
                    NO_RANGE.add(self.url)  # read and discarded up to the offset
                    _skip(resp, self._pos, self.url)
                elif resp.status == 206:
                    _check_content_range(resp, self._pos, self.url)
                self._resp, self._resp_pos = resp, self._pos
                self._speed = _Speed(self.url)
            try:
                read = getattr(self._resp, "read1", None) or self._resp.read  # what has arrived, not all of want
                data = read(want)
                self._speed.add(len(data))
            except BaseException:
                self._drop_response()
                raise
            if not data and self._size is not None and self._pos < self._size:
                self._drop_response()
                raise ConnectionError(f"connection closed at byte {self._pos} of {self._size}")
            return data

        data = _retrying(self.url, attempt)
        if not data:
            return 0
        n = len(data)
        buffer[:n] = data
        self._pos += n
        self._resp_pos += n
        return n

    def close(self) -> None:
        self._drop_response()
        super().close()


def open_http(url: str, buffer_size: int = 1 << 16):
    """A buffered, seekable binary stream over ``url``."""
    raw = HttpFile(url)
    raw.size  # noqa: B018 - learn the size first, so a read that stops short is recognized as a cut
    return io.BufferedReader(raw, buffer_size)


_WHOLE: dict = {}  # url -> a local copy, for servers that ignore Range (one download per file and process)


def _whole_file(url: str) -> str:
    import atexit
    import tempfile

    path = _WHOLE.get(url)
    if path is None:
        fd, path = tempfile.mkstemp(prefix="corpusmill-http-")
        with os.fdopen(fd, "wb") as out, open_http(url) as src:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
        for old in list(_WHOLE)[:-3]:  # keep the last few files of this process
            os.remove(_WHOLE.pop(old))
        _WHOLE[url] = path
        atexit.register(lambda p=path: os.path.exists(p) and os.remove(p))
    return path


def fetch_range(url: str, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of ``url``, retried and resumed like :class:`HttpFile`. From a server that
    ignores Range, the file is downloaded once (one sequential stream) and the ranges read from that copy."""
    if url in NO_RANGE:
        with open(_whole_file(url), "rb") as fh:
            fh.seek(start)
            return fh.read(end - start)
    with HttpFile(url, end) as raw:
        raw._size = end  # stopping short of `end` is a cut, not the end of the file
        raw.seek(start)
        out = bytearray()
        while len(out) < end - start:
            chunk = raw.read(min(1 << 20, end - start - len(out)))
            if not chunk:
                break
            out += chunk
        return bytes(out)
