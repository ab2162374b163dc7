"""trafilatura against resiliparse on the same real pages: speed, the text each keeps, and what the
CCNet stage keeps after each.

    .venv/bin/python bench/extractors.py [--docs /usr/share/doc/python3.11/html] [--pages N] [--stage]

For every page: CPU time of each extractor (process time, so other load on the machine does not count),
and the lines of its text. "Lines in common" is, for extractor A against B, the share of A's non-empty
lines (stripped) that B also has, and the same for words (as multisets). With ``--stage`` the pages are
also written as a WARC and run through the CCNet stage (normalize, line dedup, lid) once per extractor.
Prints the numbers docs/ccnet.md records.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import statistics
import sys
import tempfile
import time

from corpusmill.filters.html import MAX_PAGE_TAGS, decode_html, extract_main_text, markup_size

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def share(a, b) -> float:
    """The share of the items of multiset ``a`` that ``b`` holds too."""
    ca, cb = collections.Counter(a), collections.Counter(b)
    total = sum(ca.values())
    return sum(min(n, cb[k]) for k, n in ca.items()) / total if total else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="/usr/share/doc/python3.11/html")
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--stage", action="store_true", help="also run the CCNet stage with each extractor")
    args = ap.parse_args()
    pages = sorted(glob.glob(os.path.join(args.docs, "**", "*.html"), recursive=True))[: args.pages]
    if not pages:
        sys.exit(f"no pages under {args.docs}: install python3.11-doc or pass --docs")
    kinds = {
        "trafilatura": {},
        "trafilatura --fast-extraction": {"fast": True},
        "resiliparse": {"extractor": "resiliparse"},
    }
    cpu = {k: 0.0 for k in kinds}
    texts = {k: [] for k in kinds}
    capped = []
    for path in pages:
        html, _ = decode_html(open(path, "rb").read(), None)
        if markup_size(html) > MAX_PAGE_TAGS:
            capped.append((os.path.relpath(path, args.docs), markup_size(html)))
            continue
        for kind, kw in kinds.items():
            t = time.process_time()
            text = extract_main_text(html, path, **kw) or ""
            cpu[kind] += time.process_time() - t
            texts[kind].append(text)
    n = len(texts["trafilatura"])
    print(
        f"{n} pages (of {len(pages)}; over the {MAX_PAGE_TAGS:,}-tag cap, dropped as too_complex: "
        + ", ".join(f"{p} ({t:,} tags)" for p, t in capped)
        + ")"
    )
    base = cpu["trafilatura"]
    for kind in kinds:
        print(f"  {kind:30} {n / cpu[kind]:8.1f} pages/s of CPU  ({base / cpu[kind]:5.1f}x trafilatura)")
    t, r = texts["trafilatura"], texts["resiliparse"]
    lines = [lambda s: [x.strip() for x in s.split("\n") if x.strip()]][0]
    t_in_r = [share(lines(a), lines(b)) for a, b in zip(t, r)]
    r_in_t = [share(lines(b), lines(a)) for a, b in zip(t, r)]
    w_t_in_r = [share(a.split(), b.split()) for a, b in zip(t, r)]
    w_r_in_t = [share(b.split(), a.split()) for a, b in zip(t, r)]
    print(
        f"lines: trafilatura's also in resiliparse's: median {statistics.median(t_in_r):.3f}, "
        f"mean {statistics.mean(t_in_r):.3f}; resiliparse's also in trafilatura's: median "
        f"{statistics.median(r_in_t):.3f}, mean {statistics.mean(r_in_t):.3f}"
    )
    print(
        f"words: trafilatura's also in resiliparse's: median {statistics.median(w_t_in_r):.3f}; "
        f"resiliparse's also in trafilatura's: median {statistics.median(w_r_in_t):.3f}"
    )
    chars_t, chars_r = sum(map(len, t)), sum(map(len, r))
    print(f"characters extracted: trafilatura {chars_t:,}, resiliparse {chars_r:,} ({chars_r / chars_t:.2f}x)")
    if args.stage:
        import ccnet_stage  # noqa: PLC0415
        from ccnet_stage import build_warc  # noqa: PLC0415 - the bench's WARC writer

        from corpusmill.core.files import read_output
        from corpusmill.pipelines.ccnet import CCNetConfig, run_ccnet

        ccnet_stage.DOCS = args.docs
        with tempfile.TemporaryDirectory() as tmp:
            warc = os.path.join(tmp, "pages.warc.gz")
            build_warc(warc, args.pages)
            for kind in ("trafilatura", "resiliparse"):
                out = os.path.join(tmp, kind)
                start = time.perf_counter()
                stats = run_ccnet(CCNetConfig(input=[warc], output=out, extractor=kind, languages=["en"]))
                wall = time.perf_counter() - start
                docs = read_output(out)
                dedup = next(s for s in stats if s["step"] == "line_dedup")
                print(
                    f"stage with {kind:12}: {len(docs)} documents, {sum(len(d.text) for d in docs):,} characters "
                    f"kept; line_dedup removed {dedup['bytes_read'] - dedup['bytes_kept']:,} bytes; {wall:.1f} s wall"
                )


if __name__ == "__main__":
    main()
