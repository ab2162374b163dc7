"""Benchmark: pages/s of the C4 rules (clean_page, span hashing, bad words) and of the whole C4 stage.

    .venv/bin/python bench/c4_rules.py [--pages N] [--no-stage] [beam options, e.g. --direct_running_mode=multi_processing --direct_num_workers=2]

Input: every HTML page of Debian's python3.11-doc (about 530 pages), as WET-like text (all visible text,
the way Common Crawl's WET files hold it) and as a WARC.gz for the stage. Record the numbers in
docs/sources.md.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import sys
import tempfile
import time

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from corpusmill.core.document import Document
from corpusmill.dedup.spans import span_hashes
from corpusmill.filters.c4 import BadWords, CleanPage
from corpusmill.pipelines.c4 import C4Config, run_c4

DOCS = "/usr/share/doc/python3.11/html"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "c4"))


def main() -> None:
    from make_c4_samples import visible_text

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--no-stage", action="store_true")
    args, beam_args = ap.parse_known_args()
    pages = sorted(glob.glob(os.path.join(DOCS, "**", "*.html"), recursive=True))[: args.pages]
    bodies = [open(p, "rb").read() for p in pages]
    texts = [visible_text(b) for b in bodies]
    mb = sum(len(t.encode()) for t in texts) / 1e6

    clean, bad = CleanPage(), BadWords()
    bad.setup()
    start = time.perf_counter()
    kept = [v.doc for v in (clean(Document(str(i), t)) for i, t in enumerate(texts)) if v.kept]
    t_clean = time.perf_counter() - start
    start = time.perf_counter()
    n_spans = sum(len(span_hashes(d.text)) for d in kept)
    t_span = time.perf_counter() - start
    start = time.perf_counter()
    n_bad = sum(not bad(Document(str(i), t)).kept for i, t in enumerate(texts))
    t_bad = time.perf_counter() - start
    print(
        f"clean_page: {len(texts)} pages ({mb:.1f} MB of WET-like text) in {t_clean:.2f}s = "
        f"{len(texts) / t_clean:.0f} pages/s ({len(kept)} kept)"
    )
    print(
        f"span hashes: {len(kept)} cleaned pages, {n_spans} spans in {t_span:.2f}s = {len(kept) / t_span:.0f} pages/s"
    )
    print(f"bad words: {len(texts)} pages in {t_bad:.2f}s = {len(texts) / t_bad:.0f} pages/s ({n_bad} matched)")
    if args.no_stage:
        return
    with tempfile.TemporaryDirectory() as tmp:
        warc = os.path.join(tmp, "pydocs-all.warc.gz")
        with open(warc, "wb") as out:
            writer = WARCWriter(out, gzip=True)
            for page, body in zip(pages, bodies):
                http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
                url = "https://docs.python.org/3.11/" + os.path.relpath(page, DOCS)
                writer.write_record(
                    writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)
                )
        out_dir = os.path.join(tmp, "out")
        start = time.perf_counter()
        stats = run_c4(C4Config(input=[warc], output=out_dir, mode="crawl"), beam_args)
        took = time.perf_counter() - start
        print(
            f"C4 stage (--from crawl, {' '.join(beam_args) or 'in-memory DirectRunner'}): {len(pages)} pages in "
            f"{took:.1f}s = {len(pages) / took:.1f} pages/s; kept {stats[-1]['kept']}"
        )


if __name__ == "__main__":
    main()
