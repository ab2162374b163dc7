"""Fuzzy document dedup (issue 18): MinHash LSH, verified pairs, connected components on Beam, checked
against an exact all-pairs Jaccard on real near-duplicate text (Debian copyright files)."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import random

import apache_beam as beam
import pytest
from helpers import DATA

from corpusmill.cli import main as cli_main
from corpusmill.core.document import Document
from corpusmill.core.files import read_dropped, read_failed, read_output
from corpusmill.dedup import fuzzy
from corpusmill.dedup.minhash import shingle_hashes
from corpusmill.engine.fuzzy_dedup import FindNearDuplicates, FuzzyParams

SLICE = os.path.join(DATA, "fuzzy", "copyright.jsonl.gz")


def slice_docs():
    with gzip.open(SLICE, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return [
        Document(id=r["id"], text=r["text"], source=r["source"], url=r["url"], location=f"{SLICE}:{i + 1}")
        for i, r in enumerate(rows)
    ]


def components(nodes, edges):
    return fuzzy.exact_components(nodes, edges)


def _as_json(item):
    doc, label = item
    return json.dumps([[doc.id, doc.location], label])


def _key(value):
    return tuple(value) if isinstance(value, list) else value


def run_transform(docs, params, tmp_path):
    """(doc key -> label) from FindNearDuplicates on the in-memory runner."""
    from corpusmill.engine.options import beam_options

    os.makedirs(tmp_path, exist_ok=True)
    prefix = str(tmp_path / "labels")
    with beam.Pipeline(options=beam_options([])) as p:
        _ = (
            p
            | beam.Create(docs)
            | FindNearDuplicates(params)
            | beam.Map(_as_json)
            | beam.io.WriteToText(prefix, shard_name_template="")
        )
    labels = {}
    with open(prefix, encoding="utf-8") as fh:
        for line in fh:
            key, label = json.loads(line)
            if isinstance(label, list):
                label = (_key(label[0]), label[1])
            labels[tuple(key)] = label
    return labels


def test_star_rounds_give_the_components_of_random_graphs():
    rng = random.Random(7)
    for _ in range(30):
        n = rng.randint(5, 200)
        edges = {(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(1, 2 * n))}
        edges = {(a, b) for a, b in edges if a != b}
        nodes = {x for e in edges for x in e}
        expected = components(nodes, edges)
        current = set(edges)
        for _round in range(20):
            neighbours = {}
            for a, b in current:
                neighbours.setdefault(a, []).append(b)
                neighbours.setdefault(b, []).append(a)
            large = {e for u, vs in neighbours.items() for e in fuzzy.large_star(u, vs)}
            smaller = {}
            for a, b in large:
                smaller.setdefault(max(a, b), []).append(min(a, b))
            current = {e for u, vs in smaller.items() for e in fuzzy.small_star(u, vs)}
        parents = dict(current)
        assert len(parents) == len(current)  # a star forest: one parent per member
        assert {n: parents.get(n, n) for n in nodes} == expected


def test_clusters_against_exact_all_pairs_jaccard(tmp_path):
    docs = slice_docs()
    params = FuzzyParams(threshold=0.5, bands=28)  # 28 bands of 4 rows: LSH tuned near 0.43
    labels = run_transform(docs, params, tmp_path)
    keys = [(d.id, d.location) for d in docs]
    sets = {(d.id, d.location): shingle_hashes(d.text) for d in docs}
    true_pairs = {(a, b) for a, b in itertools.combinations(sorted(keys), 2) if fuzzy.jaccard(sets[a], sets[b]) >= 0.5}
    assert len(true_pairs) >= 20  # the slice holds real near-duplicates
    exact = components(keys, true_pairs)
    found = {k: (labels[k][0] if labels[k] else k) for k in keys}
    assert fuzzy.UNCONVERGED not in labels.values()
    # every found cluster lies inside one exact component (verified edges are true pairs) ...
    assert all(exact[k] == exact[found[k]] for k in keys)
    # ... and LSH finds (nearly) every true pair: same cluster for both members
    recall = sum(found[a] == found[b] for a, b in true_pairs) / len(true_pairs)
    assert recall >= 0.95
    # one document kept per cluster, the smallest key; the size is the cluster's
    kept = {k for k in keys if labels[k] is None}
    assert kept == {found[k] for k in keys}
    for k in keys:
        if labels[k] is not None:
            root, size = labels[k]
            assert root < k and size == sum(found[x] == root for x in keys)


def chain_docs(n=12):
    """A chain of real texts, each a small edit of the one before: neighbours are near-duplicates,
    the ends are not (so only the transitive closure joins them). Ids are shuffled against the chain."""
    base = slice_docs()[0].text.split()
    words = list(base) * 3
    rng = random.Random(3)
    texts = []
    for _ in range(n):
        texts.append(" ".join(words))
        for i in rng.sample(range(len(words)), len(words) // 40):
            words[i] = words[i].upper() + "x"
    ids = [f"d{i:02d}" for i in rng.sample(range(n), n)]
    return [Document(id=ids[i], text=t, location=f"chain:{i}") for i, t in enumerate(texts)]


def test_a_chain_is_one_cluster_and_too_few_rounds_is_loud(tmp_path):
    docs = chain_docs()
    sets = [shingle_hashes(d.text) for d in docs]
    assert fuzzy.jaccard(sets[0], sets[1]) >= 0.75 > fuzzy.jaccard(sets[0], sets[-1])
    labels = run_transform(docs, FuzzyParams(threshold=0.75, bands=28, rounds=12), tmp_path / "a")
    roots = {v[0] for v in labels.values() if v is not None}
    assert len(roots) == 1 and sum(v is None for v in labels.values()) == 1
    assert {v[1] for v in labels.values() if v is not None} == {len(docs)}
    one = run_transform(docs, FuzzyParams(threshold=0.75, bands=28, rounds=1), tmp_path / "b")
    assert fuzzy.UNCONVERGED in one.values()
    with pytest.raises(ValueError, match="raise --fuzzy-rounds"):
        fuzzy.DropNearDuplicates(1)((docs[0], fuzzy.UNCONVERGED))


def test_ccnet_fuzzy_dedup_step(tmp_path):
    """The CCNet stage in the Llama 3 order (doc dedup, then line dedup) with --fuzzy-dedup over the real
    slice: the step is accounted and what it drops names a kept document of the output."""
    out = str(tmp_path / "cc")
    argv = [
        "ccnet",
        "--input",
        SLICE,
        "--output",
        out,
        "--dedup-order",
        "llama3",
        "--fuzzy-dedup",
        "--fuzzy-threshold",
        "0.5",
        "--fuzzy-bands",
        "28",
        "--line-max-docs",
        "6",
        "--write-dropped",
    ]
    assert cli_main(argv) == 0
    with open(os.path.join(out, "_meta/stats.json"), encoding="utf-8") as fh:
        stats = {s["step"]: s for s in json.load(fh)}
    step = stats["fuzzy_dedup"]
    assert step["read"] == step["kept"] + sum(step["dropped"].values()) + step["failed"]
    assert step["dropped"].get("near_duplicate", 0) > 0
    kept_ids = {d.id for d in read_output(out)}
    dropped = read_dropped(out)["fuzzy_dedup"]["near_duplicate"]
    assert len(dropped) == step["dropped"]["near_duplicate"]
    assert all(r["document"]["metadata"]["duplicate_of"] in kept_ids for r in dropped)
    assert not read_failed(out)
    # Llama 3's line rule: a line is removed when it is in more than 6 of the documents line dedup reads
    from corpusmill.filters.normalize import line_hashes

    survivors = [
        d for d in slice_docs() if d.id in kept_ids or d.id in {r["document"]["id"] for r in dropped_by(out, "lid")}
    ]
    docs_with = {}
    for d in survivors:
        for h in set(line_hashes(d.text, "ccnet")):
            docs_with[h] = docs_with.get(h, 0) + 1
    removed = {h for h, n in docs_with.items() if n > 6}
    assert removed  # the licence paragraphs every copy shares
    for d in read_output(out):
        assert not removed & set(line_hashes(d.text, "ccnet"))
    assert (
        cli_main(
            [
                "ccnet",
                "--input",
                SLICE,
                "--output",
                str(tmp_path / "x"),
                "--fuzzy-dedup",
                "--fuzzy-num-perm",
                "100",
                "--fuzzy-bands",
                "14",
            ]
        )
        == 2
    )


def dropped_by(out, step):
    return [r for records in read_dropped(out).get(step, {}).values() for r in records]


def test_llama3_order_through_unit_shards_gives_the_same_documents(tmp_path, monkeypatch):
    """The llama3 order's units write normalized documents to _shards/ and the final pass reads them back:
    the documents are those of the one-pipeline run."""
    import corpusmill.pipelines.ccnet_units as ccnet_units

    argv = [
        "--input",
        SLICE,
        "--dedup-order",
        "llama3",
        "--fuzzy-dedup",
        "--fuzzy-threshold",
        "0.5",
        "--fuzzy-bands",
        "28",
        "--line-max-docs",
        "6",
    ]
    assert cli_main(["ccnet", "--output", str(tmp_path / "one")] + argv) == 0
    monkeypatch.setattr(ccnet_units, "FUSE_SINGLE_UNIT", False)
    assert cli_main(["ccnet", "--output", str(tmp_path / "two")] + argv) == 0
    one, two = read_output(str(tmp_path / "one")), read_output(str(tmp_path / "two"))
    assert one and [d.to_json() for d in one] == [d.to_json() for d in two]
