"""What every stage command shares: output options, running a pipeline to completion, the stats table.

A stage module (ccnet, each source processor) does three things:

    def build(p, run, cfg): ...                       # add its steps to pipeline p, via run.step(...)
    stats = run_build(output_opts, beam_args, build)  # runs it, writes stats.json and _SUCCESS
    print(format_stats(stats))
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from typing import Callable, List, Optional, Sequence, Tuple

import apache_beam as beam

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import join
from corpusmill.core.outputs import OutputOptions, show_documents  # noqa: F401 (stages import them from here too)
from corpusmill.core.stats import format_stats  # noqa: F401 (stages print it)
from corpusmill.engine.options import beam_options
from corpusmill.engine.run import (
    PROFILE_FILE,
    STATS_FILE,
    OutputLock,
    Run,
    begin_output,
    check_budget,
    check_output_apart,
    commit_output,
    mark_done,
)
from corpusmill.filters.base import Filter
from corpusmill.filters.user import load_extra_filters  # noqa: F401 (stages import it from here too)


def run_build(
    out: OutputOptions,
    beam_args: Sequence[str],
    build: Callable[[beam.Pipeline, Run], None],
    before_done: Optional[Callable[[str], None]] = None,
) -> List[dict]:
    """Prepare the output directory, run ``build(pipeline, run)`` to completion, return stats.json.

    ``build`` adds steps with ``run.step(...)``, writes with ``run.write(...)`` (and anything else under
    ``run.out_dir``, never ``out.output``); ``run.finish()`` is called here. ``before_done(out_dir)``, if
    given, runs after the pipeline (work that needs its output, e.g. training a model on a sample it
    wrote). ``_SUCCESS`` is written last, only when all succeeded. With ``--overwrite`` the new output
    is built beside the old one and replaces it only then (:func:`corpusmill.engine.run.begin_output`).
    """
    options = beam_options(beam_args)  # refused options fail before the output is touched
    inputs = getattr(out, "input", None)
    check_output_apart(out.output, [inputs] if isinstance(inputs, str) else inputs)
    extra = load_extra_filters(out.add_filter, out.after, out.filter_arg)  # a bad --add-filter fails before any output
    with OutputLock(out.output):  # one writer at a time; a second is refused naming this one
        fresh = "://" not in out.output and not (os.path.isdir(out.output) and os.listdir(out.output))
        work = begin_output(out.output, out.overwrite)
        with removed_on_failure(work, out.output, fresh):
            run_pipeline(options, work, build, os.path.basename(out.output.rstrip("/")), out, extra)
            if before_done is not None:
                before_done(work)
            mark_done(work, out)
        commit_output(work, out.output)
    check_budget(out.output)
    return read_stats(out.output)


@contextlib.contextmanager
def removed_on_failure(work: str, output: str, fresh: bool = False):
    """A run that fails or is interrupted removes what it built: the new output beside the old one (the
    old output stays as it was), or the output it began in a new or empty directory (``fresh``), so the
    same command runs again as it was; a disk that filled up is said in one line naming the path."""
    try:
        yield
    except BaseException as exc:
        if (work != output or fresh) and "://" not in work:
            shutil.rmtree(work, ignore_errors=True)
        full = disk_full(exc)
        if full is not None:
            raise CorpusmillError(full, code=1) from None
        raise


def disk_full(exc: BaseException) -> Optional[str]:
    """One line for a full disk (ENOSPC, also when Beam wraps it in its own error), else None."""
    import errno

    seen, cur = set(), exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in (errno.ENOSPC, errno.EDQUOT):
            path = cur.filename or "the output"
            return (
                f"no space left on the device writing {path}; free space there (or choose another --output) "
                f"and rerun: the run's partial output was removed"
            )
        cur = cur.__cause__ or cur.__context__
    text = str(exc)
    if "No space left on device" in text or "Errno 28" in text:
        return (
            "no space left on the device writing the output; free space there (or choose another --output) "
            "and rerun: the run's partial output was removed"
        )
    return None


def run_pipeline(
    options,
    out_dir: str,
    build: Callable[[beam.Pipeline, Run], None],
    label: str,
    out: OutputOptions,
    extra_filters: Optional[Sequence[Tuple[Filter, Optional[str]]]] = None,
) -> None:
    """One pipeline run to completion, writing under ``out_dir``, with a live progress line on the
    local runner (corpusmill.core.progress)."""
    from apache_beam.options.pipeline_options import StandardOptions

    from corpusmill.core.progress import Watcher
    from corpusmill.engine.options import DEFAULT_RUNNER, workers_apart_from_the_terminal
    from corpusmill.engine.provenance import Clock, write_provenance

    runs: List[Run] = []
    local = options.view_as(StandardOptions).runner == DEFAULT_RUNNER
    if local:
        workers_apart_from_the_terminal()
    watcher = Watcher(label, lambda: runs[0].steps if runs else [])
    watcher.enabled = watcher.enabled and local
    clock = Clock()
    with watcher:
        with beam.Pipeline(options=options) as p:
            run = Run(
                p,
                out_dir,
                write_dropped=out.write_dropped,
                dropped_sample=out.dropped_sample,
                fmt=out.format,
                docs_per_shard=out.docs_per_shard,
                extra_filters=load_extra_filters(out.add_filter, out.after, out.filter_arg)
                if extra_filters is None
                else extra_filters,
            )
            runs.append(run)
            build(p, run)
            run.finish()
    write_provenance(out_dir, label, out, options, run, getattr(p, "result", None), clock)


def read_profile(out_dir: str) -> dict:
    """An output's profile.json (corpusmill.core.profile); {} for an output written before it existed."""
    from apache_beam.io.filesystems import FileSystems

    path = join(out_dir, PROFILE_FILE)
    if not FileSystems.exists(path):
        return {}
    with FileSystems.open(path) as fh:  # a remote output too (the CCNet stage's units on gs://)
        return json.loads(fh.read().decode("utf-8"))


def read_stats(out_dir: str) -> List[dict]:
    with open(join(out_dir, STATS_FILE), encoding="utf-8") as fh:
        return json.load(fh)


def apply_steps(run: Run, pcoll: beam.PCollection, steps) -> beam.PCollection:
    """A source stage's step list (corpusmill.core.steps.Step) applied in order: each step's ``prepare``
    transform first when it has one (a dedup's marks), then its filter with the run's accounting; the
    user's filters follow the step ``--after`` names (Run.step)."""
    for step in steps:
        if step.prepare is not None:
            label, transform = step.prepare()
            pcoll = pcoll | label >> transform
        pcoll = run.step(pcoll, step.name, step.make())
    return pcoll
