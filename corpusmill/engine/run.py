"""One pipeline run: its steps, its accounting, and the side outputs every run writes.

    with beam.Pipeline(options=options) as p:
        run = Run(p, out_dir, write_dropped=False)
        docs = run.step(records, "extract", ExtractWarcRecord())
        docs = run.step(docs, "normalize", Normalize())
        run.write(docs, group_fn=lambda d: d.metadata["language"])
        run.finish()

Every run writes, in its output directory:

- ``stats.json``: one entry per step in pipeline order (read, kept, dropped by reason, failed, bytes);
- ``_dropped/<step>/<reason>.jsonl.gz``: a deterministic sample of up to ``dropped_sample`` dropped
  documents per reason (the smallest ids by a stable hash); with ``write_dropped=True`` every dropped
  document, in ``_dropped/<step>/<reason>-NNNNN.jsonl.gz`` files of about ``docs_per_shard`` each;
- ``_failed/failed-NNNNN.jsonl.gz``: every dead-letter record (step, error, input file and offset),
  sharded the same way (no file when nothing failed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import apache_beam as beam

from corpusmill.core.config import close_matches
from corpusmill.core.document import Document
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import PROFILE_NAME, STATS_NAME, check_group, encode_jsonl_gz, join
from corpusmill.core.outputs import OutputLock, beside, check_output_apart, check_replaceable, mark_created
from corpusmill.core.profile import (
    BINS,
    HIST,
    OUTPUT,
    OUTPUT_STEP,
    SCORES,
    bin_of,
    build_profile,
    edges,
    label,
    number,
    profile_json,
    profile_rows,
)
from corpusmill.core.profile import KINDS as PROFILE_KINDS
from corpusmill.core.stats import COUNTER, DROPPED, FAILED, KEPT
from corpusmill.engine.step import STATS as STATS_TAG
from corpusmill.engine.step import (
    ApplyFilter,
    Dropped,
    Failure,
    build_stats,
    stable_hash,
    stats_json,
    sum_stats,
)
from corpusmill.filters.base import Filter
from corpusmill.io.documents import WriteDocuments
from corpusmill.io.files import atomic_write, write_text_atomic

STATS_FILE = STATS_NAME  # _meta/stats.json (corpusmill.core.files)
PROFILE_FILE = PROFILE_NAME
KEPT_SAMPLE = 5  # written documents sampled per output group (OUT/_samples/)
DONE_FILE = "_SUCCESS"


def prepare_output_dir(out_dir: str, overwrite: bool) -> None:
    """Refuse to mix a new run into an old one, unless asked to replace it (and only an output corpusmill
    wrote); refuse an output that is a file or cannot be created, naming it. The directory is marked as
    corpusmill's the moment it is made (corpusmill.core.outputs)."""
    if "://" in out_dir:
        return  # object stores: files are replaced by name
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise CorpusmillError(f"--output {out_dir}: is a file, not a directory; choose a directory")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not overwrite:
            raise CorpusmillError(
                f"output directory {out_dir} is not empty; choose a new --output or pass --overwrite to replace it"
            )
        check_replaceable(out_dir)
        shutil.rmtree(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
        mark_created(out_dir)
    except OSError as exc:
        raise CorpusmillError(
            f"--output {out_dir}: cannot be written ({exc.strerror or exc}); choose a directory you can write to"
        ) from None


def begin_output(out_dir: str, overwrite: bool) -> str:
    """Where a run builds its output: ``out_dir`` itself when it is absent or empty; with ``--overwrite``
    over a non-empty one (corpusmill's own only), a new directory beside it (``.NAME.corpusmill-new-PID``,
    one per run), so the old output stays whole until :func:`commit_output` swaps the new one in. A swap
    that was cut between its two renames is undone first (the old output is put back). The caller holds
    the output's lock (:class:`corpusmill.core.outputs.OutputLock`), so staging left beside it is a dead
    run's and is removed. Object stores: files are replaced by name."""
    if "://" in out_dir:
        return out_dir
    old = beside(out_dir, "old")
    if not os.path.exists(out_dir) and os.path.isdir(old):
        os.rename(old, out_dir)  # a swap killed halfway: the old output is still the output
    remove_staging(out_dir)
    if os.path.isdir(out_dir) and os.listdir(out_dir) and overwrite:
        check_replaceable(out_dir)
        work = beside(out_dir, f"new-{os.getpid()}")
        prepare_output_dir(work, False)
        return work
    prepare_output_dir(out_dir, overwrite)
    return out_dir


def remove_staging(out_dir: str) -> None:
    """Remove the new outputs killed runs left beside ``out_dir`` (call it holding the lock)."""
    parent, prefix = os.path.dirname(beside(out_dir, "new")), os.path.basename(beside(out_dir, "new"))
    if os.path.isdir(parent):
        for name in os.listdir(parent):
            if name == prefix or name.startswith(prefix + "-"):
                shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def commit_output(work: str, out_dir: str) -> None:
    """Put the complete new output ``work`` in the place of ``out_dir`` (two renames), then remove the old."""
    if work == out_dir:
        return
    old = beside(out_dir, "old")
    if os.path.isdir(old):
        shutil.rmtree(old)
    os.rename(out_dir, old)
    os.rename(work, out_dir)
    shutil.rmtree(old)


class Run:
    def __init__(
        self,
        pipeline: beam.Pipeline,
        out_dir: str,
        *,
        write_dropped: bool = False,
        dropped_sample: int = 100,
        fmt: str = "jsonl",
        docs_per_shard: int = 10_000,
        extra_filters: Sequence[Tuple[Filter, Optional[str]]] = (),
    ):
        self.pipeline = pipeline
        self.out_dir = out_dir
        self.write_dropped = write_dropped
        self.dropped_sample = dropped_sample
        self.fmt = fmt
        self.docs_per_shard = docs_per_shard
        self.steps: List[str] = []
        self.thresholds: Dict[str, dict] = {}  # step -> what its filter applies (profile.json)
        self.filters: Dict[str, Filter] = {}  # step -> its filter (provenance: class, models)
        self.extra_edges: Dict[str, List[float]] = {}  # bin edges of the filters' own scores (Filter.bins)
        # a user's filters (--add-filter): (filter, the step it runs after; None: before the write)
        self._extra = list(extra_filters)
        self._extra_done: List[int] = []
        self._stats: List[beam.PCollection] = []
        self._dropped: List[beam.PCollection] = []
        self._failed: List[beam.PCollection] = []
        self._samples: List[beam.PCollection] = []  # (group, document) candidates of streaming passes

    def step(self, pcoll: beam.PCollection, name: str, filt: Filter) -> beam.PCollection:
        """Apply ``filt`` as step ``name``; returns the kept documents (then any user filter after it)."""
        kept = self._apply(pcoll, name, filt)
        for i, (extra, after) in enumerate(self._extra):
            if after == name and i not in self._extra_done:
                self._extra_done.append(i)
                kept = self._apply(kept, extra.name, extra)
        return kept

    def _register(self, name: str, filt: Filter) -> None:
        if name in self.steps:
            raise CorpusmillError(
                f"step name {name!r} is used twice in this stage (steps: {', '.join(self.steps)}); "
                f"give your filter another name"
            )
        self.steps.append(name)
        self.thresholds[name] = _json_safe(filt.thresholds())
        self.filters[name] = filt
        own = getattr(filt, "bins", {}) or {}
        self.extra_edges.update({score: edges(score, own) for score in own if score not in BINS})

    def _apply(self, pcoll: beam.PCollection, name: str, filt: Filter) -> beam.PCollection:
        self._register(name, filt)
        out = pcoll | ApplyFilter(name, filt)
        self._stats.append(out.stats)
        self._dropped.append(out.dropped)
        self._failed.append(out.failed)
        return out.kept

    def stream(self, inputs: beam.PCollection, spec, marks_fn, label: str, marks=None):
        """A streaming pass (:mod:`corpusmill.engine.passes`): ``inputs`` are the pieces, ``marks`` the
        keyed steps' marks (a multimap side input by piece, or None); every step of ``spec`` is registered
        here in order and its accounting joins this run's.
        Returns the written pieces and the repeated lines' texts. The same pass over several units (one
        pipeline for a whole run) registers its steps once: their accounting adds up."""
        from apache_beam.utils import shared

        from corpusmill.engine.passes import SAMPLES, TEXTS, StreamPiece

        for name, filt in spec.filters():
            if name not in self.steps:
                self._register(name, filt)
        args = (marks,) if marks is not None else ()
        out = inputs | label >> beam.ParDo(StreamPiece(spec, marks_fn, shared.Shared()), *args).with_outputs(
            STATS_TAG, DROPPED, TEXTS, SAMPLES, main="pieces"
        )
        self._stats.append(out[STATS_TAG])
        self._dropped.append(out[DROPPED])  # (dead letters: written by the pass itself, per piece)
        if spec.group_fn is not None:
            self._samples.append(out[SAMPLES])
        return out["pieces"], out[TEXTS]

    def streamed(
        self, steps: Sequence[Tuple[str, Filter]], stats: beam.PCollection, dropped: Optional[beam.PCollection] = None
    ) -> None:
        """The steps a stage's own streaming DoFn applied (with StepAccount): registered in order, their
        stats rows and sampled dropped records joining this run's accounting."""
        for name, filt in steps:
            if name not in self.steps:
                self._register(name, filt)
        self._stats.append(stats)
        if dropped is not None:
            self._dropped.append(dropped)

    def before_write(self, docs: beam.PCollection) -> beam.PCollection:
        """The user's filters that run just before the documents are written (``--add-filter`` with no step)."""
        for i, (extra, after) in enumerate(self._extra):
            if after is None and i not in self._extra_done:
                self._extra_done.append(i)
                docs = self._apply(docs, extra.name, extra)
        return docs

    def write(
        self,
        docs: beam.PCollection,
        group_fn: Optional[Callable[[Document], str]] = None,
        label: str = "WriteDocuments",
        level: int = 6,
    ):
        docs = self.before_write(docs)
        group_fn = group_fn or (lambda d: "")
        self._stats.append(docs | f"Profile{label}" >> beam.ParDo(_ProfileOutput(group_fn)))
        self._sample_written(docs, group_fn, label)
        return docs | label >> WriteDocuments(self.out_dir, self.fmt, group_fn, self.docs_per_shard, level)

    def _sample_written(self, docs, group_fn, label: str) -> None:
        """OUT/_samples/<group>.jsonl.gz: KEPT_SAMPLE written documents per output group, drawn by a hash of
        their id (spread over every file and shard, the same on every runner), for the report."""
        _write_samples(docs | f"KeySample{label}" >> beam.Map(lambda d: (group_fn(d), d)), self.out_dir, label)

    def finish(self) -> None:
        """Write stats.json, the dropped sample and the dead letters."""
        if self._samples:
            _write_samples(tuple(self._samples) | "FlattenSamples" >> beam.Flatten(), self.out_dir, "Streamed")
        for i, (extra, after) in enumerate(self._extra):
            if i not in self._extra_done:
                raise CorpusmillError(
                    f"--after {after}: this stage has no step {after!r}"
                    f"{close_matches(after or '', self.steps)}; its steps: {', '.join(self.steps)}"
                )
        out_dir, steps, thresholds = self.out_dir, list(self.steps), dict(self.thresholds)
        extra_edges = dict(self.extra_edges)

        def write_stats(rows):
            profile = [r for r in rows if r[0][1] in PROFILE_KINDS]
            write_text_atomic(
                join(out_dir, STATS_FILE),
                stats_json(build_stats([r for r in rows if r[0][1] not in PROFILE_KINDS], steps)),
            )
            write_text_atomic(
                join(out_dir, PROFILE_FILE), profile_json(build_profile(profile, steps, thresholds, extra_edges))
            )

        (
            tuple(self._stats)
            | "FlattenStats" >> beam.Flatten()
            | "SumStats" >> beam.CombinePerKey(sum_stats)
            | "AllStats" >> beam.combiners.ToList()
            | "WriteStats" >> beam.Map(write_stats)
        )

        dropped = tuple(self._dropped) | "FlattenDropped" >> beam.Flatten()
        keyed = dropped | "KeyDropped" >> beam.Map(lambda d: ((d.step, d.reason), d))
        if not self.write_dropped:
            n = self.dropped_sample
            sample = keyed | "SampleDropped" >> beam.combiners.Top.PerKey(n, key=lambda d: -stable_hash(d.sort_key))

            def write_sample(item):
                (step, reason), records = item
                records = sorted(records, key=lambda d: d.sort_key)
                with atomic_write(join(out_dir, "_dropped", step, f"{reason}.jsonl.gz")) as handle:
                    encode_jsonl_gz((r.to_dict() for r in records), handle)

            sample | "WriteDropped" >> beam.Map(write_sample)
        else:  # every dropped document: sharded like the documents, never gathered in one worker
            write_sharded(
                keyed,
                out_dir,
                lambda key: join("_dropped", key[0], key[1]),
                self.docs_per_shard,
                sort_key=lambda d: (d.sort_key, d.location),
                label="WriteDropped",
            )

        if self._failed:  # (a streaming pass writes its own)
            failed = tuple(self._failed) | "FlattenFailed" >> beam.Flatten()
            write_sharded(
                failed | "KeyFailed" >> beam.Map(lambda f: ("", f)),
                out_dir,
                lambda _key: join("_failed", "failed"),
                self.docs_per_shard,
                sort_key=lambda f: (f.step, f.location, f.doc_id),
                label="WriteFailed",
            )

    def include(
        self,
        steps: Sequence[str],
        stats: Sequence[dict],
        records: beam.PCollection,
        profiles: Sequence[dict] = (),
        with_failures: bool = True,
    ) -> None:
        """Take in the accounting of earlier runs (the CCNet stage's shard groups): their steps come
        first in stats.json, their stats and their steps' profiles (not what they wrote) are added, and
        ``records`` (:class:`Dropped` and, ``with_failures``, :class:`Failure` objects) join this run's
        dropped and failed outputs."""
        self.steps[:0] = [s for s in steps if s not in self.steps]
        for profile in profiles:
            for step, entry in profile.get("steps", {}).items():
                self.thresholds.setdefault(step, entry.get("thresholds", {}))
            self.extra_edges.update({s: e for s, e in profile.get("bins", {}).items() if s not in BINS})
        rows = stats_rows(stats) + [r for p in profiles for r in profile_rows(p)]
        self._stats.append(self.pipeline | f"IncludedStats{len(self._stats)}" >> beam.Create(rows))
        if with_failures:
            split = records | f"SplitIncluded{len(self._stats)}" >> beam.Partition(
                lambda r, _n: 0 if isinstance(r, Dropped) else 1, 2
            )
            self._dropped.append(split[0])
            self._failed.append(split[1])
        else:
            self._dropped.append(records)


def _write_samples(keyed: beam.PCollection, out_dir: str, label: str) -> None:
    """``(group, document)`` pairs -> OUT/_samples/<group>.jsonl.gz, KEPT_SAMPLE per group by a hash of
    the document's id and location."""

    def write(item):
        group, records = item
        records = sorted(records, key=lambda d: (d.id, d.location))
        with atomic_write(join(out_dir, "_samples", f"{label_of(group)}.jsonl.gz")) as handle:
            encode_jsonl_gz((d.to_dict() for d in records), handle)

    (
        keyed
        | f"Sample{label}"
        >> beam.combiners.Top.PerKey(KEPT_SAMPLE, key=lambda d: -stable_hash(f"{d.id}\x00{d.location}"))
        | f"WriteSample{label}" >> beam.Map(write)
    )


def label_of(group: str) -> str:
    """An output group as a file name (groups are paths like ``s00001/en`` or ``""``)."""
    return (check_group(group) or "(all)").replace("/", "__")


def _json_safe(value):
    """A filter's thresholds as JSON values (numbers, strings, lists and dicts of them)."""
    return json.loads(json.dumps(value, default=str))


class _ProfileOutput(beam.DoFn):
    """The written documents' profile rows (corpusmill.core.profile), summed per bundle."""

    def __init__(self, group_fn: Callable[[Document], str]):
        self.group_fn = group_fn
        self._sums: Dict[str, list] = {}

    def start_bundle(self):
        self._sums = {}

    def _add(self, name: str, chars: int = 0) -> None:
        acc = self._sums.setdefault(name, [0, 0])
        acc[0] += 1
        acc[1] += chars

    def process(self, doc):
        lang = label(doc.metadata.get("language"))
        self._add(f"groups\t{label(self.group_fn(doc) or '(all)')}", len(doc.text))
        self._add(f"languages\t{lang}")
        self._add(f"sources\t{label(doc.source)}")
        self._add(f"{HIST}\tlength\x1f{lang}\x1f{bin_of('length', len(doc.text))}")
        for score in SCORES:
            value = number(doc.metadata.get(score))
            if value is not None:
                self._add(f"{HIST}\t{score}\x1f{lang}\x1f{bin_of(score, value)}")

    def finish_bundle(self):
        from apache_beam.transforms.window import GlobalWindows

        for name, (n, chars) in sorted(self._sums.items()):
            yield GlobalWindows.windowed_value(((OUTPUT_STEP, OUTPUT, name), (n, chars, 0)))
        self._sums = {}


def stats_rows(stats: Sequence[dict]) -> List[tuple]:
    """stats.json entries back into the rows :func:`build_stats` sums (so stats of several runs add up)."""
    rows = []
    for e in stats:
        rows.append(((e["step"], KEPT, ""), (e["kept"], e["bytes_read"], e["bytes_kept"])))
        rows.extend(((e["step"], DROPPED, r), (n, 0, 0)) for r, n in e["dropped"].items())
        if e["failed"]:
            rows.append(((e["step"], FAILED, ""), (e["failed"], 0, 0)))
        rows.extend(((e["step"], COUNTER, k), (n, 0, 0)) for k, n in e.get("counters", {}).items())
    return rows


def write_sharded(
    keyed: beam.PCollection,
    out_dir: str,
    prefix_fn: Callable,
    per_file: int,
    sort_key: Callable,
    label: str,
    encode: Optional[Callable] = None,
    suffix: str = ".jsonl.gz",
) -> None:
    """Write ``(key, record)`` pairs to ``OUT/<prefix_fn(key)>-NNNNN<suffix>``: ``ceil(n / per_file)``
    files per key, a record's file chosen by a stable hash, each file sorted; nothing for no records.
    ``encode(records, handle)`` writes a file (default: the records' ``to_dict()`` as JSON lines, gzip)."""
    counts = keyed | f"{label}Count" >> beam.combiners.Count.PerKey()

    def assign(item, counts):
        key, record = item
        files = max(1, -(-counts[key] // per_file))
        return (key, stable_hash(str(sort_key(record))) % files), record

    def write(item):
        (key, index), records = item
        records = sorted(records, key=sort_key)
        with atomic_write(join(out_dir, f"{prefix_fn(key)}-{index:05d}{suffix}")) as handle:
            if encode is None:
                encode_jsonl_gz((r.to_dict() for r in records), handle)
            else:
                encode(records, handle)

    (
        keyed
        | f"{label}Assign" >> beam.Map(assign, counts=beam.pvalue.AsDict(counts))
        | f"{label}Group" >> beam.GroupByKey()
        | f"{label}Write" >> beam.Map(write)
    )


def _at_file_start(location: str) -> bool:
    """A dead letter's location that names a file (or its first byte), not a record inside it: the file
    failed before anything of it was read (cannot be opened or fetched, damaged at its start)."""
    return not re.search(r"@(?!0$)|#|:\d+$|!", location)


def failure_budget(out_dir: str, max_fraction: float, max_files: int = 0) -> Optional[dict]:
    """The breach of the run's failure budget, or None: more than ``max_fraction`` of the records read
    failed (every step's dead letters over the first step's reads), or more than ``max_files`` input
    files failed whole (dead letters of the first step at a file's start)."""
    import collections

    from corpusmill.core.files import read_failed

    try:
        with open(join(out_dir, STATS_FILE), encoding="utf-8") as fh:
            stats = json.load(fh)
    except (OSError, ValueError):
        return None
    if not stats:
        return None
    read, failed = int(stats[0]["read"]), sum(int(s["failed"]) for s in stats)
    if failed == 0:
        return None
    letters = read_failed(out_dir) if "://" not in out_dir else []
    whole = [f["location"] for f in letters if f["step"] == stats[0]["step"] and _at_file_start(f["location"])]
    fraction = (failed - len(whole)) / max(1, read - len(whole))  # records failing in the files that were read
    everything = failed >= read and max_fraction < 1.0  # nothing came through: over any budget but "no budget"
    over_fraction, over_files = fraction > max_fraction or everything, len(whole) > max_files
    if not (over_fraction or over_files):
        return None
    errors = collections.Counter(f["error"].split("\n")[0][:160] for f in letters)
    common, times = errors.most_common(1)[0] if errors else ("", 0)
    return {
        "read": read,
        "failed": failed,
        "fraction": round(fraction, 6),
        "max_failed_fraction": max_fraction,
        "files_failed": len(whole),
        "max_failed_files": max_files,
        "over": [w for w, o in (("records", over_fraction), ("files", over_files)) if o],
        "example": (whole or [f["location"] for f in letters] or [""])[0],
        "most_common_error": common,
        "most_common_error_count": times,
    }


def budget_error(out_dir: str, breach: dict) -> CorpusmillError:
    """The one line (exit 3) for an output written over its failure budget."""
    said = []
    if "files" in breach["over"]:
        said.append(
            f"{breach['files_failed']} input files failed whole, over --max-failed-files "
            f"{breach['max_failed_files']} (e.g. {breach['example']})"
        )
    if "records" in breach["over"]:
        said.append(
            "every record failed"
            if breach["failed"] >= breach["read"]
            else f"{breach['fraction']:.1%} of the records of the files read failed, over --max-failed-fraction "
            f"{breach['max_failed_fraction']:g}"
        )
    return CorpusmillError(
        f"{breach['failed']:,} of {breach['read']:,} records failed: {'; '.join(said)}; most common error "
        f"({breach['most_common_error_count']:,}x): {breach['most_common_error']}; {out_dir} is written with its "
        f"dead letters in _failed/ and marked over budget in _SUCCESS",
        code=3,
    )


def check_budget(out_dir: str) -> None:
    """After the output is committed: exit 3 when its ``_SUCCESS`` records a breach of the budget."""
    breach = read_breach(out_dir)
    if breach is not None:
        raise budget_error(out_dir, breach)


def read_breach(out_dir: str) -> Optional[dict]:
    try:
        with open(join(out_dir, DONE_FILE), encoding="utf-8") as fh:
            text = fh.read()
        return json.loads(text).get("over_failure_budget") if text.strip() else None
    except (OSError, ValueError):
        return None


def mark_done(out_dir: str, cfg=None) -> None:
    """Written last, after the pipeline finished: the list of every file of the output with its size and
    sha256 (local outputs; on an object store, sizes only). Consumers refuse an output without it. With
    the run's ``cfg`` (its --max-failed-fraction / --max-failed-files), a breach of the failure budget is
    recorded in it too (corpusmill.engine.run.failure_budget)."""
    import json

    from corpusmill.core.files import PROVENANCE_NAME, completion_record

    if "://" in out_dir:
        from apache_beam.io.filesystems import FileSystems

        base = out_dir.rstrip("/") + "/"
        found = [m for r in FileSystems.match([base + "**"]) for m in r.metadata_list]
        files = sorted(
            (
                {"path": m.path[len(base) :], "bytes": m.size_in_bytes}
                for m in found
                if not m.path[len(base) :].startswith(("_shards/", DONE_FILE, PROVENANCE_NAME))
            ),
            key=lambda f: f["path"],
        )
        record = {"files": files}
    else:
        record = completion_record(out_dir)
    if cfg is not None:
        breach = failure_budget(out_dir, getattr(cfg, "max_failed_fraction", 0.01), getattr(cfg, "max_failed_files", 0))
        if breach is not None:
            record["over_failure_budget"] = breach
    write_text_atomic(join(out_dir, DONE_FILE), json.dumps(record, indent=1, sort_keys=True) + "\n")


__all__ = [
    "Run",
    "OutputLock",
    "check_output_apart",
    "prepare_output_dir",
    "begin_output",
    "commit_output",
    "mark_done",
    "Dropped",
    "Failure",
    "STATS_FILE",
    "DONE_FILE",
]
