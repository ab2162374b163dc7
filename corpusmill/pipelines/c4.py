"""The C4 source: ``corpusmill source c4 --from crawl|released --input ... --output DIR``.

``--from crawl`` (WARC / WET in, the T5 builder's recipe)::

    extract -> url_dedup -> clean_page -> span_dedup -> lid -> badwords -> write

- ``extract``: the CCNet stage's WARC reader (record offsets, main text; WET text as is);
- ``url_dedup``: one page per normalized URL, the newest (WARC-Date), ties by document id; a shuffle
  on the normalized URL (no worker holds every URL);
- ``clean_page``: the builder's line and page rules (corpusmill.filters.c4.CleanPage);
- ``span_dedup``: every 3-sentence span seen twice in the corpus keeps its first occurrence (by
  document id); a shuffle on span hashes, then a join back to the documents by id;
- ``lid``: English with langdetect's probability >= 0.99, the builder's rule (seeded, so reruns agree);
  ``--lid-with lid176`` uses fastText's lid.176 at 0.65, which kept the same pages on the measured set
  (bench/c4_lid.py; at 0.9 it lost 22% of the builder's English pages);
- ``badwords``: pages with a word of the LDNOOBW English list are dropped.

``--from released`` (released C4 JSON lines in: passed through as released, as RedPajama did; with
``--heuristics``, LLaMA-style extra rules whose thresholds are ours)::

    read [-> terminal_punct -> word_count -> sentence_count] -> write
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, List, Optional, Sequence

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.outputs import OutputOptions, show_documents
from corpusmill.core.stage import Stage
from corpusmill.core.steps import CONTENT, DOC, READ, URL, Step
from corpusmill.dedup.exact import DropDuplicates
from corpusmill.dedup.spans import RemoveDuplicateSpans, span_occurrences
from corpusmill.filters import c4 as rules
from corpusmill.filters.lid import LangdetectId, LanguageId, default_lid_model, load_fasttext
from corpusmill.pipelines import lazy, listed

if TYPE_CHECKING:  # annotations only
    import apache_beam as beam

    from corpusmill.engine.run import Run

MODES = ("crawl", "released")
LID_TOOLS = ("langdetect", "lid176")
LID_DEFAULT_THRESHOLD = {"langdetect": 0.99, "lid176": 0.65}  # the builder's; the measured match (docs/sources.md)
RELEASED_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz")


@dataclasses.dataclass(kw_only=True)
class C4Config(OutputOptions):
    mode: str = option(
        required=True,
        choices=MODES,
        aliases=("--from",),
        help="crawl: WARC/WET files (the C4 builder); released: C4 JSON(.gz) lines {text, url, timestamp}",
    )
    input: List[str] = option(required=True, metavar="GLOB", help="input files, globs or directories")
    # mode crawl: the builder's rules
    min_words_per_line: int = option(5, min=0, help="crawl: lines with fewer words are removed")
    min_sentences: int = option(3, min=0, help="minimum sentences per page, both modes")
    max_word_length: int = option(1000, min=1, help="crawl: lines with a longer word are removed")
    max_page_chars: int = option(rules.MAX_PAGE_CHARS, min=1, help="crawl: longer pages are dropped as too_long")
    span_sentences: int = option(3, min=1, help="crawl: sentences per span in the corpus-wide span dedup")
    badwords: Optional[str] = option(
        None,
        metavar="PATH|none",
        help="crawl: bad-words list, one per line (default: the packaged LDNOOBW English "
        "list, CC-BY-4.0); 'none' skips the step",
    )
    lid: bool = option(True, help="crawl: language identification (--no-lid skips it)")
    lid_with: str = option(
        "langdetect",
        choices=LID_TOOLS,
        help="crawl: langdetect (the builder's, seeded) or lid176 (fastText lid.176, 25x faster; "
        "the same pages at 0.65 in docs/sources.md)",
    )
    lid_model: Optional[str] = option(
        None,
        metavar="PATH",
        help="crawl, --lid-with lid176: fastText language-ID model (default: the packaged lid.176.ftz)",
    )
    lang_threshold: Optional[float] = option(
        None,
        min=0.0,
        max=1.0,
        help="crawl: minimum language probability (default: 0.99 with langdetect, the builder's; 0.65 with lid176)",
    )
    languages: Optional[List[str]] = option(["en"], sep=",", metavar="LANG", help="crawl: languages kept")
    max_page_bytes: int = option(5 << 20, min=1, help="crawl: HTTP payloads over this are dropped as too_large")
    # mode released: passed through as released (RedPajama), or LLaMA's heuristics (min_sentences is shared)
    heuristics: bool = option(
        False,
        help="released: apply the LLaMA-style heuristics below (default: the pages as "
        "released, as RedPajama used them)",
    )
    min_punct_share: float = option(
        0.5, min=0.0, max=1.0, help="released: minimum share of lines ending in terminal punctuation"
    )
    min_words: int = option(50, min=0, help="released: minimum words per page")
    max_words: int = option(100_000, min=0, help="released: maximum words per page (0: no maximum)")

    def validate(self) -> None:
        if self.mode == "released" and not self.heuristics:
            defaults = {f.name: f.default for f in dataclasses.fields(self)}
            for name in ("min_punct_share", "min_words", "max_words"):
                if getattr(self, name) != defaults[name]:
                    raise CorpusmillError(
                        f"--{name.replace('_', '-')} applies only with --heuristics (without it, "
                        f"--from released passes the pages through as released)"
                    )
        if self.mode == "crawl":
            if self.badwords_path is not None:
                rules.load_badwords(self.badwords_path)  # a missing or empty list fails before any work
            if self.lid and self.lid_with == "lid176":
                load_fasttext(self.lid_model or default_lid_model())
            elif self.lid and self.lid_model is not None:
                raise CorpusmillError("--lid-model is a fastText model: it needs --lid-with lid176")
            if self.lang_threshold is None:  # the effective config (provenance) names the threshold used
                self.lang_threshold = LID_DEFAULT_THRESHOLD[self.lid_with]

    @property
    def threshold(self) -> float:
        if self.lang_threshold is not None:
            return self.lang_threshold
        return LID_DEFAULT_THRESHOLD[self.lid_with]

    @property
    def badwords_path(self) -> Optional[str]:
        if self.badwords is not None and self.badwords.lower() == "none":
            return None
        return self.badwords or rules.default_badwords_path()


def check_inputs(files: Sequence[str], mode: str) -> None:
    from corpusmill.pipelines.ccnet import WARC_SUFFIXES

    suffixes = WARC_SUFFIXES if mode == "crawl" else RELEASED_SUFFIXES
    for f in files:
        if not f.lower().endswith(suffixes):
            what = "WARC/WET files" if mode == "crawl" else "released C4 JSON lines"
            raise CorpusmillError(
                f"input {f}: --from {mode} reads {what} ({', '.join(suffixes)}); "
                f"use --from {'released' if mode == 'crawl' else 'crawl'} for the other kind"
            )


def steps(cfg: C4Config) -> List[Step]:
    """The stage's steps, in order, for ``--mode crawl`` (the TFDS builder's) or ``released``."""
    if cfg.mode != "crawl":
        out = [Step("read", READ, rules.ParseC4Json, "a released C4 JSON line -> a document")]
        if cfg.heuristics:  # else the pages as released, as RedPajama used them
            out += [
                Step(
                    "terminal_punct",
                    DOC,
                    lambda: rules.TerminalPunctShare(cfg.min_punct_share),
                    "lines ending a sentence",
                ),
                Step("word_count", DOC, lambda: rules.WordCount(cfg.min_words, cfg.max_words), "words in a page"),
                Step("sentence_count", DOC, lambda: rules.SentenceCount(cfg.min_sentences), "sentences in a page"),
            ]
        return out
    spans = functools.partial(span_occurrences, n=cfg.span_sentences)
    out = [
        Step(
            "extract",
            READ,
            lambda: lazy("corpusmill.io.warc", "ExtractWarcRecord")(rules.SOURCE, cfg.max_page_bytes),
            "WARC/WET -> page text",
        ),
        Step(
            "url_dedup",
            URL,
            lambda: DropDuplicates("url_dedup", "older_page_same_url"),
            "the newest page per URL",
            prepare=lambda: (
                "FindOlderPages",
                lazy("corpusmill.engine.line_dedup", "MarkDuplicates")(
                    rules.url_occurrence, keep=rules.newest_first, name_kept=True
                ),
            ),
        ),
        Step(
            "clean_page",
            DOC,
            lambda: rules.CleanPage(cfg.min_words_per_line, cfg.min_sentences, cfg.max_word_length, cfg.max_page_chars),
            "the C4 line and page rules",
        ),
        Step(
            "span_dedup",
            CONTENT,
            lambda: RemoveDuplicateSpans(cfg.span_sentences, cfg.min_sentences),
            "three-sentence spans seen before removed",
            prepare=lambda: (
                "FindDuplicateSpans",
                lazy("corpusmill.engine.line_dedup", "MarkDuplicates")(
                    spans, keep=lazy("corpusmill.engine.line_dedup", "by_value")
                ),
            ),
        ),
    ]
    if cfg.lid:
        make = (
            (lambda: LangdetectId(cfg.threshold, cfg.languages))
            if cfg.lid_with == "langdetect"
            else (lambda: LanguageId(cfg.lid_model, cfg.threshold, cfg.languages))
        )
        out.append(Step("lid", DOC, make, f"language ID ({cfg.lid_with})"))
    if cfg.badwords_path is not None:
        out.append(Step("badwords", DOC, lambda: rules.BadWords(cfg.badwords_path), "pages with a bad word dropped"))
    return out


def build_c4_crawl(p: beam.Pipeline, run: Run, cfg: C4Config, files: Sequence[str]) -> None:
    from corpusmill.engine.stage import apply_steps
    from corpusmill.io.warc import ReadWarcRecords

    run.write(apply_steps(run, p | "ReadWarc" >> ReadWarcRecords(files), steps(cfg)))


def build_c4_released(p: beam.Pipeline, run: Run, cfg: C4Config, files: Sequence[str]) -> None:
    from corpusmill.engine.stage import apply_steps
    from corpusmill.io.documents import ReadRawRecords

    run.write(apply_steps(run, p | "ReadC4" >> ReadRawRecords(files), steps(cfg)))


def run_c4(cfg: C4Config, beam_args: Sequence[str] = ()) -> List[dict]:
    """Run the C4 source to completion; returns stats.json's content."""
    from corpusmill.engine.stage import run_build
    from corpusmill.io.files import expand_inputs

    cfg.validate()
    files = expand_inputs(cfg.input)
    check_inputs(files, cfg.mode)
    build = build_c4_crawl if cfg.mode == "crawl" else build_c4_released
    return run_build(cfg, beam_args, lambda p, run: build(p, run, cfg, files))


STAGE = Stage(
    name="c4",
    config=C4Config,
    run=run_c4,
    steps=listed(steps),
    show=show_documents,
    documents=True,
    description="--mode crawl (or --from crawl): read WARC/WET, keep the newest page per normalized URL, apply the C4 "
    "builder's line/page rules, remove repeated 3-sentence spans across the corpus, keep English "
    "(langdetect >= 0.99, the builder's) and drop pages with bad words. --mode released: read released C4 "
    "JSON lines as they are (RedPajama), or with --heuristics apply LLaMA-style punctuation, word and "
    "sentence heuristics. Writes OUT/part-NNNNN.<ext> plus "
    "stats.json. Other options must be Beam pipeline options.",
)
