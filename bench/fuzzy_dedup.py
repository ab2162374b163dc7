"""Fuzzy document dedup against an exact all-pairs Jaccard on the same real texts.

    .venv/bin/python bench/fuzzy_dedup.py [--docs '/usr/share/doc/*/copyright'] [--threshold 0.75 0.5]
    .venv/bin/python bench/fuzzy_dedup.py --paths     # connected-component rounds a chain needs

Texts: the distinct texts of Debian's /usr/share/doc/*/copyright files on this machine (packages from one
source share one; families of packages share most of it with other names and years: real near-duplicate
boilerplate, as web pages carry it). Identical texts are removed first, as content_dedup does before the
fuzzy_dedup step.

For each threshold t: the exact truth is every pair with word-5-gram Jaccard >= t (all pairs computed)
and its connected components. corpusmill's FindNearDuplicates runs on the in-memory Beam runner with
FineWeb's LSH (112 hashes, 14 bands of 8 rows) and with 28 bands of 4 rows, each verified at t, and
unverified (t = 0, every LSH candidate an edge, as FineWeb). Printed per setting:

- candidate pairs LSH proposed and the share of them that are true pairs (the precision before
  verification);
- pair recall: the share of true pairs whose two documents end in the same cluster;
- cluster precision: the share of pairs in one found cluster that are in one exact component;
- documents kept, against the exact components' count; and the seconds.
Record the numbers in docs/ccnet.md.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def components(nodes, edges):
    from corpusmill.dedup.fuzzy import exact_components

    return exact_components(nodes, edges)


def same_cluster_pairs(labels):
    by = {}
    for n, root in labels.items():
        by.setdefault(root, []).append(n)
    return {tuple(sorted(p)) for members in by.values() for p in itertools.combinations(members, 2)}


def run_beam(docs, params):
    import apache_beam as beam

    from corpusmill.engine.fuzzy_dedup import FindNearDuplicates
    from corpusmill.engine.options import beam_options

    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "labels")
        with beam.Pipeline(options=beam_options([])) as p:
            _ = (
                p
                | beam.Create(docs)
                | FindNearDuplicates(params)
                | beam.Map(lambda item: json.dumps([item[0].id, item[1][0][0] if item[1] else item[0].id]))
                | beam.io.WriteToText(prefix, shard_name_template="")
            )
        with open(prefix, encoding="utf-8") as fh:
            return dict(json.loads(line) for line in fh)


def rounds_needed(edges, limit: int = 40) -> int:
    """Large-star + small-star rounds until the edges are a star forest (the pipeline's check)."""
    from corpusmill.dedup import fuzzy

    current = set(edges)
    for r in range(1, limit + 1):
        nb = {}
        for a, b in current:
            nb.setdefault(a, []).append(b)
            nb.setdefault(b, []).append(a)
        large = {e for u, vs in nb.items() for e in fuzzy.large_star(u, vs)}
        smaller = {}
        for a, b in large:
            smaller.setdefault(max(a, b), []).append(min(a, b))
        current = {e for u, vs in smaller.items() for e in fuzzy.small_star(u, vs)}
        nb = {}
        for a, b in current:
            nb.setdefault(a, []).append(b)
            nb.setdefault(b, []).append(a)
        final = {e for u, vs in nb.items() for e in fuzzy.large_star(u, vs)}
        parents, children = {}, {}
        for c, p in final:
            parents.setdefault(c, []).append(p)
            children.setdefault(p, []).append(c)
        nodes = set(parents) | set(children)
        if not any(
            label == fuzzy.UNCONVERGED
            for n in nodes
            for _, label in fuzzy.resolve(n, parents.get(n, []), children.get(n, []))
        ):
            return r
    return -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default="/usr/share/doc/*/copyright")
    ap.add_argument("--threshold", type=float, nargs="+", default=[0.75, 0.5])
    ap.add_argument("--paths", action="store_true", help="only: the rounds a path of n documents needs")
    args = ap.parse_args()
    if args.paths:  # the worst shape for the rounds: a chain, in id order and shuffled
        import random

        for n in (10, 100, 1000, 10000):
            ids = list(range(n + 1))
            random.Random(0).shuffle(ids)
            print(
                f"path of {n + 1} documents: {rounds_needed([(i, i + 1) for i in range(n)])} rounds in id order, "
                f"{rounds_needed([(ids[i], ids[i + 1]) for i in range(n)])} shuffled"
            )
        return

    from corpusmill.core.document import Document
    from corpusmill.dedup import fuzzy, minhash
    from corpusmill.engine.fuzzy_dedup import FuzzyParams

    first = {}
    for path in sorted(glob.glob(args.docs)):
        first.setdefault(open(path, encoding="utf-8", errors="replace").read(), path)
    docs = [Document(id=path.split("/")[-2], text=text, location=path) for text, path in first.items()]
    ids = sorted(d.id for d in docs)
    sets = {d.id: minhash.shingle_hashes(d.text) for d in docs}
    t0 = time.perf_counter()
    jac = {(a, b): fuzzy.jaccard(sets[a], sets[b]) for a, b in itertools.combinations(ids, 2)}
    print(
        f"{len(docs)} distinct texts ({len(glob.glob(args.docs))} files); {len(jac):,} pairs computed exactly "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    for t in args.threshold:
        true = {p for p, j in jac.items() if j >= t}
        exact = components(ids, true)
        exact_pairs = same_cluster_pairs(exact)
        print(f"\nJaccard >= {t}: {len(true)} true pairs, {len(set(exact.values()))} exact clusters (documents kept)")
        print("| LSH | verified at | candidates | candidate precision | pair recall | cluster precision | kept | s |")
        print("|---|---|---|---|---|---|---|---|")
        for bands in (14, 28):
            prm = FuzzyParams(bands=bands, threshold=t)
            cands = set()
            buckets = {}
            for d in docs:
                sig = minhash.signature(sets[d.id], prm.num_perm, prm.seed)
                for key in minhash.band_keys(sig, prm.bands, prm.rows):
                    buckets.setdefault(key, []).append(d.id)
            for members in buckets.values():
                cands.update(tuple(sorted(p)) for p in fuzzy.bucket_star(members))
            for verify in (t, 0.0):
                t1 = time.perf_counter()
                labels = run_beam(docs, FuzzyParams(bands=bands, threshold=verify))
                secs = time.perf_counter() - t1
                found = {i: labels.get(i, i) for i in ids}
                found_pairs = same_cluster_pairs(found)
                recall = sum(found[a] == found[b] for a, b in true) / max(1, len(true))
                precision = len(found_pairs & exact_pairs) / max(1, len(found_pairs))
                print(
                    f"| {bands}x{prm.rows} | {verify:g} | {len(cands)} | "
                    f"{len(cands & true) / max(1, len(cands)):.3f} | {recall:.3f} | {precision:.3f} | "
                    f"{len(set(found.values()))} | {secs:.1f} |"
                )


if __name__ == "__main__":
    main()
