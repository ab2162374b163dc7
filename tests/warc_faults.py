"""Build damaged WARC files from real ones, for the bad-input tests."""

from __future__ import annotations

import gzip
import uuid

from corpusmill.io.warc import scan_records


def raw_warc_record(uri: str, http_block: bytes) -> bytes:
    """One gzipped WARC response record whose HTTP block is ``http_block`` as given (may be broken)."""
    head = (
        f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, uri)}>\r\n"
        f"WARC-Target-URI: {uri}\r\nWARC-Date: 2024-05-01T12:00:00Z\r\n"
        f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http_block)}\r\n\r\n"
    ).encode()
    return gzip.compress(head + http_block + b"\r\n\r\n", mtime=0)


BROKEN_HTTP = b"\x00\x01 this is not an HTTP status line\r\n\r\n<html><body><p>lost</p></body></html>"


def response_offsets(path: str):
    return [r.offset for r in scan_records(path) if r.warc_type == "response"]


def with_broken_http_record(src: str, dst: str) -> int:
    """Copy ``src`` with a record whose HTTP header is garbage inserted before its 3rd response.

    Returns the byte offset of the broken record in ``dst``.
    """
    data = open(src, "rb").read()
    cut = response_offsets(src)[2]
    open(dst, "wb").write(data[:cut] + raw_warc_record("http://broken.example/", BROKEN_HTTP) + data[cut:])
    return cut


def with_corrupt_member(src: str, dst: str, response_index: int = 5) -> int:
    """Copy ``src`` with the gzip member of one response record overwritten in its middle."""
    data = bytearray(open(src, "rb").read())
    refs = [r for r in scan_records(src) if r.warc_type == "response"]
    ref = refs[response_index]
    mid = ref.offset + ref.length // 2
    data[mid : mid + 64] = b"\xff" * 64
    open(dst, "wb").write(bytes(data))
    return ref.offset


def truncated(src: str, dst: str, keep_fraction: float = 0.6) -> None:
    """Copy ``src`` cut in the middle of a record, as an interrupted download leaves it."""
    data = open(src, "rb").read()
    open(dst, "wb").write(data[: int(len(data) * keep_fraction)])
