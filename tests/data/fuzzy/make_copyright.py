"""Builds copyright.jsonl.gz: real near-duplicate text, Debian's /usr/share/doc/*/copyright files.

Packages built from one source share their copyright file; families of packages (libxcb*, libx11*)
share most of it with different names and years. The slice takes the distinct texts of 800-8,000
bytes, whole clusters of texts linked by word-5-gram Jaccard >= 0.5 (clusters of at most 25, by
path, until 60 texts), and 20 texts with no partner. Run from the project root: python tests/data/fuzzy/make_copyright.py
"""

import collections
import glob
import gzip
import itertools
import json
import os
import sys

sys.path.insert(0, ".")
from corpusmill.dedup.fuzzy import jaccard  # noqa: E402
from corpusmill.dedup.minhash import shingle_hashes  # noqa: E402


def main():
    files = [f for f in sorted(glob.glob("/usr/share/doc/*/copyright")) if 800 < os.path.getsize(f) < 8000]
    first = {}
    for f in files:  # distinct texts, under the first package (by path) that has it
        first.setdefault(open(f, encoding="utf-8", errors="replace").read(), f)
    uniq = sorted(first.values())
    texts = {f: open(f, encoding="utf-8", errors="replace").read() for f in uniq}
    shingles = {f: shingle_hashes(t) for f, t in texts.items()}
    near = collections.defaultdict(set)
    for a, b in itertools.combinations(uniq, 2):
        if jaccard(shingles[a], shingles[b]) >= 0.5:
            near[a].add(b)
            near[b].add(a)
    chosen, seen = set(), set()
    for f in sorted(near):  # whole clusters (components of the >= 0.5 graph), until 60 texts
        if f in seen or len(chosen) >= 60:
            continue
        todo, cluster = [f], set()
        while todo:
            x = todo.pop()
            if x not in cluster:
                cluster.add(x)
                todo.extend(near[x])
        seen |= cluster
        if len(cluster) <= 25:
            chosen |= cluster
    chosen |= set([f for f in uniq if f not in near][:20])
    os.makedirs("tests/data/fuzzy", exist_ok=True)
    with gzip.open("tests/data/fuzzy/copyright.jsonl.gz", "wt", encoding="utf-8") as fh:
        for f in sorted(chosen):
            pkg = f.split("/")[4]
            fh.write(
                json.dumps(
                    {
                        "id": pkg,
                        "text": texts[f],
                        "source": "debian-copyright",
                        "url": f"file:///usr/share/doc/{pkg}/copyright",
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    print(f"{len(uniq)} distinct texts, {len(near)} with a partner at >= 0.5; wrote {len(chosen)}")


if __name__ == "__main__":
    main()
