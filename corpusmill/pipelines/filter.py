"""``corpusmill filter``: new thresholds on a scored CCNet run, without extraction, dedup or models.

    corpusmill ccnet --input crawl/ --lm-dir lm/ --classifier wiki.bin --score-only --output scored
    corpusmill filter --input scored --lang-threshold 0.6 --keep-buckets head --wiki-threshold 0.4 --output cc

A scored run (``ccnet --score-only``) wrote every document that survived line dedup with its
``language``, ``language_score``, ``perplexity`` and ``wiki_prob``. This stage reads them and runs, in
the CCNet stage's order:

    read -> lid (language_score, --languages) -> [bucket (perplexity, --cutoffs)] -> [wiki_classifier]
    -> url_dedup -> content_dedup -> OUT/<lang>[_<bucket>]/

The verdicts are the CCNet stage's own (the same functions), from the stored scores; the doc dedup
runs after them, as in a full run, so the documents are those of a full run with these thresholds
(tests/test_filter.py). Which steps run, and the default cutoffs, come from the scored run's
``_provenance.json`` (its perplexity models and classifiers).
"""

from __future__ import annotations

import dataclasses
import os
from typing import List, Optional, Sequence

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import check_complete, read_provenance
from corpusmill.core.outputs import OutputOptions, show_documents
from corpusmill.core.stage import Stage
from corpusmill.filters.perplexity import BUCKETS, DEFAULT_KEEP_BUCKETS, parse_buckets
from corpusmill.filters.wiki_classifier import DEFAULT_THRESHOLD, check_threshold


@dataclasses.dataclass(kw_only=True)
class FilterConfig(OutputOptions):
    input: str = option(required=True, metavar="SCORED", help="the output of `corpusmill ccnet --score-only`")
    lang_threshold: float = option(0.5, min=0.0, max=1.0, help="drop documents whose language score is below this")
    languages: Optional[List[str]] = option(None, sep=",", metavar="LANG", help="keep only these languages")
    cutoffs: Optional[str] = option(
        None,
        metavar="FILE",
        help="perplexity percentiles (`corpusmill cutoffs` or cc_net's cutoff.csv; default: the scored run's own)",
    )
    keep_buckets: Optional[List[str]] = option(
        None,
        sep=",",
        choices=BUCKETS,
        metavar="BUCKET",
        help=f"buckets to keep (default: {', '.join(DEFAULT_KEEP_BUCKETS)})",
    )
    wiki_threshold: float = option(
        DEFAULT_THRESHOLD, min=0.0, max=1.0, help="drop documents with wiki_prob below this as not_wiki_like"
    )
    doc_dedup: bool = option(
        True,
        help="keep one copy per normalized URL (the newest) and per text, after the "
        "thresholds (--no-doc-dedup to skip)",
    )
    source: str = option("cc", help="the documents' source field, where a record has none")


def scored_config(path: str) -> dict:
    """The scored run's effective configuration (its _provenance.json), refused unless --score-only."""
    check_complete(path, "--input")
    prov = read_provenance(path)
    config = (prov or {}).get("config") or {}
    if prov is None or prov.get("stage") != "ccnet" or not config.get("score_only"):
        raise CorpusmillError(
            f"--input {path}: not a scored CCNet run (its _provenance.json must say `ccnet` with "
            f"score_only); make one with `corpusmill ccnet ... --score-only --output {path}`"
        )
    return config


def _cutoffs_of(cfg: FilterConfig, scored: dict) -> Optional[str]:
    if not scored.get("lm_dir"):
        if cfg.cutoffs or cfg.keep_buckets:
            raise CorpusmillError(
                f"--cutoffs and --keep-buckets: the scored run {cfg.input} has no perplexity (it ran without --lm-dir)"
            )
        return None
    from corpusmill.pipelines.quality import cutoffs_path_for

    return cfg.cutoffs or cutoffs_path_for(scored["lm_dir"], scored.get("cutoffs"))


def filter_steps(cfg: FilterConfig, scored: dict):
    """The stage's steps, in the CCNet stage's order (corpusmill.engine.pipeline.Step)."""
    from corpusmill.dedup.exact import DropDuplicates
    from corpusmill.engine.pipeline import CONTENT, DOC, READ, URL, Step
    from corpusmill.filters.lid import LanguageThreshold
    from corpusmill.filters.perplexity import PerplexityBucket, read_cutoffs
    from corpusmill.filters.wiki_classifier import WikiThreshold
    from corpusmill.io.documents import ParseDocument

    steps = [
        Step("read", READ, lambda: ParseDocument(cfg.source)),
        Step("lid", DOC, lambda: LanguageThreshold(cfg.lang_threshold, cfg.languages)),
    ]
    cutoffs = _cutoffs_of(cfg, scored)
    if cutoffs:
        steps.append(
            Step(
                "bucket", DOC, lambda: PerplexityBucket(cutoffs, parse_buckets(cfg.keep_buckets), read_cutoffs(cutoffs))
            )
        )
    if scored.get("classifier"):
        steps.append(Step("wiki_classifier", DOC, lambda: WikiThreshold(check_threshold(cfg.wiki_threshold))))
    if cfg.doc_dedup:
        steps += [
            Step("url_dedup", URL, lambda: DropDuplicates("url_dedup", "duplicate_url")),
            Step("content_dedup", CONTENT, lambda: DropDuplicates("content_dedup", "duplicate_content")),
        ]
    return steps


WORK = ("_shards", "work")  # the passes' own files, inside the output until it is complete


def build_filter(p, run, cfg: FilterConfig, files: Sequence[str], scored: dict) -> None:
    """The steps as streaming passes (corpusmill.engine.pipeline): no document crosses a shuffle."""
    import apache_beam as beam

    from corpusmill.core.files import join
    from corpusmill.engine.passes import Piece
    from corpusmill.engine.pipeline import Knobs, build_phase, compile_passes
    from corpusmill.io.documents import read_document_records
    from corpusmill.pipelines.ccnet import DOC_SUFFIXES, MAX_PARTITIONS

    knobs = Knobs(
        partitions=max(1, min(MAX_PARTITIONS, len(files))),
        fmt=cfg.format,
        docs_per_shard=cfg.docs_per_shard,
        write_dropped=cfg.write_dropped,
        dropped_sample=cfg.dropped_sample,
        group_fn=_language_and_bucket if _cutoffs_of(cfg, scored) else _language,
        readers={"read": (DOC_SUFFIXES, read_document_records)},
        skipped=files.skipped,
        skipped_piece=0,
    )
    pieces = p | "ScoredFiles" >> beam.Create([Piece(i, f) for i, f in enumerate(files)])
    build_phase(
        run,
        compile_passes(filter_steps(cfg, scored)),
        pieces,
        join(run.out_dir, *WORK),
        knobs,
        final=True,
        label="Filter",
    )


def _language(doc) -> str:  # the CCNet stage's output groups (corpusmill.pipelines.quality.output_group_fn)
    return doc.metadata["language"]


def _language_and_bucket(doc) -> str:
    return f"{doc.metadata['language']}_{doc.metadata['bucket']}"


def run_filter(cfg: FilterConfig, beam_args: Sequence[str] = ()) -> List[dict]:
    from corpusmill.engine.stage import run_build
    from corpusmill.io.files import expand_inputs

    scored = scored_config(cfg.input)
    cutoffs = _cutoffs_of(cfg, scored)
    if cutoffs and not os.path.isfile(cutoffs):
        raise CorpusmillError(f"--cutoffs {cutoffs}: no such file (the scored run's cutoffs moved? pass --cutoffs)")
    parse_buckets(cfg.keep_buckets)
    files = expand_inputs([cfg.input])

    def clear_work(out_dir: str) -> None:
        from corpusmill.core.files import join
        from corpusmill.pipelines.ccnet_units import _clear

        _clear(join(out_dir, *WORK))

    return run_build(cfg, beam_args, lambda p, run: build_filter(p, run, cfg, files, scored), before_done=clear_work)


STAGE = Stage(
    name="filter",
    config=FilterConfig,
    run=run_filter,
    show=show_documents,
    documents=True,
    description="Read the output of `corpusmill ccnet --score-only` (every document with its scores), apply "
    "--lang-threshold/--languages, the perplexity buckets of --cutoffs/--keep-buckets and "
    "--wiki-threshold from the stored scores, then keep one copy per URL and per text, and write "
    "OUT/<lang>[_<bucket>]/ plus _meta/stats.json: the documents of a full CCNet run with these thresholds, "
    "without extraction, line dedup or any model. Other options must be Beam pipeline options.",
)
