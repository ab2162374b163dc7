"""The Wikipedia-reference classifier (RedPajama's take on LLaMA's "pages used as references").

A fastText supervised model with two labels, ``__label__wiki`` (reference-like) and ``__label__cc``
(random crawl), trained by ``corpusmill train-classifier``. The ``wiki_classifier`` step annotates
``wiki_prob`` (the probability of ``__label__wiki``) and drops documents below the threshold as
``not_wiki_like`` (RedPajama kept ``wiki_prob >= 0.25``).
"""

from __future__ import annotations

import os
import re
from typing import Optional

from corpusmill.core.errors import CorpusmillError
from corpusmill.filters.base import Filter, Verdict, drop, keep
from corpusmill.filters.perplexity import normalize_for_lm

POSITIVE, NEGATIVE = "__label__wiki", "__label__cc"
DEFAULT_THRESHOLD = 0.25
# fastText reads the text as one line of tokens; very long documents are judged by their beginning.
MAX_CHARS = 100_000
_TOKEN = re.compile(r"\w+|[^\w\s]")


def classifier_text(text: str, max_chars: int = MAX_CHARS) -> str:
    """The text as the classifier sees it, in training and in use: one line, lowercased and
    normalized as for the language model, punctuation split from words (fastText splits on spaces)."""
    text = text[:max_chars]
    return " ".join(_TOKEN.findall(" ".join(normalize_for_lm(line) for line in text.split("\n"))))


def load_classifier(path: str):
    """Load and check a classifier made by ``corpusmill train-classifier``."""
    from corpusmill.filters.lid import load_fasttext

    if not os.path.isfile(path):
        raise CorpusmillError(f"classifier {path} does not exist; train one with `corpusmill train-classifier`")
    model = load_fasttext(path)
    labels = set(model.get_labels())
    if labels != {POSITIVE, NEGATIVE}:
        raise CorpusmillError(f"{path} is a fastText model with labels {sorted(labels)}, not a Wikipedia-reference "
                              f"classifier ({POSITIVE}, {NEGATIVE}); train one with `corpusmill train-classifier`")
    return model


def wiki_probability(model, text: str) -> float:
    labels, probs = model.predict(classifier_text(text), k=2)
    for label, prob in zip(labels, probs):
        if label == POSITIVE:
            return round(float(min(max(prob, 0.0), 1.0)), 4)
    return 0.0


class WikiClassifier(Filter):
    """The ``wiki_classifier`` step: annotates ``wiki_prob``; drops ``not_wiki_like`` below ``threshold``."""

    name = "wiki_classifier"
    transient = ("_model",)
    model_files = ("model_path",)

    def __init__(self, model_path: str, threshold: float = DEFAULT_THRESHOLD):
        self.model_path = model_path
        self.threshold = threshold
        self._model = None

    def setup(self) -> None:
        if self._model is None:
            self._model = load_classifier(self.model_path)

    def probability(self, text: str) -> float:
        if self._model is None:
            self.setup()
        return wiki_probability(self._model, text)

    def __call__(self, doc) -> Verdict:
        prob = self.probability(doc.text)
        doc = doc.annotate(wiki_prob=prob)
        if prob < self.threshold:
            return drop("not_wiki_like", doc)
        return keep(doc)


def check_threshold(value: Optional[float]) -> float:
    value = DEFAULT_THRESHOLD if value is None else float(value)
    if not 0.0 <= value <= 1.0:
        raise CorpusmillError(f"--wiki-threshold {value}: must be between 0 and 1")
    return value
