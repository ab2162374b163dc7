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
import shutil
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from corpusmill.core.config import option
from corpusmill.core.files import join
from corpusmill.core.inputs import InputFiles
from corpusmill.core.outputs import OutputOptions, show_documents
from corpusmill.core.stage import Stage
from corpusmill.core.steps import DOC, READ, Step
from corpusmill.filters import stackexchange as se
from corpusmill.filters.stackexchange import MAX_ROW_BYTES
from corpusmill.pipelines import listed

if TYPE_CHECKING:  # annotations only
    import apache_beam as beam

    from corpusmill.engine.run import Run


# -- the stage ---------------------------------------------------------------------------------------
@dataclasses.dataclass(kw_only=True)
class StackExchangeConfig(OutputOptions):
    input: List[str] = option(
        required=True, metavar="PATH", help="Posts.xml files (plain, .bz2, .7z), site archives or dump directories"
    )
    top_sites: int = option(28, min=1, help="keep the N sites with most posts (LLaMA: 28)")
    sites: Optional[List[str]] = option(
        None, sep=",", metavar="SITE", help="keep these sites only (default: the top sites)"
    )
    text_format: str = option("qa", choices=se.FORMATS, help="how a question and its answers become text")
    min_answers: int = option(0, min=0, help="drop questions with fewer answers")
    split_mb: float = option(64.0, above=0.0, help="target byte range per worker task, in MB of plain XML")
    max_row_bytes: int = option(MAX_ROW_BYTES, min=1, help="a <row/> longer than this is a dead letter")
    unpack: bool = option(
        True,
        help="a .7z/.bz2 site is unpacked into plain chunks (OUT/_unpacked, removed at the "
        "end; as much disk as its XML) that workers read at the same time; "
        "--no-unpack: one worker reads it whole",
    )


def _posts():
    from corpusmill.io import posts

    return posts


def steps(cfg: StackExchangeConfig) -> List[Step]:
    """The stage's steps, in order."""
    top, only = cfg.top_sites, list(cfg.sites) if cfg.sites else None
    return [
        Step("parse", READ, se.ParsePostRow, "a Posts.xml row -> a post"),
        Step(
            "top_sites",
            DOC,
            se.KeepTopSites,
            "the --top-sites sites with the most posts (or --sites)",
            prepare=lambda: ("RankSitesOfPosts", _posts().RankSites(top, only)),
        ),
        Step(
            "format",
            DOC,
            lambda: se.FormatThread(cfg.text_format, cfg.min_answers),
            "a question with its answers sorted by score -> a document",
            prepare=lambda: ("ThreadsOfPosts", _posts().GroupThreads()),
        ),
    ]


def build_stackexchange(
    p: beam.Pipeline, run: Run, cfg: StackExchangeConfig, files: Sequence[Tuple[str, str, str]]
) -> None:
    from corpusmill.engine.stage import apply_steps
    from corpusmill.io.posts import ReadPostsXml

    lines = p | "ReadPosts" >> ReadPostsXml(
        files,
        int(cfg.split_mb * (1 << 20)),
        cfg.max_row_bytes,
        unpack_dir=join(run.out_dir, UNPACK_DIR) if cfg.unpack else None,
    )
    run.write(apply_steps(run, lines, steps(cfg)), group_fn=lambda d: d.metadata["site"])


def run_stackexchange(cfg: StackExchangeConfig, beam_args: Sequence[str] = ()) -> List[dict]:
    """Run the StackExchange source to completion; returns stats.json's content."""
    from corpusmill.engine.stage import run_build
    from corpusmill.io.files import expand_inputs
    from corpusmill.io.posts import select_posts_files

    listed = expand_inputs(cfg.input)
    files = InputFiles(select_posts_files(listed), listed.skipped)
    return run_build(
        cfg, beam_args, lambda p, run: build_stackexchange(p, run, cfg, files), before_done=_remove_unpacked
    )


UNPACK_DIR = "_unpacked"  # compressed Posts.xml as plain chunks, read at the same time; gone before _SUCCESS


def _remove_unpacked(out_dir: str) -> None:
    from apache_beam.io.filesystems import FileSystems

    path = join(out_dir, UNPACK_DIR)
    if "://" not in path:
        shutil.rmtree(path, ignore_errors=True)
    elif FileSystems.exists(path):
        FileSystems.delete([path])


STAGE = Stage(
    name="stackexchange",
    config=StackExchangeConfig,
    run=run_stackexchange,
    steps=listed(steps),
    show=show_documents,
    documents=True,
    description="Read StackExchange Posts.xml (plain, .bz2 or .7z; a dump directory or site archives), keep the "
    "top --top-sites sites, join each question with its answers sorted by score, turn the HTML into "
    "text and write OUT/<site>/part-NNNNN.<ext> plus _meta/stats.json. Other options must be Beam's.",
)
