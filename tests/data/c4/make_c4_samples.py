"""Rebuild the C4 samples in this directory from Debian's python3.11-doc HTML pages (PSF license).

    .venv/bin/python tests/data/c4/make_c4_samples.py      # needs `apt-get install python3.11-doc`

- recrawl.warc.gz: WARC responses that overlap tests/data/warc/pydocs.warc.gz: a newer crawl of
  faq/library.html under a www./utm_ variant of its URL (newest page per URL wins), an older crawl of
  tutorial/controlflow.html (http://, trailing slash; loses), and tutorial/classes.html served again
  from a mirror URL (all its sentence spans repeat pydocs' copy).
- sample.wet.gz: WET conversion records (all visible text of the page, as Common Crawl's WET has it,
  navigation included) of howto/sorting.html, library/textwrap.html and howto/sockets.html (whose
  text contains a word from the LDNOOBW list, so C4 drops it).
- c4-released-sample.json.gz: released-C4-style JSON lines {"text", "url", "timestamp"} from 40
  library/*.html pages: two of every three cleaned with corpusmill's CleanPage (like C4 "en"), every
  third left as all visible text (like C4 "en.noclean"), so LLaMA's heuristics have something to drop.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
import uuid

from lxml import html as lxml_html
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HERE = os.path.dirname(os.path.abspath(__file__))
DOCS = "/usr/share/doc/python3.11/html"
BASE = "https://docs.python.org/3.11/"


def _read(page: str) -> bytes:
    with open(os.path.join(DOCS, page), "rb") as fh:
        return fh.read()


def visible_text(body: bytes) -> str:
    """All visible text, one block per line (what a WET conversion record holds)."""
    root = lxml_html.fromstring(body)
    for bad in root.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    lines = [" ".join(t.split()) for t in root.itertext()]
    return "\n".join(line for line in lines if line)


def _rid(kind: str, url: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'c4-sample:' + kind + ':' + url)}>"


def build_recrawl(path: str) -> None:
    pages = [
        (
            "faq/library.html",
            "https://www.docs.python.org/3.11/faq/library.html?utm_source=feed",
            "2024-06-01T08:00:00Z",
        ),
        ("tutorial/controlflow.html", "http://docs.python.org/3.11/tutorial/controlflow.html/", "2023-01-15T08:00:00Z"),
        (
            "tutorial/classes.html",
            "https://mirror.example.org/python-docs/tutorial/classes.html",
            "2024-05-02T08:00:00Z",
        ),
    ]
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for page, url, date in pages:
            body = _read(page)
            http = StatusAndHeaders(
                "200 OK",
                [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
                protocol="HTTP/1.1",
            )
            writer.write_record(
                writer.create_warc_record(
                    url,
                    "response",
                    payload=io.BytesIO(body),
                    http_headers=http,
                    warc_headers_dict={"WARC-Record-ID": _rid("response", url), "WARC-Date": date},
                )
            )


def build_wet(path: str) -> None:
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for page in ("howto/sorting.html", "library/textwrap.html", "howto/sockets.html"):
            url = BASE + page
            text = visible_text(_read(page)).encode("utf-8")
            writer.write_record(
                writer.create_warc_record(
                    url,
                    "conversion",
                    payload=io.BytesIO(text),
                    warc_headers_dict={
                        "WARC-Record-ID": _rid("conversion", url),
                        "WARC-Date": "2024-05-03T08:00:00Z",
                        "Content-Type": "text/plain",
                    },
                )
            )


def build_released(path: str) -> int:
    from corpusmill.core.document import Document
    from corpusmill.filters.c4 import CleanPage

    clean = CleanPage()
    pages = sorted(glob.glob(os.path.join(DOCS, "library", "*.html")))
    pages = [p for p in pages if 8_000 < os.path.getsize(p) < 40_000][:40]
    rows = []
    for i, page in enumerate(pages):
        rel = os.path.relpath(page, DOCS)
        text = visible_text(_read(rel))
        if i % 3 != 2:
            verdict = clean(Document("x", text))
            if not verdict.kept:
                continue
            text = verdict.doc.text
        rows.append({"text": text, "url": BASE + rel, "timestamp": f"2019-04-{10 + i % 18:02d}T12:00:00Z"})
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        for row in rows:
            gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    return len(rows)


def main() -> None:
    build_recrawl(os.path.join(HERE, "recrawl.warc.gz"))
    build_wet(os.path.join(HERE, "sample.wet.gz"))
    n = build_released(os.path.join(HERE, "c4-released-sample.json.gz"))
    print(f"wrote recrawl.warc.gz, sample.wet.gz, c4-released-sample.json.gz ({n} pages)")


if __name__ == "__main__":
    main()
