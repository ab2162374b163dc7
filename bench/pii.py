"""PII scrubbing on real text whose answers are known from its format, and on text full of look-alikes.

    .venv/bin/python bench/pii.py [--changelogs '/usr/share/doc/*/changelog.Debian.gz'] \\
        [--pydocs /usr/share/doc/python3.11/html] [--show 40]

1. Debian changelogs. Every entry has a header line ``package (version) distribution; urgency=...`` and
   a trailer `` -- Name <address>  Day, DD Mon YYYY HH:MM:SS +ZZZZ``: the trailer's address is an e-mail
   that must be replaced (recall), and nothing else in the header or trailer (versions, dates, times,
   zones) may be (precision). The entries' free text (bug numbers, CVE ids, versions, hashes, paths) is
   scrubbed too, and every span replaced there is listed by kind for a person to judge.
2. The Python documentation (visible text of every page): code, version strings, the ipaddress module's
   examples; every replaced span is counted and the distinct ones listed.
Record the numbers in docs/quality.md.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "data", "c4"))

HEADER = re.compile(r"^\S+ \([^)]*\) [^;]*; ")
TRAILER = re.compile(r"^ -- (?P<name>.*?) <(?P<email>[^>]+)>  (?P<date>\S.*)$")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changelogs", default="/usr/share/doc/*/changelog.Debian.gz")
    ap.add_argument("--pydocs", default="/usr/share/doc/python3.11/html")
    ap.add_argument("--show", type=int, default=40)
    args = ap.parse_args()
    from corpusmill.filters.pii import EMAIL, scrub

    headers = trailers = urls = emails_hit = header_fp = trailer_fp = 0
    body = collections.Counter()
    body_spans = collections.defaultdict(collections.Counter)
    files = sorted(glob.glob(args.changelogs))
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.rstrip("\n")
                if HEADER.match(line):
                    headers += 1
                    if scrub(line)[0] != line:
                        header_fp += 1
                    continue
                m = TRAILER.match(line)
                if m and "@" not in m["email"]:  # a few name a URL in place of an address
                    urls += 1
                    if scrub(line)[0] != line:
                        trailer_fp += 1
                    continue
                if m:
                    trailers += 1
                    out = scrub(line)[0]
                    want = line.replace(f"<{m['email']}>", f"<{EMAIL}>")
                    if f"<{EMAIL}>" in out:
                        emails_hit += 1
                    if out != want and f"<{EMAIL}>" in out:
                        trailer_fp += 1
                    continue
                found = []
                scrub(line, found)
                for kind, span in found:
                    body[kind] += 1
                    body_spans[kind][span] += 1
    print(
        f"Debian changelogs: {len(files)} files, {headers:,} header lines, {trailers:,} trailers with an "
        f"address (and {urls} with a URL in its place)"
    )
    print(f"  trailer addresses replaced: {emails_hit:,} of {trailers:,} ({emails_hit / max(1, trailers):.2%})")
    print(
        f"  header lines changed (versions, distributions): {header_fp}; trailers with anything else changed "
        f"(names, dates, zones, URLs): {trailer_fp}"
    )
    print(f"  entry text: {dict(body)}")
    for kind in ("ip", "phone"):
        print(f"  {kind} spans in entry text, most frequent: {body_spans[kind].most_common(args.show)}")

    from make_c4_samples import visible_text

    spans = collections.defaultdict(collections.Counter)
    pages = sorted(glob.glob(os.path.join(args.pydocs, "**", "*.html"), recursive=True))
    for path in pages:
        found = []
        scrub(visible_text(open(path, "rb").read()), found)
        for kind, span in found:
            spans[kind][span] += 1
    print(f"\nPython documentation: {len(pages)} pages; replaced: { {k: sum(c.values()) for k, c in spans.items()} }")
    for kind in ("email", "ip", "phone"):
        print(f"  {kind}: {len(spans[kind])} distinct: {sorted(spans[kind])[: args.show]}")


if __name__ == "__main__":
    main()
