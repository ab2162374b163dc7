"""Common Crawl, offline: snapshots of WET files made from real pages, served over loopback HTTP.

``make_snapshot`` writes ``crawl-data/<dump>/segments/.../wet/*.warc.wet.gz`` and the snapshot's
``wet.paths.gz`` listing, from the real Python documentation pages of pydocs.warc.gz (their extracted
text, as Common Crawl's WET files hold text). ``CrawlServer`` serves a folder with HEAD, Range requests
and injected faults: a 503 on a file's first request, a connection cut in the middle of a file.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import io
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional

from helpers import warc
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from corpusmill.io.warc import ExtractWarcRecord, scan_records


def real_pages() -> List[dict]:
    """The HTML pages of pydocs.warc.gz as (url, text) pairs: what a WET file would hold for them."""
    extract = ExtractWarcRecord()
    pages = []
    for ref in scan_records(warc("pydocs.warc.gz")):
        verdict = extract(ref)
        if verdict.kept and verdict.doc.url not in {p["url"] for p in pages}:
            pages.append({"url": verdict.doc.url, "text": verdict.doc.text})
    return pages


def make_snapshot(
    root: str, dump: str, pages: List[dict], date: str, files: int = 3, edit: Optional[Callable[[str], str]] = None
) -> List[str]:
    """Write one snapshot's WET files and its wet.paths.gz under ``root``; returns the listed paths."""
    rel_paths = []
    for i in range(files):
        rel = f"crawl-data/{dump}/segments/1550247479101.30/wet/{dump}-2019020{i}-{i:05d}.warc.wet.gz"
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            writer = WARCWriter(fh, gzip=True)
            for page in pages[i::files]:
                text = edit(page["text"]) if edit else page["text"]
                rid = uuid.UUID(hashlib.md5(f"{dump} {page['url']}".encode()).hexdigest())
                headers = [
                    ("WARC-Type", "conversion"),
                    ("WARC-Target-URI", page["url"]),
                    ("WARC-Date", date),
                    ("WARC-Record-ID", f"<urn:uuid:{rid}>"),
                    ("Content-Type", "text/plain"),
                ]
                record = writer.create_warc_record(
                    page["url"],
                    "conversion",
                    payload=io.BytesIO(text.encode()),
                    warc_headers=StatusAndHeaders("", headers, protocol="WARC/1.0"),
                )
                writer.write_record(record)
        rel_paths.append(rel)
    listing = os.path.join(root, "crawl-data", dump, "wet.paths.gz")
    with gzip.GzipFile(listing, "wb", mtime=0) as fh:
        fh.write(("\n".join(rel_paths) + "\n").encode())
    return rel_paths


class CrawlServer:
    """A loopback HTTP server over ``root`` with Range support and injectable faults."""

    def __init__(self, root: str):
        self.root = root
        self.fail_once: Dict[str, int] = {}  # url path -> HTTP status for its first request
        self.cut_once: set = set()  # url paths whose first GET is cut halfway
        self.requests = collections.Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _file(self):
                path = os.path.join(server.root, self.path.lstrip("/"))
                return path if os.path.isfile(path) else None

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def _serve(self, body: bool):
                server.requests[(self.command, self.path)] += 1
                if self.path in server.fail_once:
                    self.send_error(server.fail_once.pop(self.path))
                    return
                path = self._file()
                if path is None:
                    self.send_error(404)
                    return
                data = open(path, "rb").read()
                start, end = 0, len(data)
                rng = self.headers.get("Range")
                if rng:
                    a, _, b = rng.split("=", 1)[1].partition("-")
                    start, end = int(a), (int(b) + 1 if b else len(data))
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(end - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if not body:
                    return
                chunk = data[start:end]
                if self.path in server.cut_once and len(chunk) > 1000:
                    server.cut_once.discard(self.path)
                    self.wfile.write(chunk[: len(chunk) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(chunk)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
