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
import os
from typing import List, Optional, Sequence

from corpusmill.core.errors import CorpusmillError
from corpusmill.engine.stage import (
    OutputOptions,
    add_output_options,
    format_stats,
    run_stage,
)
from corpusmill.filters.arxiv_archive import (
    ExtractPaper,
)
from corpusmill.filters.latex import CleanLatex
from corpusmill.io.papers import PaperRef, ReadPapers, list_papers


@dataclasses.dataclass
class ArxivConfig:
    inputs: List[str]
    output: str
    max_paper_mb: float = 64.0
    max_unpacked_mb: float = 256.0
    max_file_mb: float = 32.0
    max_macro_depth: int = 32
    max_macro_growth: float = 10.0
    out: Optional[OutputOptions] = None

    def validate(self) -> None:
        if min(self.max_paper_mb, self.max_unpacked_mb, self.max_file_mb) <= 0:
            raise CorpusmillError("--max-paper-mb, --max-unpacked-mb and --max-file-mb must be positive")
        if self.max_macro_depth < 1 or self.max_macro_growth < 1:
            raise CorpusmillError("--max-macro-depth must be >= 1 and --max-macro-growth >= 1")


def build_arxiv(p, run, cfg: ArxivConfig, refs: Sequence[PaperRef]) -> None:
    mb = 1 << 20
    records = p | "ReadArxiv" >> ReadPapers(refs, int(cfg.max_paper_mb * mb), int(cfg.max_file_mb * mb),
                                            int(cfg.max_unpacked_mb * mb))
    docs = run.step(records, "extract", ExtractPaper(int(cfg.max_unpacked_mb * mb), int(cfg.max_file_mb * mb)))
    docs = run.step(docs, "latex", CleanLatex(cfg.max_macro_depth, cfg.max_macro_growth))
    run.write(docs)


def run_arxiv(cfg: ArxivConfig, beam_args: Sequence[str] = ()) -> List[dict]:
    cfg.validate()
    refs = list_papers(cfg.inputs)
    if not refs:
        raise CorpusmillError(f"--input {cfg.inputs}: no papers found (bulk .tar, paper .gz files or paper folders)")
    out = cfg.out or OutputOptions(cfg.output)
    return run_stage(out, beam_args, lambda p, run: build_arxiv(p, run, cfg, refs))


def register_source(sources) -> None:
    parser = sources.add_parser(
        "arxiv", help="arXiv LaTeX sources -> text (macros expanded, preamble/bibliography/comments removed)",
        description="Read arXiv sources (bulk .tar of per-paper .gz, per-paper .gz/.tar.gz files, or a "
                    "directory of paper folders), unpack them safely, find the main .tex, inline \\input, remove "
                    "comments, expand user macros, cut before the first section and from the bibliography/"
                    "appendix on, and write OUT/part-NNNNN.<ext> plus stats.json. Unrecognized options go to Beam.")
    parser.add_argument("--input", action="append", required=True, metavar="PATH",
                        help="bulk tar, paper file, glob or directory (repeat for more)")
    add_output_options(parser)
    parser.add_argument("--max-paper-mb", type=float, default=64.0, help="cap on a paper's .gz (default: 64)")
    parser.add_argument("--max-unpacked-mb", type=float, default=256.0,
                        help="cap on a paper's unpacked size (default: 256)")
    parser.add_argument("--max-file-mb", type=float, default=32.0, help="cap on one file of a paper (default: 32)")
    parser.add_argument("--max-macro-depth", type=int, default=32,
                        help="macro expansion nesting limit; deeper fails the paper (default: 32)")
    parser.add_argument("--max-macro-growth", type=float, default=10.0,
                        help="expanded text may be this many times the input (+1 MB); more fails the paper "
                             "(default: 10)")
    parser.set_defaults(func=_main, accepts_beam_args=True)


def _main(args, beam_args) -> int:
    cfg = ArxivConfig(args.input, args.output, args.max_paper_mb, args.max_unpacked_mb, args.max_file_mb,
                      args.max_macro_depth, args.max_macro_growth, OutputOptions.from_args(args))
    print(format_stats(run_arxiv(cfg, beam_args)))
    print(f"documents: {os.path.abspath(args.output) if '://' not in args.output else args.output}")
    return 0
