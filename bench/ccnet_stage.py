"""Benchmark: documents/s of the whole CCNet stage on a real crawl, and of a plain lid.176 loop.

    .venv/bin/python bench/ccnet_stage.py [--pages N] [-- beam options]

The crawl is every HTML page of Debian's python3.11-doc (about 530 pages) written as a WARC.gz with
warcio (built in a temporary directory); without that package it falls back to the bundled samples.
Prints one line per measurement; record them in docs/ccnet.md.
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

from corpusmill.core.files import read_output
from corpusmill.filters.lid import LanguageId
from corpusmill.pipelines.ccnet import CCNetConfig, run_ccnet

DOCS = "/usr/share/doc/python3.11/html"
SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "warc")


def build_warc(path: str, limit: int) -> int:
    pages = sorted(glob.glob(os.path.join(DOCS, "**", "*.html"), recursive=True))[:limit]
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for page in pages:
            body = open(page, "rb").read()
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            url = "https://docs.python.org/3.11/" + os.path.relpath(page, DOCS)
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
    return len(pages)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=10_000)
    args, beam_args = ap.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        if os.path.isdir(DOCS):
            inputs = [os.path.join(tmp, "pydocs-all.warc.gz")]
            n = build_warc(inputs[0], args.pages)
            print(f"input: {n} python3.11-doc pages as one WARC.gz ({os.path.getsize(inputs[0]) / 1e6:.1f} MB)")
        else:
            inputs = [os.path.join(SAMPLES, "iana.warc.gz"), os.path.join(SAMPLES, "pydocs.warc.gz")]
            print("input: bundled samples (install python3.11-doc for the larger crawl)")
        out = os.path.join(tmp, "out")
        t0 = time.perf_counter()
        stats = run_ccnet(CCNetConfig(input=inputs, output=out), beam_args)
        wall = time.perf_counter() - t0
        extract = stats[0]
        print(
            f"stage: {extract['read']} records, {extract['kept']} pages with text, "
            f"{stats[-1]['kept']} documents out in {wall:.1f} s -> "
            f"{extract['read'] / wall:.1f} records/s, {extract['kept'] / wall:.1f} pages/s "
            f"(runner args: {' '.join(beam_args) or 'DirectRunner in-memory'})"
        )

        texts = [d.text for d in read_output(out)]
        lid = LanguageId()
        lid.setup()
        reps = max(1, 20_000 // max(1, len(texts)))
        t0 = time.perf_counter()
        for _ in range(reps):
            for text in texts:
                lid.predict(text)
        wall = time.perf_counter() - t0
        print(
            f"plain lid.176 loop: {reps * len(texts)} predictions in {wall:.2f} s -> "
            f"{reps * len(texts) / wall:.0f} documents/s (same texts, mean {sum(map(len, texts)) / len(texts):.0f} chars)"
        )


if __name__ == "__main__":
    sys.exit(main())
