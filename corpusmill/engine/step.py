"""The generic Beam glue: apply any filter as a pipeline step, with full accounting.

``ApplyFilter(step, filter)`` runs a filter from :mod:`corpusmill.filters` on every element and returns
four PCollections:

- ``kept``:    the documents the filter kept (main output);
- ``dropped``: :class:`Dropped` records (step, reason, document) for every dropped element;
- ``failed``:  :class:`Failure` records (step, error, input location) for every element that raised;
- ``stats``:   ``((step, outcome, reason), (count, bytes_in, bytes_out))`` partial sums.

A filter may also return extra totals with its verdict (``keep(doc, counts={...})``); they are summed
per step into stats.json's optional ``counters`` (lines stripped, bytes removed, ...).

Every element lands in exactly one of kept / dropped / failed, so for every step
``read = kept + sum(dropped) + failed`` holds by construction; :class:`Run` turns the stats into
stats.json (built from the outputs themselves, so it survives any runner) and also keeps a Beam
Metrics counter per verdict reason for runner UIs (Dataflow's job page shows them live).

Pipelines read like a list of steps::

    run = Run(pipeline, out_dir)
    docs = run.step(records, "extract", ExtractWarcRecord())
    docs = run.step(docs, "normalize", Normalize())
    ...
    run.finish()
"""

from __future__ import annotations

import copy
import dataclasses
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from corpusmill.core.document import Document
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.hashing import stable_hash  # noqa: F401 (re-exported for stages)
from corpusmill.core.inputs import Skipped
from corpusmill.core.profile import BINS, BY_LANGUAGE, BY_SOURCE, HIST, NO_LANGUAGE, bin_of, check_bins, label, number
from corpusmill.core.progress import Tally
from corpusmill.core.stats import COUNTER, DROPPED, FAILED, KEPT, build_stats, check_accounting, stats_json  # noqa: F401  # noqa: E402
from corpusmill.core.text import printable
from corpusmill.filters.base import Filter, Verdict

STATS = "stats"
MICROSECONDS = "microseconds"  # the Beam counter of time spent in a step's filter


@dataclasses.dataclass(slots=True)
class Dropped:
    """A dropped element: the step, the reason and the document (None for non-document elements)."""

    step: str
    reason: str
    doc: Optional[Document]
    location: str = ""

    @property
    def sort_key(self) -> str:
        return self.doc.id if self.doc is not None else self.location

    def to_dict(self) -> dict:
        out = {"step": self.step, "reason": self.reason, "location": self.location}
        if self.doc is not None:
            out["document"] = self.doc.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Dropped":
        doc = Document.from_dict(d["document"]) if d.get("document") is not None else None
        return cls(d["step"], d["reason"], doc, d.get("location", ""))


@dataclasses.dataclass(slots=True)
class Failure:
    """A dead-letter record: what raised, where the record is, and which document it was."""

    step: str
    error: str
    location: str  # input file and record offset (``path@offset``) or line (``path:line``)
    doc_id: str = ""
    traceback: str = ""
    text_head: str = ""  # the first 500 characters of the text, when there was a document

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Failure":
        return cls(**{f.name: d.get(f.name, "") for f in dataclasses.fields(cls)})


# counted (``counters.surrogates_replaced``) for each document whose lone surrogates became U+FFFD
SURROGATES = "surrogates_replaced"


def failure(step: str, exc: BaseException, location: str, doc_id: str = "", text_head: str = "") -> Failure:
    """The dead letter for ``exc``, with every string writable as UTF-8 (a non-UTF-8 file name in the
    location is shown as ``\\xNN``)."""
    from corpusmill.core.text import replace_surrogates

    def clean(text: str) -> str:
        return replace_surrogates(text)[0]

    return Failure(
        step=step,
        error=clean(f"{type(exc).__name__}: {exc}"[:2000]),
        location=printable(location),
        doc_id=clean(doc_id),
        traceback=clean("".join(traceback.format_exception(exc))[-4000:]),
        text_head=clean(text_head),
    )


# -- helpers that let a step take documents or other elements (raw records, (doc, extra) pairs) ------
def doc_of(element: Any) -> Optional[Document]:
    if isinstance(element, Document):
        return element
    if isinstance(element, tuple) and element and isinstance(element[0], Document):
        return element[0]
    return getattr(element, "doc", None) if not isinstance(element, (str, bytes)) else None


def size_of(element: Any) -> int:
    doc = doc_of(element)
    if doc is not None:
        return doc.nbytes
    return int(getattr(element, "nbytes", 0) or 0)


def location_of(element: Any) -> str:
    doc = doc_of(element)
    if doc is not None and doc.location:
        return doc.location
    return str(getattr(element, "location", "") or "")


class _Loaded:
    """A weak-referenceable holder, as ``shared.Shared`` requires."""

    def __init__(self, filt: Filter):
        self.filter = filt


def load_filter(filt: Filter) -> Filter:
    """A worker's own copy of ``filt``, ready to use: remote (gs://...) model paths copied to this
    machine's disk (only what it uses), then ``setup()``."""
    from corpusmill.io.files import localize

    filt = copy.deepcopy(filt)
    for attr in filt.model_files:
        value = getattr(filt, attr)
        if isinstance(value, dict):
            setattr(filt, attr, {k: localize(v) for k, v in value.items()})
        else:
            setattr(filt, attr, localize(value, only=filt.model_subset(attr)))
    filt.setup()
    return filt


def acquire_filter(handle: shared.Shared, step: str, filt: Filter) -> _Loaded:
    """One loaded filter (and model) per worker process, shared by its threads. ``Shared`` keeps it only
    while someone holds the returned holder, so the caller keeps a reference to it."""
    return handle.acquire(lambda: _Loaded(load_filter(filt)), tag=f"{step}:{type(filt).__qualname__}")


class StepAccount:
    """One step's verdicts, routed and counted: every element becomes exactly one of kept / dropped /
    failed, with its stats, profile rows, Beam counters and progress. No Beam transform: the per-filter
    DoFn (:class:`ApplyFilter`) and the streaming passes (:mod:`corpusmill.engine.passes`) share it."""

    def __init__(self, step: str, filt: Filter):
        self.step = step
        self.filter = filt
        self.live: Optional[Filter] = None  # the loaded copy (set by the caller)
        self._counters: Dict[str, Any] = {}
        self._counts: Dict[str, int] = {}  # this bundle's counter increments, given to Beam when it ends
        self.size_out = 0  # the kept document's UTF-8 bytes, after route()
        self.tally: Optional[Tally] = None
        # this bundle's stats, summed here and emitted once per key when the bundle ends (a few elements
        # per bundle instead of one or two per document; Run.finish sums the bundles)
        self.sums: Dict[tuple, list] = {}
        self.scores = tuple(getattr(filt, "scores", ()) or ())
        try:
            self.bins = {**BINS, **check_bins(filt.name, getattr(filt, "bins", {}))}
        except ValueError as exc:
            raise CorpusmillError(str(exc)) from None
        unknown = [score for score in self.scores if score not in self.bins]
        if unknown:
            raise CorpusmillError(
                f"filter {filt.name!r} ({type(filt).__qualname__}) names score(s) {unknown} "
                f"with no bins; expected one of {sorted(BINS)} (corpusmill.core.profile.BINS) or "
                f"its own in Filter.bins"
            )
        self.seconds = 0.0  # time in the filter this bundle (provenance: wall time per step)
        self.clean = bool(getattr(filt, "clean_output", False))

    def start_bundle(self) -> None:
        self.sums = {}
        self.seconds = 0.0
        if self.tally is None:
            self.tally = Tally(self.step)  # live progress (core/progress.py): a no-op without its directory

    def stat(self, kind: str, name: str, n: int, size_in: int, size_out: int) -> None:
        acc = self.sums.get((kind, name))
        if acc is None:
            self.sums[(kind, name)] = [n, size_in, size_out]
        else:
            acc[0] += n
            acc[1] += size_in
            acc[2] += size_out

    def counter(self, name: str):
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(f"corpusmill.{self.step}", name)
        return counter

    def count(self, name: str) -> None:
        """One more of Beam counter ``name`` (runner UIs show them; given to Beam once per bundle)."""
        self._counts[name] = self._counts.get(name, 0) + 1

    def stats_rows(self) -> List[tuple]:
        """This bundle's ``((step, kind, name), (n, bytes in, bytes out))`` rows (and the filter's time
        counted); the sums start again."""
        rows = [
            ((self.step, kind, name), (n, size_in, size_out))
            for (kind, name), (n, size_in, size_out) in sorted(self.sums.items())
        ]
        self.sums = {}
        for name, n in self._counts.items():
            self.counter(name).inc(n)
        self._counts = {}
        if self.seconds:
            self.counter(MICROSECONDS).inc(int(self.seconds * 1e6))
            self.seconds = 0.0
        if self.tally is not None:
            self.tally.flush()
        return rows

    def verdict(self, element):
        """The filter's verdict, or the exception it raised."""
        start = time.perf_counter()
        try:
            verdict = self.live(element)
            if not isinstance(verdict, Verdict):
                raise TypeError(
                    f"filter {self.filter.name!r} returned {type(verdict).__name__}, "
                    f"not a Verdict (use corpusmill.filters.base.keep/drop)"
                )
            return verdict
        except Exception as exc:  # noqa: BLE001 - every error becomes a dead-letter record
            return exc
        finally:
            self.seconds += time.perf_counter() - start

    def verdicts(self, batch: list) -> list:
        """Verdicts for a batch (``Filter.call_batch``); one element at a time when the batch call raises,
        so only the bad element becomes a dead letter."""
        start = time.perf_counter()
        try:
            verdicts = self.live.call_batch(batch)
            if len(verdicts) != len(batch):
                raise ValueError(
                    f"filter {self.filter.name!r} returned {len(verdicts)} verdicts for {len(batch)} elements"
                )
        except Exception:  # noqa: BLE001
            verdicts = None
        if verdicts is None:  # (outside the except block: the dead letter's traceback is the element's own)
            return [self.verdict(e) for e in batch]
        self.seconds += time.perf_counter() - start
        return verdicts

    def route(self, element, verdict, size_in: Optional[int] = None) -> Tuple[str, Any]:
        """``(KEPT, document)``, ``(DROPPED, Dropped)`` or ``(FAILED, Failure)`` for one verdict, counted.
        ``size_in``: the element's bytes, when the caller knows them; a kept document's are ``size_out``."""
        if size_in is None:
            size_in = size_of(element)
        tally = self.tally
        if tally is not None:
            tally.add(size_in, False)
        if isinstance(verdict, Exception):
            doc = doc_of(element)
            self.count("failed")
            self.stat(FAILED, "", 1, size_in, 0)
            return FAILED, failure(
                self.step,
                verdict,
                location_of(element),
                doc.id if doc is not None else "",
                doc.text[:500] if doc is not None else "",
            )
        for name, value in (verdict.counts or {}).items():
            self.stat(COUNTER, name, int(value), 0, 0)
        given = doc_of(element)
        doc = verdict.doc if verdict.doc is not None else given
        if isinstance(doc, Document) and doc is not element and not self.clean:  # new or changed: writable as UTF-8
            doc, replaced = doc.repaired(metadata=not isinstance(element, Document))  # (read steps: metadata too)
            if replaced:
                self.stat(COUNTER, SURROGATES, 1, 0, 0)
        profiled = doc[0] if isinstance(doc, tuple) and doc and isinstance(doc[0], Document) else doc  # (doc, pool)
        self.profile(profiled if isinstance(profiled, Document) else None, verdict.reason, verdict.measures)
        if verdict.kept:
            self.count("kept")
            if tally is not None:
                tally.kept += 1
            self.size_out = size_in if profiled is given else getattr(profiled, "nbytes", 0)
            self.stat(KEPT, "", 1, size_in, self.size_out)
            return KEPT, doc
        self.count(f"dropped.{verdict.reason}")
        self.stat(DROPPED, verdict.reason, 1, size_in, 0)
        return DROPPED, Dropped(self.step, verdict.reason, doc, printable(location_of(element)))

    def profile(self, doc: Optional[Document], reason: Optional[str], measures: Optional[dict] = None) -> None:
        """profile.json's rows for one verdict (corpusmill.core.profile)."""
        lang = label(doc.metadata.get("language")) if doc is not None else NO_LANGUAGE
        if reason is not None:
            self.stat(BY_LANGUAGE, f"{reason}\t{lang}", 1, 0, 0)
            self.stat(BY_SOURCE, f"{reason}\t{label(doc.source) if doc is not None else NO_LANGUAGE}", 1, 0, 0)
        if doc is None:
            return
        outcome = "kept" if reason is None else "dropped"
        if "length" not in self.scores:  # else the filter's own annotation (line_dedup: after the removal)
            self.stat(HIST, f"length\t{outcome}\t{lang}\t{bin_of('length', len(doc.text))}", 1, 0, 0)
        for score in self.scores:
            value = number(measures[score] if measures and score in measures else doc.metadata.get(score))
            if value is not None:
                self.stat(HIST, f"{score}\t{outcome}\t{lang}\t{bin_of(score, value, self.bins)}", 1, 0, 0)

    def skipped(self, entry: Skipped) -> Tuple[str, Any]:
        """An input entry the reader did not read (a link, an unreadable file): a drop or a dead letter."""
        if entry.is_failure:
            self.count("failed")
            self.stat(FAILED, "", 1, 0, 0)
            return FAILED, Failure(self.step, f"{entry.reason}: {entry.detail}", entry.location)
        self.count(f"dropped.{entry.reason}")
        self.stat(DROPPED, entry.reason, 1, 0, 0)
        self.profile(None, entry.reason)
        return DROPPED, Dropped(self.step, entry.reason, None, entry.location)


def _tagged(outcome: str, value, windowed: bool = False):
    from apache_beam.transforms.window import GlobalWindows

    if windowed:
        value = GlobalWindows.windowed_value(value)
    return value if outcome == KEPT else beam.pvalue.TaggedOutput(outcome, value)


class _FilterDoFn(beam.DoFn):
    """Applies one filter; routes and counts each verdict. Knows nothing about what the filter does."""

    def __init__(self, step: str, filt: Filter, handle: shared.Shared):
        self._step = step
        self._filter = filt
        self._handle = handle
        self._holder: Optional[_Loaded] = None
        self._account = StepAccount(step, filt)  # checks the filter's scores and bins when the pipeline is built
        self._batch = max(0, int(getattr(filt, "batch_size", 0) or 0))
        self._buffer: list = []

    def setup(self):
        self._holder = acquire_filter(self._handle, self._step, self._filter)
        self._account.live = self._holder.filter

    def start_bundle(self):
        self._account.start_bundle()

    def process(self, element):
        if isinstance(element, Skipped):  # an input entry the reader did not read (a link, an unreadable file)
            yield _tagged(*self._account.skipped(element))
            return
        if self._batch:  # a batch filter (Filter.batch_size): verdicts for many elements in one call
            self._buffer.append(element)
            if len(self._buffer) >= self._batch:
                yield from self._flush()
            return
        yield _tagged(*self._account.route(element, self._account.verdict(element)))

    def finish_bundle(self):
        if self._buffer:
            yield from self._flush(windowed=True)  # outside process(): each output needs its window
        from apache_beam.transforms.window import GlobalWindows

        for row in self._account.stats_rows():  # after the last batch, so the progress files hold its counts
            yield beam.pvalue.TaggedOutput(STATS, GlobalWindows.windowed_value(row))

    def _flush(self, windowed: bool = False):
        batch, self._buffer = self._buffer, []
        for element, verdict in zip(batch, self._account.verdicts(batch)):
            yield _tagged(*self._account.route(element, verdict), windowed=windowed)


@dataclasses.dataclass
class StepOutputs:
    kept: beam.PCollection
    dropped: beam.PCollection
    failed: beam.PCollection
    stats: beam.PCollection


def sum_stats(values) -> Tuple[int, int, int]:
    n = b_in = b_out = 0
    for c, i, o in values:
        n += c
        b_in += i
        b_out += o
    return n, b_in, b_out


class ApplyFilter(beam.PTransform):
    """Apply ``filt`` as pipeline step ``step``; returns :class:`StepOutputs`."""

    def __init__(self, step: str, filt: Filter):
        super().__init__(label=step)
        self.step = step
        self.filt = filt

    def expand(self, pcoll):
        results = pcoll | "Apply" >> beam.ParDo(_FilterDoFn(self.step, self.filt, shared.Shared())).with_outputs(
            DROPPED, FAILED, STATS, main=KEPT
        )
        # ``stats``: per bundle sums, keyed (step, kind, name); Run.finish sums every step's in one combine
        return StepOutputs(results[KEPT], results[DROPPED], results[FAILED], results[STATS])


# -- stats.json -------------------------------------------------------------------------------------
