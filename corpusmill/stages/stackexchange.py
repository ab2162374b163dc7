"""The StackExchange source: ``corpusmill source stackexchange --input DUMP --output DIR``.

    read Posts.xml -> parse -> top_sites -> group by question -> format -> OUT/<site>/part-NNNNN

Reading the dump as published (one Posts.xml per site: plain, ``.bz2``, or inside the site's ``.7z``):
every file is streamed line by line (a Posts.xml has one ``<row .../>`` per line); a plain file is
split into byte ranges read by different workers, a compressed one is read by one worker as a stream
(``.7z`` members are streamed by py7zr into a bounded queue, never extracted to disk or memory). Each
row travels alone and is parsed alone by the ``parse`` step, with a hardened parser; a malformed row, a
DOCTYPE / ENTITY declaration or other stray content becomes a dead-letter record with its file and
position, and the rest of the file is read. Rows spread over several lines are joined (up to
``max_row_bytes``).

Sites are ranked by their number of question and answer posts (a count per site, combined across
workers) and the top N kept; questions and answers meet in a GroupByKey on (site, question id), so no
worker holds more than one thread.
"""

from __future__ import annotations

import dataclasses
import os
from typing import List, Optional, Sequence, Tuple

import apache_beam as beam

from corpusmill.core.errors import CorpusmillError
from corpusmill.engine.run import Run
from corpusmill.engine.stage import (
    OutputOptions,
    add_output_options,
    format_stats,
    run_stage,
)
from corpusmill.filters import stackexchange as se
from corpusmill.io.files import expand_inputs
from corpusmill.io.posts import MAX_ROW_BYTES, ReadPostsXml, select_posts_files


# -- the stage ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class StackExchangeConfig:
    inputs: List[str]
    output: str
    out: Optional[OutputOptions] = None
    top_sites: int = 28
    sites: Optional[List[str]] = None
    text_format: str = "qa"
    min_answers: int = 0
    split_mb: float = 64.0
    max_row_bytes: int = MAX_ROW_BYTES

    def validate(self) -> None:
        if self.top_sites < 1:
            raise CorpusmillError("--top-sites must be at least 1")
        if self.text_format not in se.FORMATS:
            raise CorpusmillError(f"--text-format {self.text_format!r}: use one of {', '.join(se.FORMATS)}")
        if self.min_answers < 0:
            raise CorpusmillError("--min-answers must be 0 or more")
        if self.split_mb <= 0:
            raise CorpusmillError("--split-mb must be positive")


def build_stackexchange(p: beam.Pipeline, run: Run, cfg: StackExchangeConfig,
                        files: Sequence[Tuple[str, str, str]]) -> None:
    lines = p | "ReadPosts" >> ReadPostsXml(files, int(cfg.split_mb * (1 << 20)), cfg.max_row_bytes)
    posts = run.step(lines, "parse", se.ParsePostRow())
    top, only = cfg.top_sites, list(cfg.sites) if cfg.sites else None
    ranks = (
        posts
        | "SiteOfPost" >> beam.Map(lambda d: d.metadata["site"])
        | "PostsPerSite" >> beam.combiners.Count.PerElement()
        | "AllSites" >> beam.combiners.ToList()
        | "RankSites" >> beam.Map(se.rank_sites, top, only)
    )
    ranked = posts | "AttachRank" >> beam.Map(lambda d, r: (d, r.get(d.metadata["site"])),
                                              r=beam.pvalue.AsSingleton(ranks))
    posts = run.step(ranked, "top_sites", se.KeepTopSites())
    threads = (
        posts
        | "KeyByQuestion" >> beam.Map(lambda d: (se.question_key(d), d))
        | "GroupThreads" >> beam.GroupByKey()
        | "Thread" >> beam.MapTuple(lambda key, group: se.Thread(key, list(group)))
    )
    docs = run.step(threads, "format", se.FormatThread(cfg.text_format, cfg.min_answers))
    run.write(docs, group_fn=lambda d: d.metadata["site"])


def run_stackexchange(cfg: StackExchangeConfig, beam_args: Sequence[str] = ()) -> List[dict]:
    """Run the StackExchange source to completion; returns stats.json's content."""
    cfg.validate()
    files = select_posts_files(expand_inputs(cfg.inputs))
    out = cfg.out or OutputOptions(cfg.output)
    return run_stage(out, beam_args, lambda p, run: build_stackexchange(p, run, cfg, files))


# -- CLI ---------------------------------------------------------------------------------------------
def register_source(sources) -> None:
    parser = sources.add_parser(
        "stackexchange", help="StackExchange dump: top sites by posts, Q&A threads, answers by score",
        description="Read a StackExchange data dump (per-site Posts.xml, Posts.xml.bz2 or the .7z archives), "
                    "keep the N sites with the most posts, group answers under their questions, turn post HTML "
                    "into text (code blocks and lists kept), sort answers by score (highest first) and write "
                    "OUT/<site>/part-NNNNN.<ext> plus stats.json. Unrecognized options go to Beam.")
    parser.add_argument("--input", action="append", required=True, metavar="PATH",
                        help="dump files or directories (other tables such as Users.xml are skipped); repeatable")
    add_output_options(parser)
    parser.add_argument("--top-sites", type=int, default=28, help="keep the N sites with most posts (default: 28)")
    parser.add_argument("--sites", default=None, metavar="A,B",
                        help="keep exactly these sites instead of the top N")
    parser.add_argument("--text-format", choices=se.FORMATS, default="qa",
                        help="qa: 'Q: title' + body, then 'A: ...' blocks separated by blank lines; "
                             "redpajama: 'Q: title body\\nA: ...' (default: qa)")
    parser.add_argument("--min-answers", type=int, default=0, help="drop questions with fewer answers (default: 0)")
    parser.add_argument("--split-mb", type=float, default=64.0,
                        help="plain Posts.xml files are read in chunks of this many MB in parallel (default: 64)")
    parser.set_defaults(func=_main, accepts_beam_args=True)


def _main(args, beam_args) -> int:
    cfg = StackExchangeConfig(
        inputs=args.input, output=args.output, out=OutputOptions.from_args(args), top_sites=args.top_sites,
        sites=[s.strip() for s in args.sites.split(",") if s.strip()] if args.sites else None,
        text_format=args.text_format, min_answers=args.min_answers, split_mb=args.split_mb)
    print(format_stats(run_stackexchange(cfg, beam_args)))
    print(f"documents: {os.path.abspath(args.output) if '://' not in args.output else args.output}")
    return 0
