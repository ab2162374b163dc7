"""How a CCNet run is driven (the stage's config and step list are in :mod:`corpusmill.pipelines.ccnet`).

The input files are cut into shards and units (cc_net's cut and hash groups); each unit runs the steps
before ``collect`` as one pipeline and marks its shards done; the final phase runs the rest over every
unit's pieces. A rerun runs only what is missing (resume); ``--task-count/--task-rank`` runs one rank's
units (N processes or machines at once), ``--parallel-units K`` K ranks here, ``--one-job`` one pipeline.
The writer holds the output's lock (corpusmill.core.outputs) except for rank tasks, which share it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import sys
from typing import Dict, List, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import REPEATED_LINES_NAME, join
from corpusmill.core.inputs import Skipped
from corpusmill.dedup.lines import scope_of
from corpusmill.engine.options import beam_options, cap_workers
from corpusmill.engine.pipeline import (
    LINES,
    Knobs,
    build_phase,
    compile_passes,
    split_phases,
)
from corpusmill.engine.provenance import merge_units
from corpusmill.engine.run import (
    DONE_FILE,
    OutputLock,
    Run,
    begin_output,
    check_budget,
    check_output_apart,
    commit_output,
    mark_done,
)
from corpusmill.engine.shards import SHARDS_DIR, ShardState, cut, fingerprint
from corpusmill.engine.stage import read_profile, read_stats, run_pipeline
from corpusmill.io.commoncrawl import dump_of
from corpusmill.io.documents import read_document_records
from corpusmill.io.warc import read_records
from corpusmill.pipelines.ccnet import (
    DOC_SUFFIXES,
    MAX_PARTITIONS,
    WARC_SUFFIXES,
    CCNetConfig,
    input_files,
    input_steps,
)
from corpusmill.pipelines.quality import output_group_fn


def _partitions(cfg: CCNetConfig, pieces: int) -> int:
    return cfg.shuffle_partitions or max(1, min(MAX_PARTITIONS, pieces))


class _Plan:
    """One run's layout: its files (a piece each), shards, units, and what every piece's documents carry."""

    def __init__(self, cfg: CCNetConfig, files: Sequence[str], out: str):
        self.cfg, self.files, self.out = cfg, list(files), out
        self.shards = cut(files, cfg.num_shards)
        self.shard_of = {f: s for s, fs in enumerate(self.shards) for f in fs}
        self.state = ShardState(out)
        self.units: Dict[int, List[int]] = {}
        for s in range(len(self.shards)):
            self.units.setdefault(s // cfg.dedup_group_size if cfg.dedup_scope == "group" else 0, []).append(s)
        self.placement = {i: {"dump": dump_of(f, cfg.snapshot), "shard": self.shard_of[f]} for i, f in enumerate(files)}
        names: Dict[str, int] = {}
        self.scopes = []
        for i in range(len(files)):
            name = scope_of(_Placed(self.placement[i]), cfg.dedup_scope, cfg.dedup_group_size)
            self.scopes.append(names.setdefault(name, len(names)))
        self.scope_names = sorted(names, key=names.get)
        first = {f: i for i, f in enumerate(files)}
        self.unit_pieces = {u: [first[f] for s in ss for f in self.shards[s]] for u, ss in self.units.items()}
        self.unit_steps, self.final_steps = split_phases(input_steps(cfg, files), "collect")
        self.unit_passes = compile_passes(self.unit_steps)
        self.final_passes = compile_passes(self.final_steps)

    def knobs(self, skipped: Sequence[Skipped] = (), skipped_piece: int = -1) -> Knobs:
        """What the passes need beyond the steps; one number of hash ranges for the whole run (the units'
        key files are read by the final phase)."""
        cfg = self.cfg
        keep_records = functools.partial(read_records, keep=cfg.max_page_bytes + (1 << 20))
        return Knobs(
            partitions=_partitions(cfg, len(self.files)),
            scopes=self.scopes,
            scope_names=self.scope_names,
            min_docs=cfg.line_max_docs + 1,
            bucket_docs=cfg.line_bucket_docs,
            keep_first=cfg.dedup_keep == "first",
            normalize=cfg.dedup_normalize,
            fuzzy=cfg.fuzzy,
            fmt=cfg.format,
            docs_per_shard=cfg.docs_per_shard,
            write_dropped=cfg.write_dropped,
            dropped_sample=cfg.dropped_sample,
            group_fn=output_group_fn(cfg),
            readers={"extract": (WARC_SUFFIXES, keep_records), "read": (DOC_SUFFIXES, read_document_records)},
            placement=self.placement,
            skipped=skipped,
            skipped_piece=skipped_piece,
        )

    def unit_dir(self, unit: int) -> str:
        return self.state.unit_dir(unit)

    def unit_output(self, unit: int) -> List:
        """The unit's last pass's pieces (work files and keys), as the final phase reads them."""
        from corpusmill.engine.passes import Piece, piece_name, work_suffix

        last = join(self.unit_dir(unit), f"pass-{len(self.unit_passes)}")
        return [
            Piece(i, join(last, "pieces", piece_name(i) + work_suffix(last)), join(last, "keys", piece_name(i)))
            for i in self.unit_pieces[unit]
        ]


@dataclasses.dataclass
class _Placed:
    """What :func:`corpusmill.dedup.lines.scope_of` reads of a document: its dump and shard."""

    metadata: dict


def build_unit(p: beam.Pipeline, run: Run, plan: _Plan, unit: int, skipped: Sequence[Skipped] = ()):
    """One unit's passes (everything before ``collect``); returns its last pass's pieces and the
    repeated-lines entries of its line dedup. The first unit's first piece counts ``skipped``."""
    from corpusmill.core.progress import expect_input
    from corpusmill.engine.passes import Piece

    pieces = plan.unit_pieces[unit]
    expect_input([plan.files[i] for i in pieces])  # the progress line's input size
    inputs = p | f"Unit{unit}Files" >> beam.Create([Piece(i, plan.files[i]) for i in pieces])
    knobs = plan.knobs(skipped, pieces[0] if skipped else -1)
    return build_phase(
        run,
        plan.unit_passes,
        inputs,
        plan.unit_dir(unit),
        knobs,
        final=False,
        label=f"Unit{unit}",
        following=plan.final_passes[0],
    )


def build_final(run: Run, plan: _Plan, pieces: beam.PCollection):
    """The final phase (``collect`` and after) over every unit's pieces; writes the stage's output."""
    knobs = dataclasses.replace(plan.knobs(), readers={}, placement=None)
    return build_phase(
        run, plan.final_passes, pieces, join(plan.out, SHARDS_DIR, "final"), knobs, final=True, label="Final"
    )


# -- the most repeated lines (the report shows them: what line dedup removes most) ---------------------
TOP_LINES = 100
REPEATED_LINES = REPEATED_LINES_NAME  # _meta/repeated_lines.json


def write_repeated_entries(out_dir: str, entries: Sequence[beam.PCollection], label: str = "") -> None:
    """OUT/repeated_lines.json from the line dedups' entries (the TOP_LINES hashes in the most documents of
    their dedup scope, counted exactly on the keys, with the text of the line in the first such document)."""
    if not entries:
        return
    (
        tuple(entries)
        | f"{label}AllRepeated" >> beam.Flatten()
        | f"{label}RepeatedList" >> beam.combiners.ToList()
        | f"{label}WriteRepeated" >> beam.Map(lambda lists: write_repeated(out_dir, [e for x in lists for e in x]))
    )


def write_repeated(out_dir: str, lines: List[dict]) -> None:
    import json

    from corpusmill.io.files import write_text_atomic

    lines = sorted(lines, key=lambda x: (-x["documents"], x["scope"], x["hash"]))[:TOP_LINES]
    write_text_atomic(join(out_dir, REPEATED_LINES), json.dumps({"lines": lines}, indent=1, ensure_ascii=False) + "\n")


def merge_repeated(out_dir: str, unit_dirs: Sequence[str]) -> None:
    """The final pass: the units' most repeated lines, together (each count is exact within its scope)."""
    import json

    lines = []
    for d in unit_dirs:
        path = join(d, REPEATED_LINES)
        if FileSystems.exists(path):
            with FileSystems.open(path) as fh:
                lines += json.loads(fh.read().decode("utf-8"))["lines"]
    write_repeated(out_dir, lines)


# -- driving the units ------------------------------------------------------------------------------
def _clear(path: str) -> None:
    if "://" not in path:
        if os.path.isdir(path):
            shutil.rmtree(path)
    else:
        found = _matching(join(path, "**"))
        if found:
            FileSystems.delete(found)


def _run_pipeline(
    cfg: CCNetConfig, beam_args: Sequence[str], out_dir: str, build, extra_filters=(), label: str = "ccnet"
) -> None:
    run_pipeline(beam_options(beam_args), out_dir, build, label, cfg, list(extra_filters))


def _matching(pattern: str) -> List[str]:
    return sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)


# options that say how a run is spread, not what it makes: ranks and the finishing command share a plan
# (--shuffle-partitions is part of the plan: the units' key files are cut into that many ranges)
_HOW = (
    "output",
    "overwrite",
    "task_count",
    "task_rank",
    "parallel_units",
    "one_job",
    "max_failed_fraction",
    "max_failed_files",
)


_PATHS = ("input", "input_list", "lid_model", "lm_dir", "cutoffs")


def _canonical(value):
    """A local path as an absolute one (the same run named from another directory is the same run)."""
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, str) and value and "://" not in value:
        return os.path.abspath(value)
    return value


def _options_of(cfg: CCNetConfig) -> dict:
    options = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _HOW}
    for key in _PATHS:
        options[key] = _canonical(options.get(key))
    if options.get("classifier"):  # [LANG=]MODEL
        options["classifier"] = [
            (c.split("=", 1)[0] + "=" + _canonical(c.split("=", 1)[1])) if "=" in c else _canonical(c)
            for c in options["classifier"]
        ]
    return options


def _sources_of(cfg: CCNetConfig, files: Sequence[str]) -> Dict[str, str]:
    """``size:mtime`` of every local input file and model the run reads (remote inputs: their paths are
    in the plan already), so a retrained model or a changed input at the same path is a different run."""
    paths = list(files)
    for value in [cfg.lid_model, cfg.cutoffs, *[c.split("=", 1)[-1] for c in cfg.classifier or ()]]:
        if value:
            paths.append(value)
    if cfg.lm_dir and os.path.isdir(cfg.lm_dir):
        paths += [os.path.join(cfg.lm_dir, n) for n in sorted(os.listdir(cfg.lm_dir))]
    found = {}
    for path in paths:
        if "://" not in path:
            try:
                st = os.stat(path)
            except OSError:
                continue
            found[os.path.abspath(path)] = f"{st.st_size}:{st.st_mtime_ns}"
    return found


def _what_changed(previous: dict, now: dict) -> str:
    """What differs between the run an output holds and this one, in a few words."""
    if "options" not in previous:
        return "a plan written by an older corpusmill"
    said = []
    for key in sorted(set(previous["options"]) | set(now["options"])):
        if previous["options"].get(key) != now["options"].get(key):
            said.append(
                f"--{key.replace('_', '-')}: {previous['options'].get(key)!r} then, {now['options'].get(key)!r} now"
            )
    before, after = previous.get("sources", {}), now["sources"]
    changed = [p for p in sorted(set(before) & set(after)) if before[p] != after[p]]
    said += [f"{p} changed (size:mtime {before[p]} then, {after[p]} now)" for p in changed[:3]]
    added, gone = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    if added or gone:
        said.append(f"{len(added)} files added, {len(gone)} gone, e.g. {(added or gone)[0]}")
    if not said and previous.get("shards") != now["shards"]:
        said.append("the files are cut into other shards")
    return "; ".join(said[:4]) or "its plan differs"


def _say(message: str) -> None:
    if os.environ.get("CORPUSMILL_QUIET") != "1":  # corpusmill ccnet -q
        print(f"ccnet: {message}", file=sys.stderr, flush=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def run_ccnet(cfg: CCNetConfig, beam_args: Sequence[str] = ()) -> List[dict]:
    """Run the stage to completion (or finish an interrupted run); returns stats.json's content (nothing
    for a ``--task-rank`` task, which runs units only)."""
    cfg.validate()
    beam_options(beam_args)  # refused options fail before the output is touched
    check_output_apart(cfg.output, list(cfg.input or ()) + list(cfg.input_list or ()))
    files = input_files(cfg)
    input_steps(cfg, files)  # an unknown --after is refused before any work
    beam_args = cap_workers(beam_args, len(files))  # the work is cut by input file
    if cfg.task_rank is not None:  # N tasks share the output at once by design: no exclusive lock
        return _run_ccnet(cfg, beam_args, files)
    with OutputLock(cfg.output):
        return _run_ccnet(cfg, beam_args, files)


def _run_ccnet(cfg: CCNetConfig, beam_args: Sequence[str], files) -> List[dict]:
    shards = cut(files, cfg.num_shards)
    options, sources = _options_of(cfg), _sources_of(cfg, files)
    canonical = [[_canonical(f) for f in shard] for shard in shards]  # the same files named from elsewhere
    fp = fingerprint({**options, "sources": sources}, canonical)
    record = {
        "fingerprint": fp,
        "shards": canonical,
        "options": json.loads(json.dumps(options, default=str)),
        "sources": sources,
    }
    out = cfg.output
    state = ShardState(out)
    previous = state.plan() if FileSystems.exists(join(out, SHARDS_DIR)) else None
    if previous is not None and previous.get("fingerprint") == fp and not cfg.overwrite:
        if FileSystems.exists(join(out, DONE_FILE)):  # the same run: finish it, never wipe it
            _say(f"{out} is complete ({_plural(len(shards), 'shard')} done); nothing to do (--overwrite runs it again)")
            return read_stats(out)
    elif previous is not None and not cfg.overwrite:
        raise CorpusmillError(
            f"output directory {out} holds a CCNet run with other inputs or options "
            f"({_what_changed(previous, record)}); rerun that command to finish it, choose a "
            f"new --output, or pass --overwrite to replace it"
        )
    elif cfg.task_rank is not None:  # tasks start together: each may find the output empty or just begun
        out = _begin_shared(out)
    else:  # a new run; with --overwrite over an old output, built beside it and swapped in when complete
        out = begin_output(out, cfg.overwrite)
    plan = _Plan(cfg, files, out)
    if plan.state.plan() != record:
        plan.state.write_plan(record)

    done = {s for s in range(len(shards)) if plan.state.done(s)}
    pending = [u for u, ss in sorted(plan.units.items()) if not all(s in done for s in ss)]
    _say(
        f"{_plural(len(shards), 'shard')}: {len(done)} done, {len(shards) - len(done)} pending "
        f"({len(pending)} of {_plural(len(plan.units), 'unit')} to run)"
    )
    skipped = files.skipped
    if cfg.task_rank is not None:
        mine = [u for u in pending if u % cfg.task_count == cfg.task_rank]
        _run_units(cfg, beam_args, plan, mine, skipped)
        _say(
            f"task {cfg.task_rank} of {cfg.task_count}: {_plural(len(mine), 'unit')} done; run the command "
            f"without --task-rank to run what is missing and the final pass"
        )
        return []
    if cfg.one_job or (len(plan.units) == 1 and pending and FUSE_SINGLE_UNIT):
        return _run_one_pipeline(cfg, beam_args, plan, skipped)
    if cfg.parallel_units > 1 and len(pending) > 1:
        _run_tasks(cfg, beam_args, min(cfg.parallel_units, len(pending)))
    else:
        _run_units(cfg, beam_args, plan, pending, skipped)
    return _finish(cfg, beam_args, plan)


def _begin_shared(out: str) -> str:
    """A task's output: created if absent; one holding only another task's fresh ``_shards/`` is shared."""
    if "://" not in out:
        os.makedirs(out, exist_ok=True)
        others = [n for n in os.listdir(out) if n != SHARDS_DIR and not n.startswith(".")]
        if others:
            raise CorpusmillError(
                f"output directory {out} is not empty ({', '.join(sorted(others)[:3])}); "
                f"tasks share a new or cleared --output"
            )
    return out


def _run_units(
    cfg: CCNetConfig, beam_args: Sequence[str], plan: _Plan, units: Sequence[int], skipped: Sequence[Skipped]
) -> None:
    first = min(plan.units)
    for n, unit in enumerate(units, 1):
        unit_dir = plan.unit_dir(unit)
        _clear(unit_dir)

        def build(p, run, unit=unit):
            last, entries = build_unit(p, run, plan, unit, skipped if unit == first else ())
            write_repeated_entries(run.out_dir, entries)

        _run_pipeline(cfg, beam_args, unit_dir, build, (), label=f"ccnet unit {unit}")
        for k in range(1, len(plan.unit_passes) + 1):  # the passes' work files; the last's are the unit's output
            _clear(join(unit_dir, f"keyed-{k}"))
            if k < len(plan.unit_passes):
                _clear(join(unit_dir, f"pass-{k}"))
        mark_done(unit_dir)
        outputs = {piece.index: piece for piece in plan.unit_output(unit)}
        index_of = {f: i for i, f in enumerate(plan.files)}
        for s in plan.units[unit]:
            pieces = [outputs[index_of[f]] for f in plan.shards[s]]
            files = [
                x
                for piece in pieces
                for x in [piece.docs] + [piece.keys + sfx for sfx in (".lines", ".docs")]
                if FileSystems.exists(x)
            ]
            plan.state.mark(s, unit, files, pieces)
        _say(f"unit {unit}: shards {plan.units[unit][0]}-{plan.units[unit][-1]} done ({n}/{len(units)} units)")


def _run_tasks(cfg: CCNetConfig, beam_args: Sequence[str], k: int) -> None:
    """--parallel-units K: K processes, each the task of one rank of K (its units), at once."""
    import multiprocessing

    from corpusmill.engine.options import local_one_worker

    context = multiprocessing.get_context("spawn")
    args = local_one_worker(beam_args)
    procs = [
        context.Process(
            target=_task_main,
            args=(dataclasses.replace(cfg, task_count=k, task_rank=r, parallel_units=1, overwrite=False), args),
            name=f"ccnet-task-{r}",
        )
        for r in range(k)
    ]
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join()
    failed = [proc.name for proc in procs if proc.exitcode]
    if failed:
        raise CorpusmillError(
            f"--parallel-units: {', '.join(failed)} failed (exit codes "
            f"{', '.join(str(p.exitcode) for p in procs if p.exitcode)}); rerun the command to "
            f"finish the units that are missing"
        )


def _task_main(cfg: CCNetConfig, beam_args: Sequence[str]) -> None:
    from corpusmill.engine.options import quiet_beam

    quiet_beam()
    run_ccnet(cfg, beam_args)


# One unit (every shard in one line-dedup group: the common case below 50 shards) runs as ONE pipeline
# with the final phase: one start-up. The bytes are those of the two-pipeline run (tested); a killed run
# reruns the whole unit, as it would have anyway.
FUSE_SINGLE_UNIT = True


def _run_one_pipeline(cfg: CCNetConfig, beam_args: Sequence[str], plan: _Plan, skipped: Sequence[Skipped]):
    """Every unit and the final phase as one pipeline (one unit, or ``--one-job``)."""
    out = plan.out
    _clear_stale(out)
    for unit in plan.units:
        _clear(plan.unit_dir(unit))

    def build(p, run):
        first = min(plan.units)
        outputs, entries = [], []
        for unit in sorted(plan.units):
            last, unit_entries = build_unit(p, run, plan, unit, skipped if unit == first else ())
            outputs.append(last)
            entries += unit_entries
        pieces = tuple(outputs) | "AllUnits" >> beam.Flatten() if len(outputs) > 1 else outputs[0]
        _last, final_entries = build_final(run, plan, pieces)
        write_repeated_entries(run.out_dir, entries + final_entries)

    _run_pipeline(cfg, beam_args, out, build, (), label="ccnet")
    if _dry_run(beam_args):
        return []
    for unit in plan.units:
        _clear(plan.unit_dir(unit))
    _clear(join(out, SHARDS_DIR, "final"))
    mark_done(out, cfg)
    commit_output(out, cfg.output)
    check_budget(cfg.output)
    return read_stats(cfg.output)


def _dry_run(beam_args: Sequence[str]) -> bool:
    from apache_beam.options.pipeline_options import TestOptions

    return bool(beam_options(beam_args).view_as(TestOptions).dry_run)


def _clear_stale(out: str) -> None:
    """What an earlier, interrupted final pass left: everything but _shards/ (all of it is made again)."""
    if "://" in out:
        stale = [p for p in _matching(join(out, "*")) if os.path.basename(p.rstrip("/")) != SHARDS_DIR]
        if stale:
            FileSystems.delete(stale)
    else:
        for name in os.listdir(out):
            if name != SHARDS_DIR:
                path = os.path.join(out, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    _clear(join(out, SHARDS_DIR, "final"))


def _finish(cfg: CCNetConfig, beam_args: Sequence[str], plan: _Plan) -> List[dict]:
    """The final phase over every unit's pieces, with the units' accounting merged; OUT/_SUCCESS."""
    from corpusmill.engine.passes import Piece

    out = plan.out  # cfg.output, or the new output being built beside it (--overwrite)
    _clear_stale(out)
    units = sorted(plan.units)
    pieces = []
    for s in range(len(plan.shards)):
        pieces += [Piece(**p) for p in plan.state.pieces(s)]
    unit_stats = [read_stats(plan.unit_dir(u)) for u in units]
    steps = [e["step"] for e in unit_stats[0]] if unit_stats else []
    # the units' dead letters (and with --write-dropped every dropped document) are files of one piece
    # each: copied, never shuffled; their dropped samples join this run's sample
    side = (
        []
        if cfg.write_dropped
        else [f for u in units for f in _matching(join(plan.unit_dir(u), "_dropped", "**")) if f.endswith(".jsonl.gz")]
    )
    for u in units:
        for folder in ("_failed",) + (("_dropped",) if cfg.write_dropped else ()):
            base = join(plan.unit_dir(u), folder)
            for f in _matching(join(base, "**")):
                target = join(out, folder, f[len(base) :].lstrip("/"))
                if "://" not in target:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                FileSystems.copy([f], [target])

    def build(p, run):
        records = (
            p
            | "UnitSideFiles" >> beam.Create(side)
            | "Spread" >> beam.Reshuffle()
            | "ReadSide" >> beam.FlatMap(_side_records)
        )
        run.include(
            steps,
            [e for stats in unit_stats for e in stats],
            records,
            [read_profile(plan.unit_dir(u)) for u in units],
            with_failures=False,
        )
        _last, entries = build_final(run, plan, p | "UnitPieces" >> beam.Create(sorted(pieces, key=lambda x: x.index)))
        write_repeated_entries(run.out_dir, entries)

    _run_pipeline(cfg, beam_args, out, build, (), label="ccnet final")
    _clear(join(out, SHARDS_DIR, "final"))
    merge_units(out, [plan.unit_dir(u) for u in units])
    if any(s.kind == LINES for s in plan.unit_steps):  # else the final pass wrote them itself
        merge_repeated(out, [plan.unit_dir(u) for u in units])
    mark_done(out, cfg)
    commit_output(out, cfg.output)
    check_budget(cfg.output)
    return read_stats(cfg.output)


def _side_records(path: str):
    """The Dropped / Failure records of one of a unit's ``_dropped`` or ``_failed`` files."""
    import gzip
    import json

    from apache_beam.io.filesystem import CompressionTypes

    from corpusmill.engine.step import Dropped, Failure

    kind = Failure if "/_failed/" in path.replace("\\", "/") else Dropped
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        for line in gzip.GzipFile(fileobj=raw, mode="rb"):
            if line.strip():
                yield kind.from_dict(json.loads(line))
