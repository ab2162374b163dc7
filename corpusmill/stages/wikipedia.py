"""``corpusmill source wikipedia``: MediaWiki XML dumps -> plain-text articles.

Reading follows the WARC pattern (a cheap scan emits small references, a Reshuffle spreads them, and
the work happens where they land):

1. ``Scan`` (one task per file): reads the dump's header (``<siteinfo>``: dbname, ``xml:lang``, base URL,
   the local names of the File and Category namespaces, the declared encoding) and cuts the file into
   :class:`ChunkRef` ranges: a plain ``.xml`` by byte range (``--split-mb``), a ``.bz2`` at bz2 stream
   boundaries (found by scanning for the stream magic, so a ``*-multistream.xml.bz2`` dump is split into
   groups of streams; a single-stream ``.bz2`` or a ``.gz`` is one chunk, read sequentially).
2. ``SpreadChunks``: Reshuffle.
3. ``ReadPages``: each chunk is decompressed as a stream and cut at ``<page>``/``</page>``: a chunk owns
   the pages whose ``<page>`` tag starts inside it (a page that crosses the end is read to its end), so no
   page is lost or read twice. Only one page is buffered at a time. A corrupt or truncated region becomes
   an error :class:`PageRecord` naming the file and offset; the rest of the run goes on.
4. Steps ``parse`` (hardened XML, namespace 0, no redirects) and ``wikitext`` (mwparserfromhell) from
   :mod:`corpusmill.filters.wikitext`; documents are written per language (``OUT/<lang>/part-*``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import List, Optional, Sequence, Tuple

from corpusmill.core.errors import CorpusmillError
from corpusmill.engine.stage import (
    OutputOptions,
    add_output_options,
    format_stats,
    run_stage,
)
from corpusmill.filters.wikitext import (
    ParseWikiPage,
    WikitextToText,
)
from corpusmill.io.files import expand_inputs
from corpusmill.io.mediawiki import SUFFIXES, ReadWikiPages


# ---------------------------------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class WikipediaConfig:
    inputs: List[str]
    output: str
    split_mb: float = 64.0
    namespaces: Tuple[int, ...] = (0,)
    min_chars: int = 1
    out: Optional[OutputOptions] = None

    def validate(self) -> None:
        if self.split_mb <= 0:
            raise CorpusmillError("--split-mb must be positive")


def build_wikipedia(p, run, cfg: WikipediaConfig, files: Sequence[str]) -> None:
    pages = p | "ReadDumps" >> ReadWikiPages(files, int(cfg.split_mb * (1 << 20)))
    docs = run.step(pages, "parse", ParseWikiPage(cfg.namespaces))
    docs = run.step(docs, "wikitext", WikitextToText(cfg.min_chars))
    run.write(docs, group_fn=lambda d: d.metadata.get("language") or "unknown")


def check_dump_files(files: Sequence[str]) -> None:
    for f in files:
        if not f.lower().endswith(SUFFIXES) or f.lower().endswith(("-index.txt.bz2", ".txt.bz2")):
            raise CorpusmillError(f"input {f}: not a MediaWiki XML dump; the Wikipedia source reads "
                                  f"*.xml, *.xml.bz2 (also multistream) and *.xml.gz files")


def run_wikipedia(cfg: WikipediaConfig, beam_args: Sequence[str] = ()) -> List[dict]:
    cfg.validate()
    files = expand_inputs(cfg.inputs)
    check_dump_files(files)
    out = cfg.out or OutputOptions(cfg.output)
    return run_stage(out, beam_args, lambda p, run: build_wikipedia(p, run, cfg, files))


def register_source(sources) -> None:
    parser = sources.add_parser(
        "wikipedia", help="MediaWiki XML dumps -> plain-text articles (namespace 0, no redirects)",
        description="Read MediaWiki XML dumps (.xml, .xml.bz2 incl. multistream, .xml.gz) in parallel, keep "
                    "namespace-0 articles that are not redirects, turn wikitext into plain text "
                    "(mwparserfromhell) and write OUT/<lang>/part-NNNNN.<ext> plus stats.json. "
                    "Unrecognized options go to Beam.")
    parser.add_argument("--input", action="append", required=True, metavar="GLOB",
                        help="dump files (a glob or directory; repeat for more)")
    add_output_options(parser)
    parser.add_argument("--split-mb", type=float, default=64.0,
                        help="target chunk size in MB of (compressed) input per worker task (default: 64)")
    parser.add_argument("--namespaces", default="0", metavar="N,M",
                        help="namespaces to keep (default: 0, the articles)")
    parser.add_argument("--min-chars", type=int, default=1,
                        help="drop articles with fewer characters of text left (default: 1)")
    parser.set_defaults(func=_main, accepts_beam_args=True)


def _main(args, beam_args) -> int:
    try:
        namespaces = tuple(int(x) for x in args.namespaces.split(",") if x.strip())
    except ValueError:
        raise CorpusmillError(f"--namespaces {args.namespaces!r}: give numbers, e.g. 0 or 0,14") from None
    cfg = WikipediaConfig(args.input, args.output, args.split_mb, namespaces, args.min_chars,
                          OutputOptions.from_args(args))
    print(format_stats(run_wikipedia(cfg, beam_args)))
    print(f"documents: {os.path.abspath(args.output) if '://' not in args.output else args.output}")
    return 0
