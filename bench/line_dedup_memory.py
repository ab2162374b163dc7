"""Memory of the CCNet line dedup with one very popular line (issue 12).

Part 1, the per-key code: one line in N documents. corpusmill's ``repeated_occurrences`` streams the
values of a key; the old code made a list of every occurrence. Peak Python memory (tracemalloc) of
each over N = 1,000,000 occurrences.

Part 2, a whole pipeline: N documents, each with the line "Skip to content" (one key of N occurrences)
and one line of its own (N distinct keys), through ``MarkDuplicates`` on the DirectRunner; peak RSS
of the process at several N gives the cost per distinct hash (the in-memory DirectRunner keeps every
PCollection in memory, so this is an upper bound; Dataflow's shuffle keeps them on disk).

    .venv/bin/python bench/line_dedup_memory.py [--sizes 50000,100000,200000] [--occurrences 1000000]
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import time
import tracemalloc


def per_key(occurrences: int) -> dict:
    from corpusmill.dedup.lines import repeated_occurrences

    def values():
        for i in range(occurrences):
            yield (f"doc-{i:07d}", 1234567890123456789)

    out = {}
    for name, fn in (("streamed (corpusmill)", lambda v: sum(1 for _ in repeated_occurrences(v, lambda x: x[0]))),
                     ("list of occurrences (before)", lambda v: len(list(v)))):
        tracemalloc.start()
        start = time.perf_counter()
        n = fn(values())
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out[name] = {"occurrences": n, "peak_MiB": round(peak / 2**20, 3), "seconds": round(seconds, 2)}
    return out


def pipeline(n: int) -> dict:
    """Run in a fresh process: peak RSS of one MarkDuplicates pipeline over n documents."""
    import apache_beam as beam

    from corpusmill.core.document import Document
    from corpusmill.dedup.lines import line_occurrences
    from corpusmill.engine.line_dedup import MarkDuplicates

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    occurrences = functools.partial(line_occurrences, scope="", normalize="ccnet")

    with beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(["--direct_num_workers=1"])) as p:
        counts = (
            p | beam.Create(list(range(n)))
            | beam.Map(lambda i: Document(f"d{i:08d}", f"Skip to content\nThe only line of document {i} in this run."))
            | MarkDuplicates(occurrences, distinct=lambda v: v[0])
            | beam.Map(lambda item: len(item[1]))
            | beam.combiners.Count.PerElement()
            | beam.combiners.ToList()
        )
        counts | beam.Map(lambda c: print(json.dumps({"marks_per_doc": dict(c)}), file=sys.stderr))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"documents": n, "distinct_hashes": n + 1, "peak_rss_MiB": round(peak / 1024, 1),
            "rss_before_MiB": round(before / 1024, 1), "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--occurrences", type=int, default=1_000_000)
    ap.add_argument("--sizes", default="50000,100000,200000")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(pipeline(args.one)))
        return
    print(json.dumps({"per_key": per_key(args.occurrences)}, indent=1))
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        res = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]))
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        per_hash = (b["peak_rss_MiB"] - a["peak_rss_MiB"]) * 2**20 / (b["distinct_hashes"] - a["distinct_hashes"])
        print(json.dumps({"bytes_per_distinct_hash_DirectRunner": round(per_hash)}))


if __name__ == "__main__":
    main()
