"""Llama 3's token-distribution filter: drop the documents whose word distribution is furthest from the
corpus's (no Beam here; the CCNet stage runs it as a keyed step, :mod:`corpusmill.engine.token_keys`).

The Llama 3 paper: "we use token-distribution Kullback-Leibler divergence to filter out documents
containing excessive numbers of outlier tokens compared to the training corpus distribution". It names
neither the tokens nor the cutoff; corpusmill's reading, stated so a run can be judged:

- tokens are lowercased words (``\\w+`` runs), each keyed by a 64-bit hash of ``language + word``;
- the corpus distribution ``q`` of a language is the word counts of every document of that language the
  step sees (the run's documents at that point, in the pass before it);
- a document's score is ``KL(p || q) = sum_w p(w) log(p(w) / q(w))`` in nats, ``p`` its own word
  frequencies smoothed toward ``q`` by a Dirichlet prior of ``prior`` words (default 100; see
  :func:`kl_divergence`): with the plain frequencies the highest scores are the shortest documents, not
  the ones with outlier words (measured in docs/quality.md: on 3,000 Wikipedia extracts with 10 checksum
  listings and 10 licence files added, the 1% above the 0.99 quantile holds 7 and 4 of them with the plain
  KL, all 20 with a prior of 100);
- a document is dropped when its score is above the ``quantile`` of its language's scores (default 0.99:
  the 1% furthest from the corpus), the quantile read on fixed bins of width :data:`KL_BIN` nats;
- a language is judged only with at least ``min_docs`` documents, and never an unspaced language (Chinese,
  Japanese, Thai, ...: a ``\\w+`` run there is a whole phrase); those documents pass, counted
  (``counters.not_judged``).
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from corpusmill.core.document import Document
from corpusmill.filters.base import Filter, Verdict, drop, keep
from corpusmill.filters.gopher import UNSPACED_LANGUAGES as UNSPACED

WORD = re.compile(r"\w+")
PRIOR = 100.0  # words: the Dirichlet prior of a document's distribution (kl_divergence)
KL_MAX = 20.0  # nats; a score above it is counted in the last bin
KL_BIN = 0.001  # the quantile's resolution, in nats
KL_BINS = int(KL_MAX / KL_BIN)


def language_of(doc: Document) -> str:
    return str(doc.metadata.get("language") or "und")


def _key(lang: str, word: str) -> int:
    return int.from_bytes(hashlib.sha1(f"{lang}\x00{word}".encode("utf-8", "surrogatepass")).digest()[:8], "little")


def word_counts(text: str, lang: str) -> Tuple[np.ndarray, np.ndarray]:
    """The document's distinct words as sorted uint64 keys, and how often each occurs."""
    counts: Dict[str, int] = {}
    for word in WORD.findall(text.lower()):
        counts[word] = counts.get(word, 0) + 1
    keys = np.fromiter((_key(lang, w) for w in counts), dtype=np.uint64, count=len(counts))
    values = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    order = np.argsort(keys, kind="stable")
    return keys[order], values[order]


def merge_counts(parts: Iterable[Tuple[np.ndarray, np.ndarray]]) -> Tuple[np.ndarray, np.ndarray]:
    """Sparse counts summed by key: sorted unique keys and their totals."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    keys = np.concatenate([k for k, _ in parts])
    values = np.concatenate([v for _, v in parts])
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return keys[starts], np.add.reduceat(values, starts)


def kl_divergence(
    keys: np.ndarray,
    counts: np.ndarray,
    corpus_keys: np.ndarray,
    corpus_counts: np.ndarray,
    total: int,
    prior: float = 0.0,
) -> float:
    """KL(p || q) in nats: ``q`` the corpus's word frequencies (``total`` words of the document's language),
    ``p`` the document's, smoothed toward ``q`` with a Dirichlet prior of ``prior`` words:
    ``p(w) = (c(w) + prior * q(w)) / (n + prior)`` (``prior`` 0: the plain frequencies). Without the prior
    a short document scores high for being short (its few words are each a large share of it); with it
    every document is read as if ``prior`` words of the corpus were added. Every key of the document must
    be in the corpus."""
    n = int(counts.sum())
    if n == 0:
        return 0.0
    at = np.searchsorted(corpus_keys, keys)
    if (at >= len(corpus_keys)).any() or (corpus_keys[np.minimum(at, len(corpus_keys) - 1)] != keys).any():
        raise ValueError("a word of the document is not in the corpus distribution (it must have been counted)")
    q = corpus_counts[at] / total
    p = (counts + prior * q) / (n + prior)
    inside = float(np.sum(p * np.log(p / q)))
    if prior <= 0:
        return max(0.0, inside)
    # the corpus's other words: p(w) = prior * q(w) / (n + prior) each, log(p / q) the same for all of them
    rest = max(0.0, 1.0 - float(q.sum())) * prior / (n + prior)
    return max(0.0, inside + rest * math.log(prior / (n + prior)))


def kl_bin(value: float) -> int:
    return min(KL_BINS - 1, max(0, int(value / KL_BIN)))


def quantile_cutoff(histogram: np.ndarray, quantile: float) -> float:
    """The upper edge of the bin where the cumulative share of ``histogram`` (counts per :data:`KL_BIN`
    bin) first reaches ``quantile``: the documents of higher bins are above the cutoff."""
    total = int(histogram.sum())
    if total == 0:
        return math.inf
    need = math.ceil(quantile * total)
    b = int(np.searchsorted(np.cumsum(histogram), max(1, need)))
    return round((b + 1) * KL_BIN, 6)


def judged(lang: str, unspaced: Sequence[str]) -> bool:
    return lang not in unspaced


class TokenDistribution(Filter):
    """Takes ``(doc, None | (score, cutoff))``: drops the document as ``token_distribution`` when its
    score (KL divergence of its words from its language's, nats) is above the cutoff of its language;
    None: its language is not judged (too few documents, or unspaced), it passes, counted."""

    clean_output = True  # annotates nothing, cuts nothing: clean text stays clean (Filter.clean_output)

    name = "token_distribution"
    scores = ("token_kl",)
    bins = {"token_kl": (0.0, 8.0, 32, False)}

    def __init__(
        self, quantile: float = 0.99, min_docs: int = 50, prior: float = PRIOR, unspaced: Sequence[str] = UNSPACED
    ):
        self.quantile, self.min_docs, self.prior, self.unspaced = quantile, min_docs, prior, tuple(unspaced)

    def thresholds(self):
        return {}  # one cutoff per language, computed from the run (token_distribution.json)

    def __call__(self, item: Tuple[Document, Optional[Tuple[float, float]]]) -> Verdict:
        doc, mark = item
        if mark is None:
            return keep(doc, counts={"not_judged": 1})
        score, cutoff = mark
        m = {"token_kl": score}
        return drop(self.name, doc, measures=m) if score > cutoff else keep(doc, measures=m)
