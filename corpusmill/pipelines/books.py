"""``corpusmill source books``: Gutenberg / Books3 books -> header-stripped, deduplicated books.

Steps: ``read`` (:class:`~corpusmill.filters.gutenberg.ReadBook`) -> ``gutenberg`` (strip PG header and
footer) -> ``exact_dedup`` (content hash) -> ``near_dedup`` (MinHash LSH candidates, exact overlap) ->
``OUT/part-*``.

Inputs: text files (``.txt``, ``.txt.gz``, ``.txt.bz2``: one book each) and JSONL (``.jsonl``,
``.jsonl.gz``, ``.json``: one book per line, Gutenberg- or Books3-style). Files are listed, reshuffled and
read where they land; a text file over ``--max-book-mb`` is dropped from its size without being read, a
JSONL line is read with the same cap (a longer line is skipped to its end, never held in memory).

Dedup on Beam (no worker holds every hash or signature):

- exact: the shared exact dedup (corpusmill.engine.line_dedup.MarkDuplicates on the content hash, as
  GitHub's): all but the smallest id are dropped (``exact_duplicate_book``, naming ``duplicate_of``);
- near: each book's shingle hashes and MinHash signature are computed once; ``(band key, id)`` ->
  GroupByKey -> candidate pairs (distinct); each pair is sent to both members, CoGroupByKey with the
  books' shingle sets by id, then GroupByKey on the pair brings the two sets together and the exact
  overlap is computed; pairs at or above ``--overlap`` give ``(larger id, (smaller id, overlap))``,
  grouped per id and joined back to the books (``near_duplicate_book``, see
  :mod:`corpusmill.dedup.minhash` for the rule on chains).
"""

from __future__ import annotations

import dataclasses
from typing import List, Sequence

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.outputs import OutputOptions, show_documents
from corpusmill.core.stage import Stage
from corpusmill.core.steps import CONTENT, DOC, NEAR, READ, Step
from corpusmill.dedup import minhash
from corpusmill.dedup.exact import DropDuplicates, content_occurrence
from corpusmill.filters.gutenberg import ReadBook, StripGutenberg
from corpusmill.pipelines import listed

# The config and step list import no Beam (`--help`, `--steps` stay fast): the dedup transforms, readers
# and the runner are imported where a step is made or the stage runs.


@dataclasses.dataclass(frozen=True)
class NearDupParams:
    shingle: int = 5
    num_perm: int = 128
    lsh_threshold: float = 0.5
    overlap: float = 0.9
    max_bucket: int = 1000
    seed: int = 1


# ---------------------------------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(kw_only=True)
class BooksConfig(OutputOptions):
    input: List[str] = option(required=True, metavar="GLOB", help="book files or directories")
    max_book_mb: float = option(64.0, above=0.0, help="books larger than this are dropped as too_large, unread")
    overlap: float = option(
        0.9,
        above=0.0,
        max=1.0,
        help="near-duplicate when this share of the smaller book's shingles is in the other (LLaMA's 90%)",
    )
    shingle: int = option(5, min=1, help="words per shingle")
    num_perm: int = option(128, min=2, help="MinHash permutations")
    lsh_threshold: float = option(
        0.5, above=0.0, below=1.0, help="Jaccard threshold the LSH bands are tuned for; lower finds more candidates"
    )
    max_bucket: int = option(1000, min=0, help="books per LSH bucket paired at most (smallest ids; 0 = no cap)")
    seed: int = option(1, min=0, help="MinHash seed")

    @property
    def near(self) -> NearDupParams:
        return NearDupParams(self.shingle, self.num_perm, self.lsh_threshold, self.overlap, self.max_bucket, self.seed)


def check_book_files(files: Sequence[str]) -> None:
    from corpusmill.io.books import JSON_SUFFIXES, TEXT_SUFFIXES

    for f in files:
        if not f.lower().endswith(TEXT_SUFFIXES + JSON_SUFFIXES):
            raise CorpusmillError(
                f"input {f}: unknown book file type; the Books source reads "
                f"{', '.join(TEXT_SUFFIXES)} (one book per file) and {', '.join(JSON_SUFFIXES)} "
                f"(one book per line, with a 'text' field)"
            )


def _mark_exact():
    from corpusmill.engine.line_dedup import MarkDuplicates, by_value

    return MarkDuplicates(content_occurrence, keep=by_value, name_kept=True)


def _find_near(params):
    from corpusmill.engine.fuzzy_dedup import FindNearDuplicateBooks

    return FindNearDuplicateBooks(params)


def steps(cfg: BooksConfig) -> List[Step]:
    """The stage's steps, in order: what builds it, ``--steps``, ``--add-filter --after`` and the docs."""
    max_bytes = int(cfg.max_book_mb * (1 << 20))
    return [
        Step(
            "read", READ, lambda: ReadBook(max_bytes), "a book file or JSONL line -> a document (decoded by evidence)"
        ),
        Step("gutenberg", DOC, StripGutenberg, "Project Gutenberg headers and footers stripped"),
        # the shared exact dedup (as GitHub's): the first copy by id is kept, the others name it
        Step(
            "exact_dedup",
            CONTENT,
            lambda: DropDuplicates("exact_dedup", "exact_duplicate_book"),
            "one book per exact text (the smallest id)",
            prepare=lambda: ("FindExactDuplicates", _mark_exact()),
        ),
        Step(
            "near_dedup",
            NEAR,
            lambda: minhash.DuplicateBook("near_dedup", "near_duplicate_book"),
            "books whose overlap with a book of smaller id is at least --overlap",
            prepare=lambda: ("FindNearDuplicates", _find_near(cfg.near)),
        ),
    ]


def build_books(p, run, cfg: BooksConfig, files: Sequence[str]) -> None:
    from corpusmill.engine.stage import apply_steps
    from corpusmill.io.books import ReadBooks

    records = p | "ReadBooks" >> ReadBooks(files, int(cfg.max_book_mb * (1 << 20)))
    run.write(apply_steps(run, records, steps(cfg)))


def run_books(cfg: BooksConfig, beam_args: Sequence[str] = ()) -> List[dict]:
    from corpusmill.engine.stage import run_build
    from corpusmill.io.files import expand_inputs

    files = expand_inputs(cfg.input)
    check_book_files(files)
    return run_build(cfg, beam_args, lambda p, run: build_books(p, run, cfg, files))


STAGE = Stage(
    name="books",
    config=BooksConfig,
    run=run_books,
    steps=listed(steps),
    show=show_documents,
    documents=True,
    description="Read books (.txt files, or JSONL with a 'text' field per line), strip Project Gutenberg headers and "
    "footers, drop exact duplicates and books whose overlap with a book of smaller id is at least "
    "--overlap (MinHash LSH finds candidates, the overlap is then computed exactly), and write "
    "OUT/part-NNNNN.<ext> plus _meta/stats.json. Other options must be Beam pipeline options.",
)
