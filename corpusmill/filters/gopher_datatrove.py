"""Gopher's measures counted as datatrove counts them (``gopher_counting: datatrove``), so a FineWeb-style
run can be reproduced; corpusmill's own counting (corpusmill.filters.gopher) keeps the paper's reading.

Read from datatrove 0.10.1 (``pipeline/filters/gopher_repetition_filter.py``, ``gopher_quality_filter.py``,
``utils/text.py``, ``utils/word_tokenizers.py``); the differences from the paper's reading:

- words are spaCy's blank English tokenizer's tokens (every punctuation mark one; spaCy is needed:
  ``pip install 'corpusmill[datatrove-compat]'``); the quality rules count words with a character outside
  datatrove's punctuation set, and the alphabetic-word share is over all tokens, punctuation included;
- paragraphs split at 2+ newlines, lines at 1+ (blank-only lines count); fractions are over ``len(text)``;
- the top n-gram is its words joined by spaces, its length times its count, even a count of one;
- duplicated n-grams (words joined without spaces) are counted greedily: after a repeat, the next n words
  are skipped;
- stop words match exact tokens (``The`` is not ``the``); bullets are ``•`` and ``-`` only; lines for the
  bullet and ellipsis rules are ``text.splitlines()``.

The measures have the paper counting's names, so the rules, reasons and profile are the same.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Dict, List, Sequence

from corpusmill.core.errors import CorpusmillError
from corpusmill.filters.gopher import _duplicates

# datatrove.utils.text.PUNCTUATION (0.10.1), as a set of characters
PUNCTUATION_SET = set(
    "!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»"
    + "".join(map(chr, (x for a, b in ((0, 9), (11, 13), (13, 32), (127, 160)) for x in range(a, b))))
)
_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile("\n+")
_NLP = None


def spacy_available() -> bool:
    try:
        import spacy  # noqa: F401
    except ImportError:
        return False
    return True


def require_spacy(where: str) -> None:
    if not spacy_available():
        raise CorpusmillError(
            f"{where}: datatrove counts words with spaCy's English tokenizer; install it: "
            f"pip install 'corpusmill[datatrove-compat]' (or pip install spacy)"
        )


def words(text: str) -> List[str]:
    """datatrove's ``split_into_words(text, "eng")``: spaCy's blank English tokens, stripped, none empty."""
    global _NLP
    if _NLP is None:
        import spacy

        _NLP = spacy.blank("en")
    _NLP.max_length = len(text) + 10
    try:
        doc = _NLP.tokenizer(text)
    except Exception:
        if "IS_ALPHA" not in text:  # the one string datatrove knows breaks the tokenizer
            raise
        doc = _NLP.tokenizer(text.replace("IS_ALPHA", ""))
    return [t.text.strip() for t in doc if t.text.strip()]


def _top(ws: List[str], n: int) -> int:
    grams = Counter(" ".join(ws[i : i + n]) for i in range(len(ws) - n + 1))
    if not grams:
        return 0
    gram, count = grams.most_common(1)[0]
    return len(gram) * count


def _greedy_duplicates(ws: List[str], n: int) -> int:
    seen, chars, i = set(), 0, 0
    while i < len(ws) - n + 1:
        gram = "".join(ws[i : i + n])
        if gram in seen:
            chars += len(gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return chars


def repetition_measures(text: str, top_ngrams, dup_ngrams) -> Dict[str, float]:
    n_chars = max(1, len(text))
    out: Dict[str, float] = {}
    out["dup_para_frac"], chars = _duplicates(_PARAGRAPHS.split(text.strip()))  # (repeats / parts, chars)
    out["dup_para_char_frac"] = chars / n_chars
    out["dup_line_frac"], chars = _duplicates(_LINES.split(text))
    out["dup_line_char_frac"] = chars / n_chars
    ws = words(text)
    for n, _ in top_ngrams:
        out[f"top_{n}gram_char_frac"] = _top(ws, n) / n_chars
    for n, _ in dup_ngrams:
        out[f"dup_{n}gram_char_frac"] = _greedy_duplicates(ws, n) / n_chars
    return out


def quality_measures(text: str, stop_words: Sequence[str]) -> Dict[str, float]:
    ws = words(text)
    n = len(ws)
    counted = [w for w in ws if any(ch not in PUNCTUATION_SET for ch in w)]
    lines = text.splitlines()
    m = {"words": float(len(counted))}
    m["mean_word_length"] = sum(map(len, counted)) / len(counted) if counted else 0.0
    m["hash_per_word"] = text.count("#") / n if n else 0.0
    m["ellipsis_per_word"] = (text.count("...") + text.count("…")) / n if n else 0.0
    m["bullet_line_share"] = (
        sum(s.lstrip().startswith("•") or s.lstrip().startswith("-") for s in lines) / len(lines) if lines else 0.0
    )
    m["ellipsis_line_share"] = (
        sum(s.rstrip().endswith("...") or s.rstrip().endswith("…") for s in lines) / len(lines) if lines else 0.0
    )
    m["alpha_word_share"] = sum(any(c.isalpha() for c in w) for w in ws) / n if n else 0.0
    m["stop_words"] = float(len(set(stop_words) & set(ws)))
    return m
