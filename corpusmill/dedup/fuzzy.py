"""Document-level fuzzy dedup for web text (Llama 3's global MinHash; FineWeb's parameters), the pure part.
The Beam part is :class:`corpusmill.engine.fuzzy_dedup.FindNearDuplicates`.

1. Features: a document's word 5-gram hashes and their MinHash signature
   (:func:`corpusmill.dedup.minhash.shingle_hashes` and :func:`~corpusmill.dedup.minhash.signature`, the
   same code as the books near-dup), cut into ``bands`` LSH bands of ``rows`` values (FineWeb: 112
   hashes, 14 bands of 8 rows, so pairs above about 0.72 Jaccard collide in some band with probability
   over one half).
2. Candidates: the members of one band bucket are joined as a star to the bucket's smallest member
   (:func:`bucket_star`), read in two streamed passes: a bucket of a million copies costs one value of
   memory, and n - 1 candidate pairs, not n * (n - 1) / 2.
3. Verification: a candidate pair is an edge only when the exact Jaccard similarity of the two shingle
   sets is at least ``threshold`` (:func:`jaccard`); ``threshold`` 0 keeps every candidate (FineWeb).
4. Clusters: connected components of the verified edges, by the alternating large-star / small-star
   rounds of Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014): every round is
   two shuffles in which a node sees its neighbours streamed, and after enough rounds (O(log^2 n)) every
   edge joins a node to its component's smallest node. The rounds are unrolled in the pipeline
   (``rounds``); :func:`resolve` checks the result is a star forest, and a node that is not (too few
   rounds for this graph) is a dead letter that says to raise ``--fuzzy-rounds``, never a silent guess.
5. The rule: **each cluster keeps its smallest document key (id, location); every other member is
   dropped** ``near_duplicate``, naming the kept document and the cluster's size.

Nodes are document keys ``(id, location)`` (ids may repeat across inputs, as in
:mod:`corpusmill.engine.line_dedup`).
"""

from __future__ import annotations

import dataclasses
from typing import Hashable, Iterable, Iterator, Optional, Tuple

import numpy as np

from corpusmill.core.document import Document
from corpusmill.core.text import printable
from corpusmill.filters.base import Filter, Verdict, drop, keep

Node = Hashable
UNCONVERGED = "unconverged"


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|a & b| / |a | b| of two sorted distinct hash arrays (0 when both are empty)."""
    if len(a) == 0 and len(b) == 0:
        return 0.0
    common = np.intersect1d(a, b, assume_unique=True).size
    return common / (len(a) + len(b) - common)


def bucket_star(members: Iterable[Node]) -> Iterator[Tuple[Node, Node]]:
    """Candidate pairs ``(member, smallest member)`` of one LSH bucket; ``members`` is read twice (a
    grouped value list is re-iterable and paged on every runner)."""
    smallest = None
    for m in members:
        if smallest is None or m < smallest:
            smallest = m
    for m in members:
        if m != smallest:
            yield m, smallest


def large_star(node: Node, neighbours: Iterable[Node]) -> Iterator[Tuple[Node, Node]]:
    """Kiveris et al.'s large-star at ``node``: every larger neighbour is linked to the smallest of the
    node and its neighbours (two streamed passes over ``neighbours``)."""
    smallest = node
    for v in neighbours:
        if v < smallest:
            smallest = v
    for v in neighbours:
        if v > node:
            yield v, smallest


def small_star(node: Node, smaller: Iterable[Node]) -> Iterator[Tuple[Node, Node]]:
    """Kiveris et al.'s small-star at ``node``, given its neighbours smaller than it: the node and those
    neighbours are all linked to the smallest of them."""
    smallest = node
    for v in smaller:
        if v < smallest:
            smallest = v
    if smallest != node:
        yield node, smallest
    for v in smaller:
        if v != smallest:
            yield v, smallest


def resolve(node: Node, parents: Iterable[Node], children: Iterable[Node]) -> Iterator[Tuple[Node, object]]:
    """After the rounds, one node's view of the edges ``(child, parent)`` it is part of: in a star
    forest a node has one parent and no children (a member) or no parent (a root). Yields
    ``(node, parent)`` for a member, and ``(x, UNCONVERGED)`` for the node and its children where the
    edges are not yet a star forest."""
    first: Optional[Node] = None
    many = False
    for m in parents:
        if first is None:
            first = m
        elif m != first:
            many = True
    has_children = False
    for _c in children:
        has_children = True
        break
    if first is None:
        return  # a root (its members name it) or a node without edges
    if many or has_children:
        yield node, UNCONVERGED
        for c in children:
            yield c, UNCONVERGED
        return
    yield node, first


def exact_components(nodes: Iterable[Node], edges: Iterable[Tuple[Node, Node]]) -> dict:
    """Union-find on one machine: node -> the smallest node of its component. The reference the Beam
    rounds are checked against (tests, bench/fuzzy_dedup.py); not used by the pipeline."""
    parent = {n: n for n in nodes}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return {n: find(n) for n in parent}


class DropNearDuplicates(Filter):
    """Takes ``(doc, None | (kept key, cluster size) | UNCONVERGED)``: drops the members of a cluster that
    are not its kept document as ``near_duplicate`` (``duplicate_of``, ``duplicate_of_location``,
    ``cluster_size``); an unconverged node raises (a dead letter naming the fix)."""

    clean_output = True  # cuts, joins or annotates clean text (Filter.clean_output)

    name = "fuzzy_dedup"
    reason = "near_duplicate"

    def __init__(self, rounds: int):
        self.rounds = rounds

    def __call__(self, item: Tuple[Document, object]) -> Verdict:
        doc, found = item
        if found is None:
            return keep(doc)
        if found == UNCONVERGED:
            raise ValueError(
                f"the duplicate clusters did not converge in {self.rounds} rounds of connected "
                f"components; raise --fuzzy-rounds"
            )
        (kept_id, kept_location), size = found
        return drop(
            self.reason,
            doc.annotate(duplicate_of=kept_id, duplicate_of_location=printable(kept_location), cluster_size=int(size)),
        )


@dataclasses.dataclass(frozen=True)
class FuzzyParams:
    shingle: int = 5
    num_perm: int = 112
    bands: int = 14
    threshold: float = 0.75
    rounds: int = 16
    seed: int = 1

    @property
    def rows(self) -> int:
        return self.num_perm // self.bands
