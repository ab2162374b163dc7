"""Benchmark: posts/s of the StackExchange source (row parsing + HTML to text, and the whole stage).

    .venv/bin/python bench/stackexchange.py [--copies 40] [--no-stage] [--archive] [beam options, e.g. --direct_running_mode=multi_processing --direct_num_workers=2]

Input: the rows of tests/data/stackexchange (the Python FAQ as a dump) repeated ``--copies`` times with
fresh post ids into one plain Posts.xml. ``--archive``: the same Posts.xml in a site ``.7z`` (as the
dump publishes it), read unpacked into chunks that workers read at once, and with ``--no-unpack`` (one
worker reads it whole); the two outputs are checked to be the same bytes. Record the numbers in
docs/sources.md.
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import os
import re
import tempfile
import time

from corpusmill.filters.stackexchange import ParsePostRow, PostLine
from corpusmill.pipelines.stackexchange import StackExchangeConfig, run_stackexchange

DUMP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "stackexchange")


def sample_rows():
    rows = []
    for site in sorted(os.listdir(DUMP)):
        for name in ("Posts.xml", "Posts.xml.bz2"):
            path = os.path.join(DUMP, site, name)
            if os.path.exists(path):
                data = open(path, "rb").read()
                data = bz2.decompress(data) if name.endswith(".bz2") else data
                rows += [line.strip() for line in data.split(b"\n") if line.strip().startswith(b"<row")]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=40)
    ap.add_argument("--no-stage", action="store_true")
    ap.add_argument("--archive", action="store_true", help="also read the Posts.xml from a .7z, unpacked and whole")
    args, beam_args = ap.parse_known_args()
    rows = sample_rows()
    ids = re.compile(rb'\b(Id|ParentId|AcceptedAnswerId)="(\d+)"')
    out_rows = []
    for k in range(args.copies):
        shift = k * 100_000
        out_rows += [
            ids.sub(lambda m: m.group(1) + b'="' + str(int(m.group(2)) + shift).encode() + b'"', r) for r in rows
        ]
    parse = ParsePostRow()
    start = time.perf_counter()
    for i, r in enumerate(out_rows):
        parse(PostLine("bench.example", f"x@{i}", r))
    took = time.perf_counter() - start
    mb = sum(map(len, out_rows)) / 1e6
    print(
        f"parse rows + HTML to text (one process): {len(out_rows)} posts ({mb:.1f} MB) in {took:.2f}s = "
        f"{len(out_rows) / took:.0f} posts/s"
    )
    if args.no_stage:
        return
    with tempfile.TemporaryDirectory() as tmp:
        site = os.path.join(tmp, "dump", "bench.example")  # (outputs go beside the dump, never inside it)
        os.makedirs(site)
        with open(os.path.join(site, "Posts.xml"), "wb") as fh:
            fh.write(b'<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
            fh.write(b"\n".join(out_rows) + b"\n</posts>\n")
        out = os.path.join(tmp, "out")
        start = time.perf_counter()
        stats = run_stackexchange(
            StackExchangeConfig(input=[os.path.join(tmp, "dump")], output=out, split_mb=4), beam_args
        )
        took = time.perf_counter() - start
        print(
            f"StackExchange stage ({' '.join(beam_args) or 'in-memory DirectRunner'}): {len(out_rows)} posts in "
            f"{took:.1f}s = {len(out_rows) / took:.0f} posts/s; {stats[-1]['kept']} threads"
        )
        if not args.archive:
            return
        import py7zr

        arch = os.path.join(tmp, "arch")
        os.makedirs(arch)
        start = time.perf_counter()
        with py7zr.SevenZipFile(os.path.join(arch, "bench.example.7z"), "w") as archive:
            archive.write(os.path.join(site, "Posts.xml"), "Posts.xml")
        print(
            f"7z archive: {os.path.getsize(os.path.join(arch, 'bench.example.7z')) / 1e6:.1f} MB "
            f"(written in {time.perf_counter() - start:.1f}s)"
        )
        digests = []
        for unpack in (True, False):
            out = os.path.join(tmp, f"out-7z-{unpack}")
            start = time.perf_counter()
            run_stackexchange(StackExchangeConfig(input=[arch], output=out, split_mb=4, unpack=unpack), beam_args)
            took = time.perf_counter() - start
            print(
                f"StackExchange stage on the .7z, {'unpacked into chunks' if unpack else 'read whole (--no-unpack)'}: "
                f"{len(out_rows)} posts in {took:.1f}s = {len(out_rows) / took:.0f} posts/s"
            )
            digests.append(
                hashlib.sha256(
                    b"".join(
                        open(os.path.join(out, n), "rb").read()
                        for n in sorted(os.listdir(out))
                        if n.startswith("part-")
                    )
                ).hexdigest()
            )
        print(f"same documents unpacked and whole: {digests[0] == digests[1]}")


if __name__ == "__main__":
    main()
