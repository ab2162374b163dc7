"""The Wikipedia-reference classifier (RedPajama's take on LLaMA's "pages used as references").

A fastText supervised model with two labels, ``__label__wiki`` (reference-like) and ``__label__cc``
(random crawl), trained by ``corpusmill train-classifier``. The ``wiki_classifier`` step annotates
``wiki_prob`` (the probability of ``__label__wiki``) and drops documents below the threshold as
``not_wiki_like`` (RedPajama kept ``wiki_prob >= 0.25``).
"""

from __future__ import annotations

import os
import re
from typing import Dict, Optional, Union

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
        raise CorpusmillError(
            f"{path} is a fastText model with labels {sorted(labels)}, not a Wikipedia-reference "
            f"classifier ({POSITIVE}, {NEGATIVE}); train one with `corpusmill train-classifier`"
        )
    return model


def wiki_probability(model, text: str) -> float:
    labels, probs = model.predict(classifier_text(text), k=2)
    for label, prob in zip(labels, probs):
        if label == POSITIVE:
            return round(float(min(max(prob, 0.0), 1.0)), 4)
    return 0.0


def parse_classifiers(specs) -> Dict[str, str]:
    """``--classifier en=en.bin,fr=fr.bin`` as ``{lang: path}``; a bare path is the English model."""
    if isinstance(specs, str):
        specs = [specs]
    models: Dict[str, str] = {}
    for spec in specs or ():
        lang, sep, path = spec.partition("=")
        if not sep:
            lang, path = "en", spec
        lang, path = lang.strip(), path.strip()
        if not lang or not path or "/" in lang or ":" in lang:
            raise CorpusmillError(f"--classifier {spec!r}: expected LANG=MODEL (e.g. en=models/en.bin) or a path")
        if lang in models:
            raise CorpusmillError(f"--classifier names two models for {lang!r}; give one per language")
        models[lang] = path
    return models


class WikiClassifier(Filter):
    """The ``wiki_classifier`` step, one model per language: annotates ``wiki_prob``; drops
    ``not_wiki_like`` below ``threshold``. A document in a language without a model passes unchanged and
    is counted as ``no_classifier`` (the step's counters), never judged by another language's model."""

    clean_output = True  # cuts, joins or annotates clean text (Filter.clean_output)

    name = "wiki_classifier"
    transient = ("_models",)
    model_files = ("models",)
    scores = ("wiki_prob",)

    def __init__(self, models: Union[str, Dict[str, str]], threshold: float = DEFAULT_THRESHOLD):
        self.models = parse_classifiers(models) if isinstance(models, str) else dict(models)
        self.threshold = threshold
        self._models = None

    def setup(self) -> None:
        if self._models is None:
            self._models = {lang: load_classifier(path) for lang, path in self.models.items()}

    def thresholds(self):
        return {"wiki_prob": self.threshold}

    def probability(self, text: str, lang: str = "en") -> Optional[float]:
        if self._models is None:
            self.setup()
        model = self._models.get(lang)
        return None if model is None else wiki_probability(model, text)

    def __call__(self, doc) -> Verdict:
        prob = self.probability(doc.text, doc.metadata.get("language", ""))
        if prob is None:
            return keep(doc, {"no_classifier": 1})
        return wiki_verdict(doc.annotate(wiki_prob=prob), self.threshold)


def wiki_verdict(doc, threshold: float) -> Verdict:
    """The wiki_classifier step's verdict on a document that carries its ``wiki_prob`` (none: its
    language has no classifier, counted as ``no_classifier``)."""
    prob = doc.metadata.get("wiki_prob")
    if prob is None:
        return keep(doc, {"no_classifier": 1})
    if prob < threshold:
        return drop("not_wiki_like", doc)
    return keep(doc)


class WikiThreshold(Filter):
    """The ``wiki_classifier`` step of ``corpusmill filter``: the verdict from the stored ``wiki_prob`` of
    a scored run, with a new threshold and no model."""

    clean_output = True  # cuts, joins or annotates clean text (Filter.clean_output)

    name = "wiki_classifier"
    scores = ("wiki_prob",)

    def __init__(self, threshold: float = DEFAULT_THRESHOLD):
        self.threshold = threshold

    def thresholds(self):
        return {"wiki_prob": self.threshold}

    def __call__(self, doc) -> Verdict:
        return wiki_verdict(doc, self.threshold)


def check_threshold(value: Optional[float]) -> float:
    value = DEFAULT_THRESHOLD if value is None else float(value)
    if not 0.0 <= value <= 1.0:
        raise CorpusmillError(f"--wiki-threshold {value}: must be between 0 and 1")
    return value
