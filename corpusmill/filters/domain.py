"""The domain of a document for Llama 3's mix (about 50% general knowledge, 25% math and reasoning, 17% code,
8% multilingual): a fastText classifier with the labels ``code``, ``math`` and ``general``, trained by
corpusmill from its own labelled sources (:mod:`corpusmill.quality.domain`), and the language.

The rule, in order: the classifier's top label when it is ``code`` or ``math`` with a probability of at
least ``threshold`` (0.9; code and formulas are theirs in any language); else ``multilingual`` when the document's language (its ``language`` annotation,
or lid.176 when it has none) is not English; else ``general``. The ``domain`` step annotates ``domain``,
``domain_score`` (the top label's probability) and ``language`` if it had none, and drops nothing but a
domain the mixture has no pool for (``domain_not_mixed``).
"""

from __future__ import annotations

import os
import re
from typing import Optional, Sequence, Tuple

from corpusmill.core.errors import CorpusmillError
from corpusmill.filters.base import Filter, Verdict, drop, keep

CLASSIFIED = ("code", "general", "math")
DOMAINS = ("general", "math", "code", "multilingual")
LABEL = "__label__"
DEFAULT_THRESHOLD = 0.9  # text in a language the classifier never saw mostly scores 0.4-0.8 for any label
MAX_CHARS = 20_000  # a long document is judged by its beginning (fastText averages its words)
_TOKEN = re.compile(r"\w+|[^\w\s]")


def domain_text(text: str, max_chars: int = MAX_CHARS) -> str:
    """One line of lowercased tokens, punctuation and symbols kept as tokens (``{``, ``\\``, ``=``: what
    tells code and LaTeX from prose)."""
    return " ".join(_TOKEN.findall(text[:max_chars].lower()))


def load_domain_model(path: str):
    from corpusmill.filters.lid import load_fasttext

    if not os.path.isfile(path):
        raise CorpusmillError(
            f"domain classifier {path} does not exist; `corpusmill run` trains one from the "
            f"sources' 'domain' labels, or `corpusmill train-domain-classifier` does"
        )
    model = load_fasttext(path)
    labels = {lab[len(LABEL) :] for lab in model.get_labels()}
    if not labels <= set(CLASSIFIED) or len(labels) < 2:
        raise CorpusmillError(
            f"{path} is a fastText model with labels {sorted(labels)}, not a domain classifier "
            f"({', '.join(CLASSIFIED)})"
        )
    return model


def predict_domain(model, text: str) -> Tuple[str, float]:
    labels, probs = model.predict(domain_text(text), k=1)
    return labels[0][len(LABEL) :], round(float(min(max(probs[0], 0.0), 1.0)), 4)


def classified(label: str, score: float, threshold: float = DEFAULT_THRESHOLD) -> str:
    """``code`` or ``math`` when the classifier is sure enough, else ``general`` (left to the language)."""
    return label if label in ("code", "math") and score >= threshold else "general"


class DomainLabel(Filter):
    """The ``domain`` step over ``(doc, source)`` pairs: ``(doc annotated, domain)``, the domain being the
    mixture's pool the document goes to."""

    name = "domain"
    transient = ("_model", "_lid")
    model_files = ("model_path",)

    def __init__(
        self,
        model_path: str,
        pools: Sequence[str] = DOMAINS,
        english: Sequence[str] = ("en",),
        lid_model: Optional[str] = None,
        threshold: float = DEFAULT_THRESHOLD,
    ):
        self.model_path = model_path
        self.threshold = threshold
        self.pools = tuple(pools)
        self.english = frozenset(english)
        self.lid_model = lid_model
        self._model = None
        self._lid = None

    def thresholds(self):
        return {"domain_score": self.threshold}

    def setup(self) -> None:
        from corpusmill.filters.lid import LanguageId

        if self._model is None:
            self._model = load_domain_model(self.model_path)
        if self._lid is None:
            self._lid = LanguageId(self.lid_model)
            self._lid.setup()

    def __call__(self, element) -> Verdict:
        doc, _source = element
        if self._model is None:
            self.setup()
        label, score = predict_domain(self._model, doc.text)
        language = doc.metadata.get("language")
        if not language:
            language = self._lid.predict(doc.text)[0]
        domain = classified(label, score, self.threshold)
        if domain == "general":
            domain = "general" if language in self.english else "multilingual"
        doc = doc.annotate(domain=domain, domain_score=score, language=language)
        if domain not in self.pools:
            return drop("domain_not_mixed", doc)
        return keep((doc, domain), {f"domain_{domain}": 1})
