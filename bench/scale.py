"""The CCNet stage at scale: records/s per core, peak RSS, key bytes per record, and the largest input one
machine takes.

    .venv/bin/python bench/scale.py [--sizes 10000,30000,100000] [--per-file 5000] [--workers 1]
        [--docs /usr/share/doc/python3.11/html] [--order ccnet|llama3] [--fuzzy] [--keep DIR]

The crawl is built from real text, shaped like Common Crawl's WET files: the main text of every page of
Debian's python3.11-doc (resiliparse) is cut into pages of 4-40 lines (about 1.5 KB, the length of a
crawled page's text after extraction). Most lines (85%) of each page get a mark of letters that makes
them unique to the page (dedup folds digits, so letters), the others stay as the doc has them (shared
with the other pages cut from the same place: real repeated text); each page gets 2-4 boilerplate lines
from a fixed list (navigation, cookie and copyright lines, shared by many pages), 2% of the pages
are recrawls of an earlier URL (a later date) and 1% copy an earlier page's text under a new URL. The
pages go into WET files of ``--per-file`` records under ``crawl-data/CC-MAIN-2024-10/``.

Each size runs in a fresh ``corpusmill ccnet --input DIR --languages en --workers N`` process; its
peak RSS and CPU seconds come from ``getrusage(RUSAGE_CHILDREN)`` in a helper process, the key bytes
from the run's ``_provenance.json`` (``key_bytes``: the bytes the keyed steps read and shuffle). Prints a
row per size, the RSS growth per byte of text between the sizes, and what a 24 GiB machine holds at
that rate.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import random
import subprocess
import sys
import tempfile

from warcio.warcwriter import WARCWriter

BOILERPLATE = [
    "Skip to main content",
    "Skip to navigation",
    "Home",
    "About us",
    "Contact",
    "Privacy policy",
    "Terms of use",
    "Cookie settings",
    "We use cookies to improve your experience on our site.",
    "Accept all cookies",
    "Reject non-essential cookies",
    "Subscribe to our newsletter",
    "Sign up for updates",
    "Share this page",
    "Share on Facebook",
    "Share on Twitter",
    "Print this page",
    "Back to top",
    "Previous page",
    "Next page",
    "Related articles",
    "Read more",
    "Log in",
    "Register",
    "Search this site",
    "Search",
    "Menu",
    "Close menu",
    "All rights reserved.",
    "Powered by WordPress",
    "Follow us on social media",
    "Leave a comment",
    "Comments are closed.",
    "Load more",
    "Sitemap",
    "Accessibility statement",
    "Report a problem with this page",
    "Was this page helpful?",
    "Yes",
    "No",
    "Thank you for your feedback.",
    "This site uses Akismet to reduce spam.",
    "Loading...",
    "Your browser does not support the video tag.",
    "JavaScript is disabled in your browser.",
    "Please enable JavaScript to view this page.",
    "Download the app",
    "Contact our support team",
    "Frequently asked questions",
    "Opening hours: Monday to Friday",
]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def letters(n: int) -> str:
    out = ""
    while True:
        out = LETTERS[n % 26] + out
        n //= 26
        if not n:
            return out


def page_texts(docs: str) -> list:
    from corpusmill.filters.html import decode_html, extract_main_text

    texts = []
    for page in sorted(glob.glob(os.path.join(docs, "**", "*.html"), recursive=True)):
        html, _ = decode_html(open(page, "rb").read(), None)
        text = extract_main_text(html or "", page, extractor="resiliparse")
        if text and text.count("\n") >= 4:
            texts.append((os.path.relpath(page, docs), text.split("\n")))
    return texts


def build_crawl(root: str, n: int, per_file: int, texts: list, seed: int = 7) -> dict:
    """Write ``n`` WET records into files of ``per_file``; returns the record and text byte counts."""
    rng = random.Random(seed)
    folder = os.path.join(root, "crawl-data", "CC-MAIN-2024-10", "segments", "1", "wet")
    os.makedirs(folder, exist_ok=True)
    made, text_bytes, urls, bodies = 0, 0, [], []
    writer = out = None
    for i in range(n):
        if i % per_file == 0:
            if out is not None:
                out.close()
            out = open(os.path.join(folder, f"CC-MAIN-2024-{i // per_file:05d}.warc.wet.gz"), "wb")
            writer = WARCWriter(out, gzip=True)
        roll = rng.random()
        if roll < 0.02 and urls:  # a recrawl: an earlier URL, a later date
            url, body = urls[rng.randrange(len(urls))], None
        elif roll < 0.03 and bodies:  # a copy: an earlier page's text under a new URL
            url, body = f"https://mirror{i % 13}.example.net/p/{letters(i)}", bodies[rng.randrange(len(bodies))]
        else:
            url, body = None, None
        if body is None:
            rel, lines = texts[rng.randrange(len(texts))]
            k = rng.randint(4, 40)
            start = rng.randrange(max(1, len(lines) - k))
            mark = letters(i)
            picked = [line + (f" {mark}" if rng.random() < 0.85 else "") for line in lines[start : start + k]]
            for _ in range(rng.randint(2, 4)):
                picked.insert(rng.randrange(len(picked) + 1), BOILERPLATE[rng.randrange(len(BOILERPLATE))])
            body = "\n".join(picked).encode("utf-8")
            url = url or f"https://site{i % 977}.example.org/{rel}?p={letters(i)}"
            if len(bodies) < 5000:
                bodies.append(body)
            if len(urls) < 5000:
                urls.append(url)
        date = f"2024-03-{1 + (i * 28) // max(n, 1):02d}T{(i // 60) % 24:02d}:{i % 60:02d}:00Z"
        writer.write_record(
            writer.create_warc_record(
                url,
                "conversion",
                payload=io.BytesIO(body),
                warc_headers_dict={"Content-Type": "text/plain", "WARC-Date": date},
            )
        )
        made += 1
        text_bytes += len(body)
    out.close()
    return {
        "records": made,
        "text_bytes": text_bytes,
        "files": -(-n // per_file),
        "gz_bytes": sum(os.path.getsize(f) for f in glob.glob(os.path.join(folder, "*"))),
    }


HELPER = (
    "import resource, subprocess, sys, time; t = time.time(); "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(r.ru_maxrss, r.ru_utime + r.ru_stime, time.time() - t)"
)


def measure(args, env) -> dict:
    """Peak RSS (the largest process: the launcher, or a worker), CPU and wall seconds of one command."""
    out = subprocess.run([sys.executable, "-c", HELPER, *args], capture_output=True, text=True, env=env, check=True)
    rss_kb, cpu, wall = out.stdout.split()
    return {"rss_mib": int(rss_kb) / 1024, "cpu_s": float(cpu), "wall_s": float(wall)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="/usr/share/doc/python3.11/html")
    ap.add_argument("--sizes", default="10000,30000,100000")
    ap.add_argument("--per-file", type=int, default=5000)
    ap.add_argument("--workers", default="1")
    ap.add_argument("--order", default="ccnet", choices=("ccnet", "llama3"))
    ap.add_argument("--fuzzy", action="store_true", help="--fuzzy-dedup as well")
    ap.add_argument("--keep", default=None, help="build the crawls here and keep them (default: a temporary folder)")
    ap.add_argument("--machine-gib", type=float, default=24.0)
    args = ap.parse_args()
    command = os.path.join(os.path.dirname(sys.executable), "corpusmill")
    env = dict(os.environ, CORPUSMILL_PROGRESS="0")
    texts = page_texts(args.docs)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or tmp
        for n in map(int, args.sizes.split(",")):
            root = os.path.join(base, f"crawl-{n}")
            info_path = os.path.join(root, "info.json")
            if os.path.isfile(info_path):
                info = json.load(open(info_path))
            else:
                info = build_crawl(root, n, args.per_file, texts)
                json.dump(info, open(info_path, "w"))
            out = os.path.join(tmp, f"out-{n}")
            extra = (["--dedup-order", "llama3", "--line-max-docs", "6"] if args.order == "llama3" else []) + (
                ["--fuzzy-dedup"] if args.fuzzy else []
            )
            m = measure(
                [
                    command,
                    "ccnet",
                    "--input",
                    os.path.join(root, "crawl-data"),
                    "--output",
                    out,
                    "--languages",
                    "en",
                    "--workers",
                    args.workers,
                    *extra,
                ],
                env,
            )
            prov = json.load(open(os.path.join(out, "_provenance.json")))
            stats = json.load(open(os.path.join(out, "_meta/stats.json")))
            written = stats[-1]["kept"]
            row = {
                **info,
                **m,
                "written": written,
                "key_bytes": prov.get("key_bytes"),
                "mark_bytes": prov.get("mark_bytes"),
            }
            rows.append(row)
            print(
                f"{n:7d} records ({info['text_bytes'] / 1e6:.1f} MB text, {info['files']} files): peak RSS "
                f"{m['rss_mib']:.0f} MiB, CPU {m['cpu_s']:.1f} s, {n / m['cpu_s']:.0f} records/s per core, "
                f"key bytes {row['key_bytes'] / n:.0f} and shuffled marks {row['mark_bytes'] / n:.0f} per record, "
                f"{written} written",
                flush=True,
            )
            subprocess.run(["rm", "-rf", out])
    for a, b in zip(rows, rows[1:]):
        growth = (b["rss_mib"] - a["rss_mib"]) * 2**20 / (b["text_bytes"] - a["text_bytes"])
        print(f"RSS growth {a['records']} -> {b['records']} records: {growth:.3f} bytes per byte of text")
    first, last = rows[0], rows[-1]
    growth = (last["rss_mib"] - first["rss_mib"]) * 2**20 / (last["text_bytes"] - first["text_bytes"])
    per_record = last["text_bytes"] / last["records"]
    if growth > 0:
        room = (args.machine_gib * 2**30 - first["rss_mib"] * 2**20) / growth
        print(
            f"at that rate a {args.machine_gib:.0f} GiB machine takes about {room / 1e9:.0f} GB of text, "
            f"{room / per_record / 1e6:.1f}M records of {per_record:.0f} bytes"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
