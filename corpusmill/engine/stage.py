"""What every stage command shares: output options, running a pipeline to completion, the stats table.

A stage module (ccnet, each source processor) does three things:

    def build(p, run, cfg): ...                       # add its steps to pipeline p, via run.step(...)
    stats = run_stage(output_opts, beam_args, build)  # runs it, writes stats.json and _SUCCESS
    print(format_stats(stats))
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Callable, List, Optional, Sequence

import apache_beam as beam

from corpusmill.core.files import join
from corpusmill.core.stats import format_stats  # noqa: F401 (stages print it)
from corpusmill.engine.options import beam_options
from corpusmill.engine.run import STATS_FILE, Run, mark_done, prepare_output_dir
from corpusmill.io.documents import FORMATS


@dataclasses.dataclass
class OutputOptions:
    output: str
    fmt: str = "jsonl"
    write_dropped: bool = False
    dropped_sample: int = 100
    docs_per_shard: int = 10_000
    overwrite: bool = False

    @classmethod
    def from_args(cls, args) -> "OutputOptions":
        return cls(args.output, args.fmt, args.write_dropped, args.dropped_sample, args.docs_per_shard,
                   args.overwrite)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """Options every stage that writes documents shares."""
    parser.add_argument("--output", required=True, help="output directory (local path or gs://...)")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="jsonl",
                        help="document file format: jsonl (.jsonl.gz) or parquet (default: jsonl)")
    parser.add_argument("--write-dropped", action="store_true",
                        help="write every dropped document under OUT/_dropped/ (default: a sample per reason)")
    parser.add_argument("--dropped-sample", type=int, default=100, metavar="N",
                        help="dropped documents kept per step and reason for the report (default: 100)")
    parser.add_argument("--docs-per-shard", type=int, default=10_000, metavar="N",
                        help="documents per output file; a group of n documents gets ceil(n/N) files "
                             "(default: 10000)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")


def run_stage(out: OutputOptions, beam_args: Sequence[str], build: Callable[[beam.Pipeline, Run], None],
              before_done: Optional[Callable[[], None]] = None) -> List[dict]:
    """Prepare the output directory, run ``build(pipeline, run)`` to completion, return stats.json.

    ``build`` adds steps with ``run.step(...)``, writes with ``run.write(...)``; ``run.finish()`` is
    called here. ``before_done()``, if given, runs after the pipeline (work that needs its output, e.g.
    training a model on a sample it wrote). ``_SUCCESS`` is written last, only when all succeeded.
    """
    prepare_output_dir(out.output, out.overwrite)
    with beam.Pipeline(options=beam_options(beam_args)) as p:
        run = Run(p, out.output, write_dropped=out.write_dropped, dropped_sample=out.dropped_sample,
                  fmt=out.fmt, docs_per_shard=out.docs_per_shard)
        build(p, run)
        run.finish()
    if before_done is not None:
        before_done()
    mark_done(out.output)
    return read_stats(out.output)


def read_stats(out_dir: str) -> List[dict]:
    with open(join(out_dir, STATS_FILE), encoding="utf-8") as fh:
        return json.load(fh)
