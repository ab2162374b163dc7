"""``corpusmill source arxiv``: arXiv LaTeX sources -> LLaMA-cleaned paper text.

Inputs (``--input``, repeatable):

- a bulk tar as arXiv ships them (``arXiv_src_YYMM_NNN.tar``: one ``.gz`` per paper);
- a paper file: ``<id>.gz`` (gzipped tar or gzipped ``.tex``), ``.tar.gz``/``.tgz``, or a bare ``.tex``;
- a directory: each sub-directory is one paper (its files), each paper file in it is one paper.

Reading follows the WARC pattern: ``Scan`` lists the papers (for a bulk tar: each member's name, type,
data offset and size, read from the tar headers without reading the data), a Reshuffle spreads them, and
``ReadPapers`` reads each paper's bytes where it lands, never more than ``--max-paper-mb`` (a bigger
member is dropped from its declared size, unread). Links and special members of the bulk tar, and member
names that leave it, are rejected there. Steps ``extract``
(:class:`~corpusmill.filters.arxiv_archive.ExtractPaper`: safe unpacking, main file, comments, inputs)
and ``latex`` (:class:`~corpusmill.filters.latex.CleanLatex`: macros, LLaMA's cuts) follow.
"""

from __future__ import annotations

import dataclasses
from typing import List, Sequence

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.outputs import OutputOptions, show_documents
from corpusmill.core.stage import Stage
from corpusmill.core.steps import DOC, READ, Step
from corpusmill.filters.arxiv_archive import (
    ExtractPaper,
)
from corpusmill.filters.latex import CleanLatex
from corpusmill.pipelines import listed

# The config and step list import no Beam (`--help`, `--steps` stay fast): readers and the runner are
# imported where the stage runs.


@dataclasses.dataclass(kw_only=True)
class ArxivConfig(OutputOptions):
    input: List[str] = option(
        required=True,
        metavar="PATH",
        help="bulk .tar files, per-paper .gz/.tar.gz/.tex files, or directories of paper folders",
    )
    max_paper_mb: float = option(64.0, above=0.0, help="cap on a paper's .gz")
    max_unpacked_mb: float = option(256.0, above=0.0, help="cap on a paper's unpacked size")
    max_file_mb: float = option(32.0, above=0.0, help="cap on one file of a paper")
    max_macro_depth: int = option(32, min=1, help="macro expansion depth before a paper is refused")
    max_macro_growth: float = option(10.0, min=1.0, help="expanded text may grow this many times its source")


def steps(cfg: ArxivConfig) -> List[Step]:
    """The stage's steps, in order."""
    mb = 1 << 20
    return [
        Step(
            "extract",
            READ,
            lambda: ExtractPaper(int(cfg.max_unpacked_mb * mb), int(cfg.max_file_mb * mb)),
            "a paper (archive, folder or .tex) -> its main file with its inputs inlined",
        ),
        Step(
            "latex",
            DOC,
            lambda: CleanLatex(cfg.max_macro_depth, cfg.max_macro_growth),
            "macros expanded; preamble, bibliography and comments removed",
        ),
    ]


def build_arxiv(p, run, cfg: ArxivConfig, refs: Sequence) -> None:  # refs: corpusmill.io.papers.PaperRef
    from corpusmill.engine.stage import apply_steps
    from corpusmill.io.papers import ReadPapers

    mb = 1 << 20
    records = p | "ReadArxiv" >> ReadPapers(
        refs, int(cfg.max_paper_mb * mb), int(cfg.max_file_mb * mb), int(cfg.max_unpacked_mb * mb)
    )
    run.write(apply_steps(run, records, steps(cfg)))


def run_arxiv(cfg: ArxivConfig, beam_args: Sequence[str] = ()) -> List[dict]:
    from corpusmill.engine.stage import run_build
    from corpusmill.io.papers import list_papers

    refs = list_papers(cfg.input)
    if not refs:
        raise CorpusmillError(f"--input {cfg.input}: no papers found (bulk .tar, paper .gz files or paper folders)")
    return run_build(cfg, beam_args, lambda p, run: build_arxiv(p, run, cfg, refs))


STAGE = Stage(
    name="arxiv",
    config=ArxivConfig,
    run=run_arxiv,
    steps=listed(steps),
    show=show_documents,
    documents=True,
    description="Read arXiv sources (bulk .tar of per-paper .gz, per-paper .gz/.tar.gz files, or a directory of "
    "paper folders), unpack them safely, find the main .tex, inline \\input, remove comments, expand "
    "user macros, cut before the first section and from the bibliography/appendix on, and write "
    "OUT/part-NNNNN.<ext> plus _meta/stats.json. Other options must be Beam pipeline options.",
)
