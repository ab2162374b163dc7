"""The CCNet stage on a WET file against a plain one-process loop of the same kernels.

    .venv/bin/python bench/wet_kernels.py [--docs /usr/share/doc/python3.11/html] [--copies 2] [--profile]

The WET file: every page of Debian's python3.11-doc, its main text extracted once with resiliparse and
written as WET ``conversion`` records (what Common Crawl's WET files hold), ``--copies`` times under new
URLs with a copy number in every line (so line dedup does not remove the copies). Then, alternating:

- the stage: ``corpusmill ccnet --input X.wet.gz --languages en --workers 1`` (the in-memory runner, one
  process, start-up included);
- the kernels: read the records with warcio, ``normalize_text``, cc_net's line hashes of every
  document, the lines in two documents removed, lid.176 on what is left; one process, no Beam.

Prints both wall times, the ratio, and with ``--profile`` the stage's top functions (cProfile).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import glob
import gzip
import io
import os
import pstats
import sys
import tempfile
import time

from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter


def build_wet(path: str, docs: str, copies: int) -> int:
    from corpusmill.filters.html import decode_html, extract_main_text

    texts = []
    for page in sorted(glob.glob(os.path.join(docs, "**", "*.html"), recursive=True)):
        html, _ = decode_html(open(page, "rb").read(), None)
        text = extract_main_text(html or "", page, extractor="resiliparse")
        if text:
            texts.append((os.path.relpath(page, docs), text))
    n = 0
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for c in range(copies):
            for rel, text in texts:
                body = "\n".join(f"{line} ({c})" if c else line for line in text.split("\n")).encode("utf-8")
                writer.write_record(writer.create_warc_record(
                    f"https://docs.python.org/3.11/{rel}?copy={c}", "conversion", payload=io.BytesIO(body),
                    warc_headers_dict={"Content-Type": "text/plain"}))
                n += 1
    return n


def kernels(path: str) -> int:
    from corpusmill.dedup.lines import remove_lines
    from corpusmill.filters.lid import LanguageId
    from corpusmill.filters.normalize import line_hashes, normalize_text

    texts = []
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type == "conversion":
                text = normalize_text(rec.content_stream().read().decode("utf-8", "replace"))
                if text:
                    texts.append(text)
    seen = collections.Counter()
    for text in texts:
        seen.update(set(line_hashes(text)))
    repeated = {h for h, n in seen.items() if n > 1}
    lid = LanguageId(languages=["en"])
    lid.setup()
    kept = 0
    from corpusmill.core.document import Document

    for i, text in enumerate(texts):
        text = remove_lines(text, repeated)
        if text:
            kept += lid(Document(str(i), text)).kept
    return kept


def stage(path: str, out: str) -> int:
    from corpusmill.cli.main import main as cli_main

    code = cli_main(["ccnet", "--input", path, "--output", out, "--languages", "en", "--workers", "1",
                     "--min-length", "0"])
    assert code == 0
    from corpusmill.core.files import read_output

    return len(read_output(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="/usr/share/doc/python3.11/html")
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    os.environ["CORPUSMILL_PROGRESS"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        wet = os.path.join(tmp, "pages.wet.gz")
        n = build_wet(wet, args.docs, args.copies)
        print(f"{n} WET records, {os.path.getsize(wet) / 1e6:.1f} MB; uncompressed "
              f"{len(gzip.open(wet).read()) / 1e6:.1f} MB")
        times = {"stage": [], "kernels": []}
        for r in range(args.rounds):
            t = time.perf_counter()
            kept_k = kernels(wet)
            times["kernels"].append(time.perf_counter() - t)
            t = time.perf_counter()
            kept_s = stage(wet, os.path.join(tmp, f"out{r}"))
            times["stage"].append(time.perf_counter() - t)
        s, k = min(times["stage"]), min(times["kernels"])
        print(f"kernels: {k:.2f} s ({kept_k} kept); stage: {s:.2f} s ({kept_s} kept); ratio {s / k:.2f}x")
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            stage(wet, os.path.join(tmp, "profiled"))
            prof.disable()
            pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
