"""Gopher's rules (Rae et al. 2021, appendix A, table A1), as filters: repetition and quality.

Words are white-space separated tokens (no tokenizer model to download); a word's "symbols" are
characters that are neither letters nor digits. Each rule is a drop reason, checked in this order:

:class:`GopherRepetition` (``gopher_repetition``), against logs, boilerplate and spam:

- ``dup_para_frac`` > 0.30: paragraphs (split at blank lines) that repeat an earlier paragraph, of all;
- ``dup_para_char_frac`` > 0.20: characters in those repeated paragraphs, of all characters;
- ``dup_line_frac`` > 0.30 and ``dup_line_char_frac`` > 0.20: the same for lines;
- ``top_{2,3,4}gram_char_frac`` > 0.20 / 0.18 / 0.16: characters covered by the most frequent word n-gram
  (its occurrences times its length), of all characters in words;
- ``dup_{5..10}gram_char_frac`` > 0.15 / 0.14 / 0.13 / 0.12 / 0.11 / 0.10: characters in words covered by
  n-grams that occur more than once (each such character counted once), of all characters in words.

:class:`GopherQuality` (``gopher_quality``):

- ``too_few_words`` < 50 / ``too_many_words`` > 100,000 words;
- ``mean_word_length`` outside 3..10 characters;
- ``too_many_symbols``: ``#`` or ellipses (``...``, ``…``) per word > 0.1;
- ``too_many_bullets``: > 90% of lines start with a bullet (``•``, ``-``, ``*``, ``·``, ``‣``);
- ``too_many_ellipsis_lines``: > 30% of lines end with an ellipsis;
- ``too_few_alpha_words``: < 80% of words contain a letter;
- ``too_few_stop_words``: fewer than 2 of *the, be, to, of, and, that, have, with* (case folded).

Both annotate nothing; they return their measures with the verdict, so profile.json histograms them
for kept and dropped documents (see ``scores``). Differences from datatrove's implementation, measured
in ``bench/gopher_rules.py``, are in docs/quality.md; ``counting="datatrove"`` counts as datatrove does
(:mod:`corpusmill.filters.gopher_datatrove`).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

from corpusmill.core.document import Document
from corpusmill.filters.base import Filter, Verdict, drop, keep

STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
BULLETS = ("•", "-", "*", "·", "‣", "–")
_PARAGRAPHS = re.compile(r"\n\s*\n")
TOP_NGRAMS = ((2, 0.20), (3, 0.18), (4, 0.16))
DUP_NGRAMS = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))


def _duplicates(parts: Sequence[str]) -> Tuple[float, int]:
    """(share of parts that repeat an earlier one, characters in those repeats)."""
    seen, dup, chars = set(), 0, 0
    for p in parts:
        if p in seen:
            dup += 1
            chars += len(p)
        else:
            seen.add(p)
    return (dup / len(parts) if parts else 0.0), chars


def top_ngram_char_frac(words: List[str], n: int, total: int) -> float:
    """Characters of the most frequent word n-gram (its length in word characters, times its count)."""
    if len(words) < n or not total:
        return 0.0
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    gram, count = max(grams.items(), key=lambda kv: (kv[1], sum(map(len, kv[0]))))
    if count < 2:
        return 0.0
    return sum(map(len, gram)) * count / total


def dup_ngram_char_frac(words: List[str], n: int, total: int) -> float:
    """Characters of words covered by a word n-gram that occurs more than once, each counted once."""
    if len(words) < n or not total:
        return 0.0
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if grams[tuple(words[i : i + n])] > 1:
            for j in range(i, i + n):
                covered[j] = True
    return sum(len(w) for w, c in zip(words, covered) if c) / total


def repetition_measures(text: str) -> Dict[str, float]:
    paragraphs = [p for p in _PARAGRAPHS.split(text.strip()) if p.strip()]
    lines = [line for line in text.split("\n") if line.strip()]
    n_chars = max(1, len(text))
    out: Dict[str, float] = {}
    out["dup_para_frac"], chars = _duplicates(paragraphs)
    out["dup_para_char_frac"] = chars / n_chars
    out["dup_line_frac"], chars = _duplicates(lines)
    out["dup_line_char_frac"] = chars / n_chars
    words = text.split()
    total = sum(map(len, words))
    for n, _ in TOP_NGRAMS:
        out[f"top_{n}gram_char_frac"] = top_ngram_char_frac(words, n, total)
    for n, _ in DUP_NGRAMS:
        out[f"dup_{n}gram_char_frac"] = dup_ngram_char_frac(words, n, total)
    return out


class GopherRepetition(Filter):
    """Gopher's repetition rules (see the module docstring); each a drop reason named after its measure."""

    name = "gopher_repetition"
    scores = ("dup_line_frac", "dup_para_frac", "top_2gram_char_frac", "dup_5gram_char_frac")
    bins = {score: (0.0, 1.0, 20, False) for score in scores}

    def __init__(
        self,
        dup_line_frac: float = 0.30,
        dup_para_frac: float = 0.30,
        dup_line_char_frac: float = 0.20,
        dup_para_char_frac: float = 0.20,
        top_ngrams: Sequence[Tuple[int, float]] = TOP_NGRAMS,
        dup_ngrams: Sequence[Tuple[int, float]] = DUP_NGRAMS,
        unspaced: Sequence[str] = (),
        counting: str = "paper",
    ):
        self.counting = _counting(counting)
        self.top_ngrams, self.dup_ngrams = tuple(top_ngrams), tuple(dup_ngrams)
        # languages written without spaces between words (zh, ja, th, ...): their "words" are whole runs of
        # text, so the word n-gram rules are off for them and only the line and paragraph rules judge
        self.unspaced = frozenset(unspaced)
        self.limits = {
            "dup_para_frac": dup_para_frac,
            "dup_para_char_frac": dup_para_char_frac,
            "dup_line_frac": dup_line_frac,
            "dup_line_char_frac": dup_line_char_frac,
        }
        self.limits.update({f"top_{n}gram_char_frac": f for n, f in top_ngrams})
        self.limits.update({f"dup_{n}gram_char_frac": f for n, f in dup_ngrams})

    def thresholds(self):
        return dict(self.limits)

    def __call__(self, doc: Document) -> Verdict:
        if self.counting == "datatrove":
            from corpusmill.filters import gopher_datatrove

            if not doc.text:
                return drop("empty", doc)
            m = gopher_datatrove.repetition_measures(doc.text, self.top_ngrams, self.dup_ngrams)
        else:
            m = repetition_measures(doc.text)
        lines_only = doc.metadata.get("language") in self.unspaced
        for rule, limit in self.limits.items():
            if lines_only and "gram" in rule:
                continue
            if m[rule] > limit:
                return drop(rule, doc, measures=m)
        return keep(doc, measures=m)


def quality_measures(text: str, stop_words: Sequence[str] = STOP_WORDS) -> Dict[str, float]:
    words = text.split()
    n = len(words)
    lines = [line for line in text.split("\n") if line.strip()]
    m = {"words": float(n)}
    m["mean_word_length"] = sum(map(len, words)) / n if n else 0.0
    m["hash_per_word"] = text.count("#") / n if n else 0.0
    m["ellipsis_per_word"] = (text.count("...") + text.count("…")) / n if n else 0.0
    m["bullet_line_share"] = (sum(line.lstrip().startswith(BULLETS) for line in lines) / len(lines)) if lines else 0.0
    m["ellipsis_line_share"] = (
        (sum(line.rstrip().endswith(("...", "…")) for line in lines) / len(lines)) if lines else 0.0
    )
    m["alpha_word_share"] = sum(any(c.isalpha() for c in w) for w in words) / n if n else 0.0
    present = {w.lower().strip(".,;:!?\"'()[]") for w in words}
    m["stop_words"] = float(sum(1 for s in stop_words if s in present))
    return m


class GopherQuality(Filter):
    """Gopher's quality rules (see the module docstring)."""

    name = "gopher_quality"
    scores = ("words", "mean_word_length", "alpha_word_share")
    bins = {"mean_word_length": (0.0, 20.0, 40, False), "alpha_word_share": (0.0, 1.0, 20, False)}

    def __init__(
        self,
        min_words: int = 50,
        max_words: int = 100_000,
        min_mean_word_length: float = 3.0,
        max_mean_word_length: float = 10.0,
        max_symbol_word_ratio: float = 0.1,
        max_bullet_lines: float = 0.9,
        max_ellipsis_lines: float = 0.3,
        min_alpha_words: float = 0.8,
        min_stop_words: int = 2,
        stop_words: Optional[Sequence[str]] = None,
        languages: Optional[Sequence[str]] = None,
        counting: str = "paper",
    ):
        self.counting = _counting(counting)
        # the rules count English words and stop words: a document in another language (metadata.language)
        # passes unjudged, counted (``counters.not_judged``); None judges every document
        self.languages = None if languages is None else frozenset(languages)
        self.min_words, self.max_words = min_words, max_words
        self.min_mean, self.max_mean = min_mean_word_length, max_mean_word_length
        self.max_symbols, self.max_bullets, self.max_ellipsis = (
            max_symbol_word_ratio,
            max_bullet_lines,
            max_ellipsis_lines,
        )
        self.min_alpha, self.min_stop = min_alpha_words, min_stop_words
        self.stop_words = tuple(stop_words or STOP_WORDS)

    def thresholds(self):
        return {
            "words": [self.min_words, self.max_words],
            "mean_word_length": [self.min_mean, self.max_mean],
            "alpha_word_share": self.min_alpha,
        }

    def __call__(self, doc: Document) -> Verdict:
        lang = doc.metadata.get("language")
        if self.languages is not None and lang and lang not in self.languages:
            return keep(doc, counts={"not_judged": 1})
        if self.counting == "datatrove":
            from corpusmill.filters import gopher_datatrove

            m = gopher_datatrove.quality_measures(doc.text, self.stop_words)
        else:
            m = quality_measures(doc.text, self.stop_words)
        if m["words"] < self.min_words:
            return drop("too_few_words", doc, measures=m)
        if self.max_words and m["words"] > self.max_words:
            return drop("too_many_words", doc, measures=m)
        if not self.min_mean <= m["mean_word_length"] <= self.max_mean:
            return drop("mean_word_length", doc, measures=m)
        if m["hash_per_word"] > self.max_symbols or m["ellipsis_per_word"] > self.max_symbols:
            return drop("too_many_symbols", doc, measures=m)
        if m["bullet_line_share"] > self.max_bullets:
            return drop("too_many_bullets", doc, measures=m)
        if m["ellipsis_line_share"] > self.max_ellipsis:
            return drop("too_many_ellipsis_lines", doc, measures=m)
        if m["alpha_word_share"] < self.min_alpha:
            return drop("too_few_alpha_words", doc, measures=m)
        if m["stop_words"] < self.min_stop:
            return drop("too_few_stop_words", doc, measures=m)
        return keep(doc, measures=m)


COUNTINGS = ("paper", "datatrove")


def _counting(counting: str) -> str:
    """``paper``: this module's reading of Gopher's table; ``datatrove``: datatrove 0.10.1's counting
    (corpusmill.filters.gopher_datatrove), which needs spaCy."""
    if counting not in COUNTINGS:
        raise ValueError(f"gopher counting {counting!r}: expected one of {', '.join(COUNTINGS)}")
    return counting


UNSPACED_LANGUAGES = ("zh", "ja", "th", "lo", "km", "my", "bo", "wuu", "yue")


class DirtyWords(Filter):
    """Llama 3's "dirty word counting": drop a page whose share of words on a list (LDNOOBW English by
    default, shipped in corpusmill/data/badwords with its licence) is above ``max_share``. Only documents
    in the list's ``languages`` are judged; others pass, counted (``counters.not_judged``)."""

    name = "dirty_words"
    scores = ("dirty_word_share",)
    bins = {"dirty_word_share": (0.0, 0.1, 20, False)}

    def __init__(self, path: Optional[str] = None, max_share: float = 0.01, languages: Sequence[str] = ("en",)):
        self.path, self.max_share, self.languages = path, max_share, frozenset(languages)
        self._words = None

    transient = ("_words",)

    def thresholds(self):
        return {"dirty_word_share": self.max_share}

    def setup(self) -> None:
        if self._words is None:
            from corpusmill.filters.c4 import default_badwords_path, load_badwords

            self._words = frozenset(w.lower() for w in load_badwords(self.path or default_badwords_path()))

    def __call__(self, doc: Document) -> Verdict:
        lang = doc.metadata.get("language")
        if lang and lang not in self.languages:
            return keep(doc, counts={"not_judged": 1})
        if self._words is None:
            self.setup()
        words = [w.strip(".,;:!?\"'()[]{}").lower() for w in doc.text.split()]
        share = sum(w in self._words for w in words) / max(1, len(words))
        m = {"dirty_word_share": share}
        return drop("dirty_words", doc, measures=m) if share > self.max_share else keep(doc, measures=m)
