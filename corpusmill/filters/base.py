"""What a filter is.

A filter is a small, pure, picklable object with a ``name`` and a ``__call__(element) -> Verdict``.
It never imports Beam: :class:`corpusmill.engine.step.ApplyFilter` runs any filter on Beam,
counts every verdict by reason and routes dropped and failed elements.

- keep(doc)            the (possibly changed or annotated) document goes on;
- drop(reason)         the element leaves the pipeline, counted under ``reason``;
- raising an exception the element goes to the dead-letter output with the error.

Filters that need a model keep only its *path* as state and load it in :meth:`Filter.setup`, which
the runner calls once per worker before the first element (so the filter pickles into worker
processes, and the model is not loaded per document).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterable, List, Optional

from corpusmill.core.document import Document


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a filter for one element."""

    doc: Optional[Document]
    reason: Optional[str] = None  # None when kept
    counts: Optional[Dict[str, int]] = None  # extra per-step totals for stats.json ("counters")
    # what a rule measured on this document, {score: value}, for the profile's kept/dropped histograms
    # (Filter.scores names them): seen by the report, not stored on the document
    measures: Optional[Dict[str, float]] = None

    @property
    def kept(self) -> bool:
        return self.reason is None


def keep(
    doc: Document, counts: Optional[Dict[str, int]] = None, measures: Optional[Dict[str, float]] = None
) -> Verdict:
    """Keep ``doc``. ``counts`` (e.g. ``{"header_lines_stripped": 27}``) are summed over the step and
    reported in its stats.json entry under ``counters``. ``measures`` (e.g. ``{"sentences": 7}``) are
    the values the filter judged, histogrammed in profile.json (see :attr:`Filter.scores`)."""
    return Verdict(doc, None, counts, measures)


def drop(
    reason: str,
    doc: Optional[Document] = None,
    counts: Optional[Dict[str, int]] = None,
    measures: Optional[Dict[str, float]] = None,
) -> Verdict:
    """Drop with a reason (a short snake_case word: it becomes a counter and a file name)."""
    if not reason or not reason.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"drop reason must be a short snake_case word, got {reason!r}")
    return Verdict(doc, reason, counts, measures)


class Filter:
    """Base class for filters. Subclasses set ``name`` and implement ``__call__``.

    Attributes named in ``transient`` (loaded models, open files) are not pickled: they are set to
    None in the copy, and ``setup()`` loads them again where the copy lands (a Beam worker).
    """

    name: str = "filter"
    transient: tuple = ()
    # Attributes holding model file/directory paths. A path on gs:// (any Beam file system) is copied
    # to the worker's local disk before setup() (corpusmill.engine.step), so filters open local files.
    model_files: tuple = ()
    # The scores this filter judges by: metadata it sets (e.g. "language_score") or measures it returns
    # in its verdicts (Verdict.measures, e.g. "sentences"). The stage's profile (corpusmill.core.profile,
    # which fixes each score's bins) histograms them for the kept and the dropped documents of this step.
    scores: tuple = ()
    # Bins for a score of this filter's own (one :data:`corpusmill.core.profile.BINS` does not have):
    # {score: (low, high, number of bins, log scale)}.
    bins: Dict[str, tuple] = {}

    def thresholds(self) -> Dict[str, Any]:
        """What this filter applies to its scores, for profile.json and the report: ``{score: value}``, or
        ``{score: {language: [values]}}`` when it depends on the language."""
        return {}

    def __getstate__(self):
        state = dict(self.__dict__)
        for attr in self.transient:
            state[attr] = None
        return state

    def model_in_use(self, attr: str):
        """The model path(s) of ``attr`` this filter loads (a filter with a packaged default names it)."""
        return getattr(self, attr, None)

    def model_subset(self, attr: str):
        """The file names inside the model directory ``attr`` this filter needs (None: all of them), so a
        worker copies only those from a remote directory."""
        return None

    def setup(self) -> None:
        """Load models or other per-worker state. Called once per worker, never per element."""

    # True when every document this filter returns is text the filter was given, cut, joined, replaced by
    # plain placeholders or annotated with numbers and labels: it cannot hold a lone surrogate its input
    # did not. The glue then skips the UTF-8 check of each changed document (reading steps, and your
    # filters, keep it: corpusmill.core.text).
    clean_output: bool = False

    # A filter whose model is faster on many elements at once (SentencePiece, fastText) sets batch_size:
    # the glue then calls call_batch with up to that many elements. Verdicts and accounting are the same.
    batch_size: int = 0

    def __call__(self, element: Any) -> Verdict:  # pragma: no cover - interface
        raise NotImplementedError

    def call_batch(self, elements: List[Any]) -> List[Verdict]:
        """Verdicts for ``elements``, in order (the glue falls back to one call per element when this
        raises, so only the bad element becomes a dead letter)."""
        return [self(e) for e in elements]

    # A filter can also be used directly in plain Python (tests, notebooks):
    def run(self, docs: Iterable[Document]) -> Iterable[Verdict]:
        self.setup()
        for doc in docs:
            yield self(doc)


def run_filters(filters: Iterable[Filter], element: Any) -> Verdict:
    """Apply ``filters`` in order outside Beam, as a stage's steps would: the first drop wins, else the
    last verdict (its document carries every filter's annotations). For benches, tests and notebooks."""
    verdict = keep(element)
    for filt in filters:
        verdict = filt(verdict.doc)
        if not verdict.kept:
            return verdict
    return verdict
