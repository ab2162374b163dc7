"""Fuzzy document dedup on Beam: MinHash LSH candidates, exact Jaccard verification, connected
components (the rule and the algorithm: :mod:`corpusmill.dedup.fuzzy`).

``docs | FindNearDuplicates(params)`` gives ``(doc, None | ((kept id, kept location), cluster size) |
UNCONVERGED)`` for every document; :class:`corpusmill.dedup.fuzzy.DropNearDuplicates` turns it into
verdicts. Every shuffle is keyed so that no worker holds more than one key's streamed values: a band
bucket, a node's neighbours, a candidate pair's two shingle sets, a document's own label; joins whose
sides can be large (a document's candidate pairs, a root's members) stream them (:func:`stream_join`)
instead of Beam's CoGroupByKey, which makes each side a list.
"""

from __future__ import annotations

import apache_beam as beam

from corpusmill.dedup import fuzzy, minhash
from corpusmill.dedup.fuzzy import FuzzyParams  # noqa: F401 (the near-dedup knobs; stages import them from here)


def _key(doc):
    return doc.id, doc.location


class _Side:
    """The values of one tag among a key's grouped ``(tag, value)`` pairs, re-iterable: each pass reads
    the grouped values again (re-iterable and paged on every runner), so a side of a million values is
    never a list in memory, as Beam's CoGroupByKey would make it."""

    def __init__(self, values, tag: str):
        self.values, self.tag = values, tag

    def __iter__(self):
        return (value for tag, value in self.values if tag == self.tag)


def stream_join(pcolls: dict, label: str, fn):
    """Like ``CoGroupByKey`` then ``FlatMap(fn)``, with each side streamed: ``fn(key, {tag: side})``, a
    side being re-iterable over its values (:class:`_Side`)."""
    tags = sorted(pcolls)
    tagged = [pcolls[t] | f"{label}Tag{t}" >> beam.Map(lambda kv, t=t: (kv[0], (t, kv[1]))) for t in tags]
    return (
        tagged
        | f"{label}Flatten" >> beam.Flatten()
        | f"{label}Group" >> beam.GroupByKey()
        | f"{label}Apply" >> beam.FlatMap(lambda kv: fn(kv[0], {t: _Side(kv[1], t) for t in tags}))
    )


class ScorePairs(beam.PTransform):
    """Candidate pairs ``(a, b)`` and ``(key, shingle hashes)`` -> ``((a, b), score(set a, set b))``. The
    shingle sets travel to the pairs (a CoGroupByKey by key, then a GroupByKey by pair), so no worker holds
    more than one key's pairs or one pair's two sets. Shared by the books near-dup (overlap) and the web
    fuzzy dedup (Jaccard)."""

    def __init__(self, score):
        super().__init__()
        self.score = score

    def expand(self, inputs):
        pairs, shingles = inputs
        score = self.score

        def to_pairs(key, sides):  # the key's one shingle set, then its pairs streamed
            hashes = next(iter(sides["shingles"]), None)
            if hashes is not None:
                for pair in sides["pairs"]:
                    yield pair, (key, hashes)

        def scored(item):
            pair, sides = item
            sets = dict(sides)
            yield pair, score(sets[pair[0]], sets[pair[1]])

        members = pairs | "PairMembers" >> beam.FlatMap(lambda p: [(p[0], p), (p[1], p)])
        return (
            stream_join({"pairs": members, "shingles": shingles}, "ShinglesPerPair", to_pairs)
            | "GroupByPair" >> beam.GroupByKey()
            | "Score" >> beam.FlatMap(scored)
        )


class _Round(beam.PTransform):
    """One large-star then one small-star round over undirected edges ``(a, b)``."""

    def expand(self, edges):
        large = (
            edges
            | "BothWays" >> beam.FlatMap(lambda e: [(e[0], e[1]), (e[1], e[0])])
            | "GroupNeighbours" >> beam.GroupByKey()
            | "LargeStar" >> beam.FlatMap(lambda kv: fuzzy.large_star(kv[0], kv[1]))
            | "DistinctLarge" >> beam.Distinct()
        )
        return (
            large
            | "ToLarger" >> beam.Map(lambda e: (max(e), min(e)))
            | "GroupSmaller" >> beam.GroupByKey()
            | "SmallStar" >> beam.FlatMap(lambda kv: fuzzy.small_star(kv[0], kv[1]))
            | "DistinctSmall" >> beam.Distinct()
        )


def _final_large_star(edges):
    return (
        edges
        | "FinalBothWays" >> beam.FlatMap(lambda e: [(e[0], e[1]), (e[1], e[0])])
        | "FinalGroupNeighbours" >> beam.GroupByKey()
        | "FinalLargeStar" >> beam.FlatMap(lambda kv: fuzzy.large_star(kv[0], kv[1]))
        | "FinalDistinct" >> beam.Distinct()
    )


class ClusterEdges(beam.PTransform):
    """Verified edges ``(a, b)`` -> the clusters, as three PCollections: ``(member, root)`` for every node
    that is not its cluster's root (the root is the cluster's smallest node), ``(root, cluster size)``,
    and ``(node, UNCONVERGED)`` for the nodes ``rounds`` rounds did not resolve."""

    def __init__(self, rounds: int):
        super().__init__()
        self.rounds = rounds

    def expand(self, edges):
        for i in range(self.rounds):
            edges = edges | f"Round{i + 1}" >> _Round()
        stars = _final_large_star(edges)
        labels = stream_join(
            {
                "parent": stars | "ByChild" >> beam.Map(lambda e: (e[0], e[1])),
                "child": stars | "ByParent" >> beam.Map(lambda e: (e[1], e[0])),
            },
            "Resolve",
            lambda node, sides: fuzzy.resolve(node, sides["parent"], sides["child"]),
        )
        members = labels | "Members" >> beam.Filter(lambda kv: kv[1] != fuzzy.UNCONVERGED)
        sizes = (
            members
            | "Roots" >> beam.Map(lambda kv: kv[1])
            | "ClusterSize" >> beam.combiners.Count.PerElement()
            | "WithRoot" >> beam.Map(lambda kv: (kv[0], kv[1] + 1))
        )  # the members and the root
        unconverged = labels | "Unconverged" >> beam.Filter(lambda kv: kv[1] == fuzzy.UNCONVERGED)
        return members, sizes, unconverged


class FindNearDuplicates(beam.PTransform):
    """Documents -> ``(doc, None | ((kept id, kept location), cluster size) | UNCONVERGED)``: the whole
    rule over documents in one transform (the CCNet stage runs it on keys: corpusmill.engine.keyed)."""

    def __init__(self, params: FuzzyParams):
        super().__init__()
        self.params = params

    def expand(self, docs):
        prm = self.params

        def features(doc):
            hashes = minhash.shingle_hashes(doc.text, prm.shingle)
            sig = minhash.signature(hashes, prm.num_perm, prm.seed)
            return _key(doc), hashes, minhash.band_keys(sig, prm.bands, prm.rows)

        feats = docs | "Shingles" >> beam.Map(features)
        candidates = (
            feats
            | "BandKeys" >> beam.FlatMap(lambda f: [(band, f[0]) for band in f[2]])
            | "GroupByBand" >> beam.GroupByKey()
            | "BucketStar" >> beam.FlatMap(lambda kv: fuzzy.bucket_star(kv[1]))
            | "DistinctCandidates" >> beam.Distinct()
        )
        if prm.threshold > 0:
            shingles = feats | "KeyShingles" >> beam.Map(lambda f: (f[0], f[1]))
            edges = (
                (candidates, shingles)
                | "VerifyPairs" >> ScorePairs(fuzzy.jaccard)
                | "Verified" >> beam.FlatMap(lambda ps: [ps[0]] if ps[1] >= prm.threshold else [])
            )
        else:
            edges = candidates
        members, sizes, unconverged = edges | "Clusters" >> ClusterEdges(prm.rounds)

        def sized(root, sides):
            size = next(iter(sides["size"]), 0)
            for node in sides["member"]:
                yield node, (root, size)

        member_labels = stream_join(
            {"member": members | "MembersByRoot" >> beam.Map(lambda kv: (kv[1], kv[0])), "size": sizes}, "Sized", sized
        )
        all_labels = (member_labels, unconverged) | "AllLabels" >> beam.Flatten()

        def attach(item):
            _key_, grouped = item
            found = sorted(grouped["label"], key=lambda v: (v == fuzzy.UNCONVERGED, str(v)))
            label = fuzzy.UNCONVERGED if fuzzy.UNCONVERGED in found else (found[0] if found else None)
            for doc in grouped["doc"]:
                yield doc, label

        return (
            {"doc": docs | "KeyDocs" >> beam.Map(lambda d: (_key(d), d)), "label": all_labels}
            | "JoinLabels" >> beam.CoGroupByKey()
            | "AttachLabels" >> beam.FlatMap(attach)
        )


def _join_verdicts(docs, verdicts, label: str):
    """``(doc, verdict or None)`` for every doc, joining ``(id, verdict)`` pairs by id."""

    def attach(item):
        _id, grouped = item
        found = sorted(grouped["verdict"])
        for doc in grouped["doc"]:
            yield doc, (found[0] if found else None)

    return (
        {"doc": docs | f"{label}KeyDocs" >> beam.Map(lambda d: (d.id, d)), "verdict": verdicts}
        | f"{label}Join" >> beam.CoGroupByKey()
        | f"{label}Attach" >> beam.FlatMap(attach)
    )


class FindNearDuplicateBooks(beam.PTransform):
    """Books -> ``(doc, None | (kept id, overlap))``: MinHash LSH candidates, then the exact shingle overlap of
    each pair (corpusmill.pipelines.books: the larger id of a pair at or above the overlap is dropped)."""

    def __init__(self, params):
        super().__init__()
        self.params = params

    def expand(self, docs):
        prm = self.params
        bands, rows = minhash.lsh_params(prm.lsh_threshold, prm.num_perm)

        def features(doc):
            hashes = minhash.shingle_hashes(doc.text, prm.shingle)
            return doc.id, hashes, minhash.band_keys(minhash.signature(hashes, prm.num_perm, prm.seed), bands, rows)

        feats = docs | "Shingles" >> beam.Map(features)
        pairs = (
            feats
            | "BandKeys" >> beam.FlatMap(lambda f: [(key, f[0]) for key in f[2]])
            | "GroupByBand" >> beam.GroupByKey()
            | "BucketPairs" >> beam.FlatMap(lambda kv: minhash.candidate_pairs(kv[1], prm.max_bucket))
            | "DistinctPairs" >> beam.Distinct()
        )
        shingles = feats | "KeyShingles" >> beam.Map(lambda f: (f[0], f[1]))

        def kept(item):
            (a, b), share = item
            if share >= prm.overlap:
                yield b, (a, share)  # the larger id is the one dropped

        dups = (
            (pairs, shingles)
            | "OverlapPairs" >> ScorePairs(minhash.overlap)
            | "Overlap" >> beam.FlatMap(kept)
            | "GroupByDropped" >> beam.GroupByKey()
            | "KeptBook" >> beam.Map(lambda kv: (kv[0], minhash.near_duplicate_of(kv[1])))
        )
        return _join_verdicts(docs, dups, "Near")
