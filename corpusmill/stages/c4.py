"""The C4 source: ``corpusmill source c4 --from crawl|released --input ... --output DIR``.

``--from crawl`` (WARC / WET in, the T5 builder's recipe)::

    extract -> url_dedup -> clean_page -> span_dedup -> lid -> badwords -> write

- ``extract``: the CCNet stage's WARC reader (record offsets, main text; WET text as is);
- ``url_dedup``: one page per normalized URL, the newest (WARC-Date), ties by document id; a shuffle
  on the normalized URL (no worker holds every URL);
- ``clean_page``: the builder's line and page rules (corpusmill.filters.c4.CleanPage);
- ``span_dedup``: every 3-sentence span seen twice in the corpus keeps its first occurrence (by
  document id); a shuffle on span hashes, then a join back to the documents by id;
- ``lid``: English, lid.176 score >= 0.9 (the builder used langdetect >= 0.99; lid.176.ftz scores
  clean English documentation pages 0.80-0.98, so 0.99 would drop nearly all of them);
- ``badwords``: pages with a word of the LDNOOBW English list are dropped.

``--from released`` (released C4 JSON lines in, LLaMA's extra heuristics)::

    read -> terminal_punct -> word_count -> sentence_count -> write
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import List, Optional, Sequence

import apache_beam as beam

from corpusmill.core.errors import CorpusmillError
from corpusmill.dedup.exact import DropDuplicates
from corpusmill.dedup.spans import RemoveDuplicateSpans, span_occurrences
from corpusmill.engine.line_dedup import FindDuplicateLines
from corpusmill.engine.run import Run
from corpusmill.engine.stage import (
    OutputOptions,
    add_output_options,
    format_stats,
    run_stage,
)
from corpusmill.filters import c4 as rules
from corpusmill.filters.lid import LanguageId, default_lid_model, load_fasttext
from corpusmill.io.documents import ReadRawRecords
from corpusmill.io.files import expand_inputs
from corpusmill.io.warc import ExtractWarcRecord, ReadWarcRecords
from corpusmill.stages.ccnet import WARC_SUFFIXES

MODES = ("crawl", "released")
RELEASED_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz")


@dataclasses.dataclass
class C4Config:
    inputs: List[str]
    output: str
    mode: str = "crawl"
    out: Optional[OutputOptions] = None
    # --from crawl: the builder's rules
    min_words_per_line: int = 5
    min_sentences: int = 3
    max_word_length: int = 1000
    max_page_chars: int = rules.MAX_PAGE_CHARS
    span_sentences: int = 3
    badwords: Optional[str] = None  # None: the packaged LDNOOBW English list; "none": no bad-words step
    lid: bool = True
    lid_model: Optional[str] = None
    lang_threshold: float = 0.9
    languages: Optional[List[str]] = dataclasses.field(default_factory=lambda: ["en"])
    max_page_bytes: int = 5 << 20
    # --from released: LLaMA's heuristics (min_sentences is shared)
    min_punct_share: float = 0.5
    min_words: int = 50
    max_words: int = 100_000

    def validate(self) -> None:
        if self.mode not in MODES:
            raise CorpusmillError(f"--from {self.mode!r}: use one of {', '.join(MODES)}")
        if not 0.0 <= self.min_punct_share <= 1.0:
            raise CorpusmillError(f"--min-punct-share {self.min_punct_share}: must be between 0 and 1")
        if not 0.0 <= self.lang_threshold <= 1.0:
            raise CorpusmillError(f"--lang-threshold {self.lang_threshold}: must be between 0 and 1")
        if self.span_sentences < 1:
            raise CorpusmillError("--span-sentences must be at least 1")
        if min(self.min_words_per_line, self.min_sentences, self.min_words) < 0:
            raise CorpusmillError("--min-words-per-line, --min-sentences and --min-words must be 0 or more")
        if self.mode == "crawl":
            if self.badwords_path is not None:
                rules.load_badwords(self.badwords_path)  # a missing or empty list fails before any work
            if self.lid:
                load_fasttext(self.lid_model or default_lid_model())

    @property
    def badwords_path(self) -> Optional[str]:
        if self.badwords is not None and self.badwords.lower() == "none":
            return None
        return self.badwords or rules.default_badwords_path()


def check_inputs(files: Sequence[str], mode: str) -> None:
    suffixes = WARC_SUFFIXES if mode == "crawl" else RELEASED_SUFFIXES
    for f in files:
        if not f.lower().endswith(suffixes):
            what = "WARC/WET files" if mode == "crawl" else "released C4 JSON lines"
            raise CorpusmillError(f"input {f}: --from {mode} reads {what} ({', '.join(suffixes)}); "
                                  f"use --from {'released' if mode == 'crawl' else 'crawl'} for the other kind")


def build_c4_crawl(p: beam.Pipeline, run: Run, cfg: C4Config, files: Sequence[str]) -> None:
    refs = p | "ReadWarc" >> ReadWarcRecords(files)
    docs = run.step(refs, "extract", ExtractWarcRecord(rules.SOURCE, cfg.max_page_bytes))
    marked = docs | "FindOlderPages" >> FindDuplicateLines("newest", rules.url_occurrence, rules.older_pages)
    docs = run.step(marked, "url_dedup", DropDuplicates("url_dedup", "older_page_same_url"))
    docs = run.step(docs, "clean_page", rules.CleanPage(cfg.min_words_per_line, cfg.min_sentences,
                                                        cfg.max_word_length, cfg.max_page_chars))
    spans = functools.partial(span_occurrences, n=cfg.span_sentences)
    marked = docs | "FindDuplicateSpans" >> FindDuplicateLines("first", spans)
    docs = run.step(marked, "span_dedup", RemoveDuplicateSpans(cfg.span_sentences, cfg.min_sentences))
    if cfg.lid:
        docs = run.step(docs, "lid", LanguageId(cfg.lid_model, cfg.lang_threshold, cfg.languages))
    if cfg.badwords_path is not None:
        docs = run.step(docs, "badwords", rules.BadWords(cfg.badwords_path))
    run.write(docs)


def build_c4_released(p: beam.Pipeline, run: Run, cfg: C4Config, files: Sequence[str]) -> None:
    raw = p | "ReadC4" >> ReadRawRecords(files)
    docs = run.step(raw, "read", rules.ParseC4Json())
    docs = run.step(docs, "terminal_punct", rules.TerminalPunctShare(cfg.min_punct_share))
    docs = run.step(docs, "word_count", rules.WordCount(cfg.min_words, cfg.max_words))
    docs = run.step(docs, "sentence_count", rules.SentenceCount(cfg.min_sentences))
    run.write(docs)


def run_c4(cfg: C4Config, beam_args: Sequence[str] = ()) -> List[dict]:
    """Run the C4 source to completion; returns stats.json's content."""
    cfg.validate()
    files = expand_inputs(cfg.inputs)
    check_inputs(files, cfg.mode)
    build = build_c4_crawl if cfg.mode == "crawl" else build_c4_released
    out = cfg.out or OutputOptions(cfg.output)
    return run_stage(out, beam_args, lambda p, run: build(p, run, cfg, files))


# -- CLI ---------------------------------------------------------------------------------------------
def register_source(sources) -> None:
    parser = sources.add_parser(
        "c4", help="C4: the T5 builder's recipe on WARC/WET (--from crawl) or LLaMA's heuristics on released C4",
        description="--from crawl: read WARC/WET, keep the newest page per normalized URL, apply the C4 "
                    "builder's line/page rules, remove repeated 3-sentence spans across the corpus, keep "
                    "English (lid.176 >= 0.9) and drop pages with bad words. --from released: read released "
                    "C4 JSON lines and apply LLaMA's punctuation, word and sentence heuristics. Writes "
                    "OUT/part-NNNNN.<ext> plus stats.json. Unrecognized options go to Beam.")
    parser.add_argument("--from", dest="mode", choices=MODES, required=True,
                        help="crawl: WARC/WET files; released: C4 JSON(.gz) lines {text, url, timestamp}")
    parser.add_argument("--input", action="append", required=True, metavar="GLOB",
                        help="input files, a glob or directory; repeat for more")
    add_output_options(parser)
    crawl = parser.add_argument_group("--from crawl (the C4 builder)")
    crawl.add_argument("--min-words-per-line", type=int, default=5, help="(default: 5)")
    crawl.add_argument("--max-word-length", type=int, default=1000,
                       help="lines with a longer word are removed (default: 1000)")
    crawl.add_argument("--max-page-chars", type=int, default=rules.MAX_PAGE_CHARS,
                       help=f"longer pages are dropped as too_long (default: {rules.MAX_PAGE_CHARS})")
    crawl.add_argument("--span-sentences", type=int, default=3,
                       help="sentences per span in the corpus-wide span dedup (default: 3)")
    crawl.add_argument("--badwords", default=None, metavar="PATH|none",
                       help="bad-words list, one per line (default: the packaged LDNOOBW English list, "
                            "CC-BY-4.0); 'none' skips the step")
    crawl.add_argument("--no-lid", dest="lid", action="store_false", help="skip language identification")
    crawl.add_argument("--lid-model", default=None, metavar="PATH",
                       help="fastText language-ID model (default: the packaged lid.176.ftz)")
    crawl.add_argument("--lang-threshold", type=float, default=0.9,
                       help="minimum lid.176 score (default: 0.9; C4 used langdetect >= 0.99, see docs/sources.md)")
    crawl.add_argument("--languages", default="en", metavar="xx,yy", help="languages kept (default: en)")
    crawl.add_argument("--max-page-bytes", type=int, default=5 << 20,
                       help="HTTP payloads over this are dropped as too_large (default: 5 MiB)")
    released = parser.add_argument_group("--from released (LLaMA's heuristics)")
    released.add_argument("--min-punct-share", type=float, default=0.5,
                          help="minimum share of lines ending in terminal punctuation (default: 0.5)")
    released.add_argument("--min-words", type=int, default=50, help="(default: 50)")
    released.add_argument("--max-words", type=int, default=100_000, help="0 for no maximum (default: 100000)")
    parser.add_argument("--min-sentences", type=int, default=3,
                        help="minimum sentences per page, both modes (default: 3)")
    parser.set_defaults(func=_main, accepts_beam_args=True)


def _main(args, beam_args) -> int:
    cfg = C4Config(
        inputs=args.input, output=args.output, mode=args.mode, out=OutputOptions.from_args(args),
        min_words_per_line=args.min_words_per_line, min_sentences=args.min_sentences,
        max_word_length=args.max_word_length, max_page_chars=args.max_page_chars,
        span_sentences=args.span_sentences, badwords=args.badwords, lid=args.lid, lid_model=args.lid_model,
        lang_threshold=args.lang_threshold,
        languages=[x.strip() for x in args.languages.split(",") if x.strip()] or None,
        max_page_bytes=args.max_page_bytes, min_punct_share=args.min_punct_share, min_words=args.min_words,
        max_words=args.max_words)
    print(format_stats(run_c4(cfg, beam_args)))
    print(f"documents: {os.path.abspath(args.output) if '://' not in args.output else args.output}")
    return 0
