"""Reading code: files of local repository trees and one code file per record, through Beam file
systems, for the GitHub stage.
"""

from __future__ import annotations

import os
from typing import Iterator, List, Sequence, Tuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from corpusmill.core.document import Document
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.inputs import Skipped, skipped_link, walk_files
from corpusmill.filters import code as rules
from corpusmill.filters.base import Filter, Verdict, drop, keep
from corpusmill.io.documents import SplitAndRead
from corpusmill.io.files import expand_inputs

EXPORT_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")


class ReadCodeFile(Filter):
    """``read``: a :class:`CodeFile` -> Document. Drops ``binary`` (a NUL byte in the first 8 KiB, or
    anywhere in a document's text) and ``not_utf8``; Documents (from BigQuery) only get the NUL check.
    Reads at most ``max_bytes + 1`` bytes, whatever the file claims its size is (local or gs://)."""

    name = "read"

    def __init__(self, max_bytes: int = rules.DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes

    def __call__(self, element) -> Verdict:
        if isinstance(element, Document):
            if "\x00" in element.text:
                return drop("binary", element)
            return keep(element)
        with FileSystems.open(element.path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            data = fh.read(self.max_bytes + 1)
        return rules.code_file_verdict(element.repo, element.relpath, element.path, data, self.max_bytes)


# -- local repositories ------------------------------------------------------------------------------
def list_repositories(root: str) -> Iterator[Tuple[str, str]]:
    """``(root, repository directory)`` for each top directory; ``(root, root)`` for loose files. A link
    at the top is not a repository: it is listed as loose (and counted ``symlink`` there)."""
    entries = sorted(os.listdir(root))
    if any(
        not e.startswith(".") and (os.path.islink(os.path.join(root, e)) or not os.path.isdir(os.path.join(root, e)))
        for e in entries
    ):
        yield root, root
    for entry in entries:
        full = os.path.join(root, entry)
        if not entry.startswith(".") and os.path.isdir(full) and not os.path.islink(full):
            yield root, full


def walk_repository(item: Tuple[str, str]) -> Iterator[object]:
    """Every file of one repository (hidden files and directories such as .git skipped), never
    following a link: each link, and each unreadable entry, is a :class:`Skipped` the ``read`` step counts."""
    root, repo_dir = item
    skipped: List[Skipped] = []
    if repo_dir == root:  # loose files directly in the input directory
        for name in sorted(os.listdir(root)):
            path = os.path.join(root, name)
            if name.startswith("."):
                continue
            if os.path.islink(path):
                skipped.append(skipped_link(path))
            elif os.path.isfile(path):
                repo, rel = rules.repo_and_path(root, path)
                yield rules.CodeFile(path, repo, rel, os.path.getsize(path))
        yield from skipped
        return
    for path in walk_files(repo_dir, skipped):
        repo, rel = rules.repo_and_path(root, path)
        yield rules.CodeFile(path, repo, rel, os.path.getsize(path))
    yield from skipped


class ListCodeFiles(SplitAndRead):
    """Input directories -> :class:`CodeFile` refs, listed per repository on the workers."""

    def __init__(self, roots: Sequence[str]):
        super().__init__(roots, list_repositories, walk_repository, spread_records=True)


def split_local_inputs(inputs: Sequence[str]) -> Tuple[List[str], List[str]]:
    roots, exports = [], []
    for item in inputs:
        if os.path.isdir(item):
            roots.append(os.path.abspath(item))
            continue
        for f in expand_inputs([item]):
            if not f.lower().endswith(EXPORT_SUFFIXES):
                raise CorpusmillError(
                    f"input {f}: a file input must be JSONL exported from BigQuery ({', '.join(EXPORT_SUFFIXES)});"
                    f" pass a directory of repositories for source files"
                )
            exports.append(f)
    return sorted(set(roots)), sorted(set(exports))
