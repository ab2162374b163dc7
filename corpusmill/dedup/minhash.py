"""Book-level exact and near-duplicate detection, the pure part (Beam: corpusmill.pipelines.books).

LLaMA removed books with more than 90% content overlap. corpusmill measures the overlap of a pair of
books as the share of the smaller book's word shingles that also occur in the larger one
(:func:`overlap`), and uses MinHash LSH only to find the candidate pairs worth measuring:

1. :func:`shingle_hashes`: the sorted, distinct 64-bit hashes of a book's word n-grams (lowercased words,
   n = 5 by default). Word hashes are stable across processes (BLAKE2b), shingle hashes mix them with a
   vectorized polynomial + finalizer in numpy.
2. :func:`signature`: a datasketch ``MinHash`` of those hashes (its low 32 bits are the values MinHash
   permutes; ``update_batch`` in chunks, so memory stays bounded for long books).
3. :func:`band_keys`: LSH bands, ``b`` bands of ``r`` rows chosen by datasketch for a Jaccard threshold
   (:func:`lsh_params`). Two books sharing a band key are a candidate pair. On Beam the bands are grouped
   with a GroupByKey, so no worker holds every signature.
4. For every candidate pair the exact :func:`overlap` of the two shingle sets is computed.
5. :func:`near_duplicate_of` applies the rule, which depends on the pairs only (never on order):
   **a book is dropped when it has a near-duplicate partner with a smaller id; it names the smallest such
   partner as the kept book.** In a chain A~B, B~C with A !~ C (ids A < B < C) both B and C are dropped,
   C naming B, although B is itself dropped: the rule needs one pass and no connected components, at the
   cost of the part of C not in A (at most 1 - threshold of C is new relative to B).

Note on candidates: MinHash LSH estimates Jaccard similarity, while the criterion is containment. For
containment c and size ratio s = |smaller| / |larger|, Jaccard = c*s / (1 + s - c*s); at c = 0.9 that is
0.9*s / (1 + 0.1*s), so the default LSH threshold of 0.5 finds (with high probability: LSH is an S-curve,
not a step) the pairs whose smaller book has at least about 59% of the larger one's shingles. A short book fully contained in a much longer one (a play inside
a collected works) is not found; see docs/sources.md.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable, List, Optional, Tuple

import numpy as np

from corpusmill.core.document import Document
from corpusmill.core.hashing import fmix64
from corpusmill.filters.base import Filter, Verdict, drop, keep

_WORD = re.compile(r"\w+", re.UNICODE)
_MASK32 = np.uint64(0xFFFFFFFF)
_BATCH = 8192


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def shingle_hashes(text: str, n: int = 5) -> np.ndarray:
    """Sorted distinct 64-bit hashes of the lowercased word n-grams of ``text`` (uint64 array)."""
    words = _WORD.findall(text.lower())
    if not words:
        return np.zeros(0, dtype=np.uint64)
    cache = {}
    ids = np.fromiter(
        (cache[w] if w in cache else cache.setdefault(w, _word_hash(w)) for w in words),
        dtype=np.uint64,
        count=len(words),
    )
    if len(ids) < n:  # a text shorter than one shingle is one shingle
        n = len(ids)
    with np.errstate(over="ignore"):
        acc = np.zeros(len(ids) - n + 1, dtype=np.uint64)
        mult = np.uint64(0x100000001B3)  # FNV prime: a polynomial over the window, order-sensitive
        for k in range(n):
            acc = acc * mult + ids[k : len(ids) - n + 1 + k]
        return np.unique(fmix64(acc))


def _identity(value):
    return value


def signature(hashes: np.ndarray, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """datasketch MinHash hash values (uint64 array of ``num_perm``) of a shingle-hash set."""
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=_identity)
    low = (hashes & _MASK32).tolist()
    for i in range(0, len(low), _BATCH):
        m.update_batch(low[i : i + _BATCH])
    return np.asarray(m.hashvalues, dtype=np.uint64)


def lsh_params(threshold: float, num_perm: int = 128) -> Tuple[int, int]:
    """(bands, rows) that datasketch's MinHashLSH would use for a Jaccard ``threshold``."""
    from datasketch.lsh import _optimal_param

    b, r = _optimal_param(threshold, num_perm, 0.5, 0.5)
    return int(b), int(r)


def band_keys(sig: np.ndarray, bands: int, rows: int) -> List[str]:
    """One key per LSH band: ``"<band>:<hash of the band's rows>"``."""
    sig = np.ascontiguousarray(sig, dtype=np.uint64)
    return [
        f"{i}:{hashlib.blake2b(sig[i * rows : (i + 1) * rows].tobytes(), digest_size=10).hexdigest()}"
        for i in range(bands)
    ]


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> List[int]:
    """One signed 64-bit key per LSH band (the band's index and rows, hashed): the compact form of
    :func:`band_keys` that the web fuzzy dedup shuffles."""
    sig = np.ascontiguousarray(sig, dtype=np.uint64)
    return [
        int.from_bytes(
            hashlib.blake2b(i.to_bytes(2, "little") + sig[i * rows : (i + 1) * rows].tobytes(), digest_size=8).digest(),
            "little",
            signed=True,
        )
        for i in range(bands)
    ]


def candidate_pairs(book_ids: Iterable[str], max_bucket: int = 0) -> List[Tuple[str, str]]:
    """All pairs (smaller id, larger id) of one LSH bucket; ``max_bucket`` > 0 caps the bucket's
    members (the smallest ids are paired) so a degenerate bucket cannot explode quadratically."""
    ids = sorted(set(book_ids))
    if max_bucket and len(ids) > max_bucket:
        ids = ids[:max_bucket]
    return [(ids[i], ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids))]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the smaller set's shingles found in the larger one (0 when either is empty)."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    common = np.intersect1d(a, b, assume_unique=True).size
    return common / min(len(a), len(b))


def near_duplicate_of(partners: Iterable[Tuple[str, float]]) -> Tuple[str, float]:
    """Given the (smaller id, overlap) partners of one book at or above the threshold: the kept book it
    names (the smallest id) and that pair's overlap."""
    return min(partners)


class DuplicateBook(Filter):
    """A dedup step: takes ``(doc, None | (kept_id, overlap))`` and drops the duplicates as ``reason``,
    naming the kept book in metadata (``duplicate_of``, ``duplicate_overlap``)."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason

    def __call__(self, item: Tuple[Document, Optional[Tuple[str, float]]]) -> Verdict:
        doc, dup = item
        if dup is None:
            return keep(doc)
        kept_id, share = dup
        return drop(self.reason, doc.annotate(duplicate_of=kept_id, duplicate_overlap=round(float(share), 4)))
