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
from typing import List, Sequence, Tuple

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.outputs import OutputOptions, show_documents
from corpusmill.core.stage import Stage
from corpusmill.core.steps import DOC, READ, Step
from corpusmill.filters.wikitext import (
    ParseWikiPage,
    WikitextToText,
)
from corpusmill.pipelines import listed

# The config and step list import no Beam (`--help`, `--steps` stay fast): readers and the runner are
# imported where the stage runs.


# ---------------------------------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(kw_only=True)
class WikipediaConfig(OutputOptions):
    input: List[str] = option(
        required=True,
        metavar="GLOB",
        help="dump files (.xml, .xml.bz2 incl. multistream, .xml.gz); globs or directories",
    )
    split_mb: float = option(64.0, above=0.0, help="target chunk size in MB of (compressed) input per worker task")
    namespaces: Tuple[int, ...] = option((0,), sep=",", metavar="N", help="namespaces to keep (0: the articles)")
    min_chars: int = option(1, min=0, help="drop articles with fewer characters of text left")

    def validate(self) -> None:
        pass


def steps(cfg: WikipediaConfig) -> List[Step]:
    """The stage's steps, in order."""
    return [
        Step("parse", READ, lambda: ParseWikiPage(cfg.namespaces), "a <page> -> its latest revision's wikitext"),
        Step("wikitext", DOC, lambda: WikitextToText(cfg.min_chars), "wikitext -> plain text (mwparserfromhell)"),
    ]


def build_wikipedia(p, run, cfg: WikipediaConfig, files: Sequence[str]) -> None:
    from corpusmill.engine.stage import apply_steps
    from corpusmill.io.mediawiki import ReadWikiPages

    pages = p | "ReadDumps" >> ReadWikiPages(files, int(cfg.split_mb * (1 << 20)))
    run.write(apply_steps(run, pages, steps(cfg)), group_fn=lambda d: d.metadata.get("language") or "unknown")


def check_dump_files(files: Sequence[str]) -> None:
    from corpusmill.io.mediawiki import SUFFIXES

    for f in files:
        if not f.lower().endswith(SUFFIXES) or f.lower().endswith(("-index.txt.bz2", ".txt.bz2")):
            raise CorpusmillError(
                f"input {f}: not a MediaWiki XML dump; the Wikipedia source reads "
                f"*.xml, *.xml.bz2 (also multistream) and *.xml.gz files"
            )


def run_wikipedia(cfg: WikipediaConfig, beam_args: Sequence[str] = ()) -> List[dict]:
    from corpusmill.engine.stage import run_build
    from corpusmill.io.files import expand_inputs

    cfg.validate()
    files = expand_inputs(cfg.input)
    check_dump_files(files)
    return run_build(cfg, beam_args, lambda p, run: build_wikipedia(p, run, cfg, files))


STAGE = Stage(
    name="wikipedia",
    config=WikipediaConfig,
    run=run_wikipedia,
    steps=listed(steps),
    show=show_documents,
    documents=True,
    description="Read MediaWiki XML dumps (.xml, .xml.bz2 incl. multistream, .xml.gz) in parallel, keep namespace-0 "
    "articles that are not redirects, turn wikitext into plain text (mwparserfromhell) and write "
    "OUT/<lang>/part-NNNNN.<ext> plus _meta/stats.json. Other options must be Beam pipeline options.",
)
