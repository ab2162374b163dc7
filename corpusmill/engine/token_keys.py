"""The token-distribution step on keys (:mod:`corpusmill.filters.token_dist` says the rule).

Three stages, none of which moves a document through a shuffle:

1. the pass before the step writes, beside each piece, the word counts of the documents it kept, summed
   per language (:class:`TokenKeys`: sorted 64-bit word keys and counts; a piece's vocabulary, not its
   documents);
2. the pieces' counts are summed into each language's corpus distribution (a combine over the files'
   counts) and written once under the pass's work directory; each piece's documents are then read back
   from its work file and scored against it, one task per piece, which sends on only ``(ref, score)``;
3. each language's scores are histogrammed (fixed bins: the same cutoff whatever the order) into its
   cutoff; every scored document gets its mark ``(score, cutoff)``, which the next pass applies.

``token_distribution.json`` in the run's output says, per language: documents, words, distinct words,
whether it was judged, the quantile, the cutoff and how many documents are above it.
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Dict, List, Sequence, Tuple

import apache_beam as beam
import numpy as np

from corpusmill.core.files import join
from corpusmill.core.steps import TOKENS  # the step's kind, and its marks' payload kind
from corpusmill.engine.passes import Item, KeySpec, read_work
from corpusmill.filters.token_dist import (
    KL_BIN,
    KL_BINS,
    judged,
    kl_bin,
    kl_divergence,
    language_of,
    merge_counts,
    quantile_cutoff,
    word_counts,
)

REPORT = "_meta/token_distribution.json"  # (corpusmill.core.files.META_DIR)
_MAGIC = b"CMTOKENS1\n"
_MERGE_EVERY = 256  # documents' counts held before they are summed (keeps a piece's counts near its vocabulary)


# -- 1. a piece's counts, as the pass before writes them ---------------------------------------------------
@dataclasses.dataclass
class TokenKeys(KeySpec):
    """Each written document's words, summed per language over the piece (unspaced languages left out)."""

    unspaced: Tuple[str, ...] = ()
    suffix = ".tokens"

    def open(self, path: str):
        return _TokenKeyWriter(path, self.unspaced)


class _TokenKeyWriter:
    def __init__(self, path: str, unspaced: Sequence[str]):
        self.path, self.unspaced = path, tuple(unspaced)
        self.langs: Dict[str, list] = {}  # lang -> [documents, [(keys, counts)]]

    def add(self, item: Item) -> None:
        lang = language_of(item.doc)
        if not judged(lang, self.unspaced):
            return
        entry = self.langs.setdefault(lang, [0, []])
        entry[0] += 1
        entry[1].append(word_counts(item.doc.text, lang))
        if len(entry[1]) >= _MERGE_EVERY:
            entry[1] = [merge_counts(entry[1])]

    def close(self) -> int:
        counts = {lang: (docs, *merge_counts(parts)) for lang, (docs, parts) in self.langs.items()}
        self.langs = {}
        return write_counts(self.path, counts)

    def abort(self, exc: BaseException) -> None:
        self.langs = {}


def write_counts(path: str, counts: Dict[str, Tuple[int, np.ndarray, np.ndarray]]) -> int:
    """``{lang: (documents, keys, counts)}`` to one file: a JSON header line, then each language's keys
    (little-endian uint64) and counts (int64), in the header's order."""
    from corpusmill.io.files import atomic_write

    langs = sorted(counts)
    head = [{"lang": lang, "documents": int(counts[lang][0]), "distinct": len(counts[lang][1])} for lang in langs]
    body = [
        b for lang in langs for b in (counts[lang][1].astype("<u8").tobytes(), counts[lang][2].astype("<i8").tobytes())
    ]
    header = _MAGIC + json.dumps(head).encode() + b"\n"
    with atomic_write(path) as handle:
        handle.write(header)
        for b in body:
            handle.write(b)
    return len(header) + sum(len(b) for b in body)


def read_counts(path: str) -> Dict[str, Tuple[int, np.ndarray, np.ndarray]]:
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        data = fh.read()
    if not data.startswith(_MAGIC):
        raise ValueError(f"{path}: not a corpusmill token-count file")
    stream = io.BytesIO(data[len(_MAGIC) :])
    head = json.loads(stream.readline())
    out = {}
    for entry in head:
        n = entry["distinct"]
        keys = np.frombuffer(stream.read(8 * n), dtype="<u8").astype(np.uint64)
        values = np.frombuffer(stream.read(8 * n), dtype="<i8").astype(np.int64)
        out[entry["lang"]] = (entry["documents"], keys, values)
    return out


# -- 2. the corpus distribution and each document's score -----------------------------------------------------
class _SumCounts(beam.CombineFn):
    """Token-count files -> ``{lang: (documents, keys, counts)}`` summed (order-free: integer sums)."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, path):
        for lang, (docs, keys, values) in read_counts(path).items():
            entry = acc.setdefault(lang, [0, []])
            entry[0] += docs
            entry[1].append((keys, values))
            if len(entry[1]) >= 16:
                entry[1] = [merge_counts(entry[1])]
        return acc

    def merge_accumulators(self, accs):
        out = {}
        for acc in accs:
            for lang, (docs, parts) in acc.items():
                entry = out.setdefault(lang, [0, []])
                entry[0] += docs
                entry[1].extend(parts)
        for entry in out.values():
            entry[1] = [merge_counts(entry[1])]
        return out

    def extract_output(self, acc):
        return {lang: (docs, *merge_counts(parts)) for lang, (docs, parts) in acc.items()}


def _write_corpus(counts, path: str) -> str:
    write_counts(path, counts)
    return path


_CORPUS_CACHE: Dict[str, dict] = {}


def _corpus(path: str) -> dict:
    if path not in _CORPUS_CACHE:
        _CORPUS_CACHE.clear()  # one run's distribution at a time
        _CORPUS_CACHE[path] = {
            lang: (docs, keys, values, int(values.sum())) for lang, (docs, keys, values) in read_counts(path).items()
        }
    return _CORPUS_CACHE[path]


def _score_piece(piece, corpus_path: str, min_docs: int, prior: float):
    """One piece's documents read back and scored: ``(piece, refs, languages, scores)``."""
    corpus = _corpus(corpus_path)
    refs: List[int] = []
    langs: List[str] = []
    scores: List[float] = []
    for item in read_work(piece.docs):
        lang = language_of(item.doc)
        entry = corpus.get(lang)
        if entry is None or entry[0] < min_docs:
            continue
        keys, values = word_counts(item.doc.text, lang)
        if not len(keys):
            continue
        refs.append(item.ref)
        langs.append(lang)
        scores.append(round(kl_divergence(keys, values, entry[1], entry[2], entry[3], prior), 6))
    yield piece.index, refs, langs, scores


def _histograms(scored) -> Dict[str, np.ndarray]:
    _piece, _refs, langs, scores = scored
    out: Dict[str, np.ndarray] = {}
    for lang, score in zip(langs, scores):
        hist = out.get(lang)
        if hist is None:
            hist = out[lang] = np.zeros(KL_BINS, dtype=np.int64)
        hist[kl_bin(score)] += 1
    return out


def _sum_histograms(parts) -> Dict[str, np.ndarray]:
    out: Dict[str, np.ndarray] = {}
    for part in parts:
        for lang, hist in part.items():
            out[lang] = out[lang] + hist if lang in out else hist.copy()
    return out


def _marks(scored, cutoffs: Dict[str, float]):
    piece, refs, langs, scores = scored
    if refs:
        payload = json.dumps([[r, s, cutoffs[lang]] for r, lang, s in zip(refs, langs, scores)])
        yield piece, (TOKENS, payload)


def _report(histograms: Dict[str, np.ndarray], corpus_path: str, rule, out_dir: str) -> dict:
    from corpusmill.io.files import write_text_atomic

    languages = {}
    for lang, (docs, keys, _values, words) in sorted(_corpus(corpus_path).items()):
        hist = histograms.get(lang)
        entry = {"documents": docs, "words": words, "distinct_words": len(keys), "judged": hist is not None}
        if hist is not None:
            cutoff = quantile_cutoff(hist, rule.quantile)
            entry.update(cutoff=cutoff, above=int(hist[int(round(cutoff / KL_BIN)) :].sum()))
        else:
            entry["why_not"] = f"fewer than {rule.min_docs} documents"
        languages[lang] = entry
    report = {
        "quantile": rule.quantile,
        "min_docs": rule.min_docs,
        "prior_words": rule.prior,
        "unspaced_languages": sorted(rule.unspaced),
        "score": "KL(document || language) in nats",
        "languages": languages,
    }
    write_text_atomic(join(out_dir, REPORT), json.dumps(report, indent=2, sort_keys=True) + "\n")
    return {lang: e["cutoff"] for lang, e in languages.items() if e["judged"]}


class FindTokenOutliers(beam.PTransform):
    """Pieces (with token-count files) -> marks ``(piece, (TOKENS, [[ref, score, cutoff], ...]))`` for
    every scored document; ``work_dir`` holds the corpus distribution, ``out_dir`` gets the report."""

    def __init__(self, rule, work_dir: str, out_dir: str):
        super().__init__()
        self.rule, self.work_dir, self.out_dir = rule, work_dir, out_dir  # rule: a filters.token_dist.TokenDistribution

    def expand(self, pieces):
        corpus = (
            pieces
            | "CountFiles" >> beam.Map(lambda piece: piece.keys + TokenKeys.suffix)
            | "Corpus" >> beam.CombineGlobally(_SumCounts())
            | "WriteCorpus" >> beam.Map(_write_corpus, join(self.work_dir, "corpus.tokens"))
        )
        scored = pieces | "Score" >> beam.FlatMap(
            _score_piece, beam.pvalue.AsSingleton(corpus), self.rule.min_docs, self.rule.prior
        )
        cutoffs = (
            scored
            | "Histograms" >> beam.Map(_histograms)
            | "SumHistograms" >> beam.CombineGlobally(_sum_histograms)
            | "Cutoffs" >> beam.Map(_report, beam.pvalue.AsSingleton(corpus), self.rule, self.out_dir)
        )
        from corpusmill.engine.keyed import _marks_counted

        return (
            scored
            | "Marks" >> beam.FlatMap(_marks, beam.pvalue.AsSingleton(cutoffs))
            | "Counted" >> beam.FlatMap(lambda m: _marks_counted([m]))
        )
