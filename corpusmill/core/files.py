"""Local files, with no Beam: path joining, atomic writes, and the corpusmill document files.

Stages write through :mod:`corpusmill.io.files` (any Beam file system: local, gs://, s3://); the parts
that run on one machine over local files (the report, model training, tests) use these.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import posixpath
from typing import Dict, Iterable, Iterator, List, Tuple

from corpusmill.core.document import Document


def join(*parts: str) -> str:
    """Join path parts for local paths and URLs (gs://, s3://, https://) alike."""
    first = parts[0]
    if "://" in first:
        return posixpath.join(*parts)
    return os.path.join(*parts)


def is_remote(path: str) -> bool:
    return "://" in path


@contextlib.contextmanager
def atomic_write_local(path: str):
    """Open a local ``path`` for writing through a temporary name; rename into place only on success."""
    directory, name = os.path.split(path)
    os.makedirs(directory or ".", exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{name}")
    try:
        with open(tmp, "wb") as handle:
            yield handle
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


def write_text_local(path: str, text: str) -> None:
    with atomic_write_local(path) as handle:
        handle.write(text.encode("utf-8"))


def encode_jsonl_gz(records: Iterable[dict], handle) -> None:
    """gzip-compressed JSON lines with a fixed header (mtime 0, no name): same records, same bytes."""
    with gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0, compresslevel=6) as gz:
        for record in records:
            gz.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
            gz.write(b"\n")



def read_documents_file(path: str) -> Iterator[Document]:
    """Read every document of one corpusmill output file (JSONL, JSONL.gz or Parquet), in order."""
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        for i, row in enumerate(table.to_pylist()):
            yield Document.from_dict(row, where=f"{path} row {i}")
        return
    with _open_lines(path) as lines:
        for lineno, line in enumerate(lines, 1):
            if line.strip():
                yield Document.from_json(line, where=f"{path}:{lineno}")


@contextlib.contextmanager
def _open_lines(path: str):
    with open(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if path.endswith(".gz") else raw
        yield io.TextIOWrapper(stream, encoding="utf-8", errors="strict", newline="\n")



def list_output_files(out_dir: str) -> List[str]:
    """The document files under an output directory (not _dropped/_failed), sorted."""
    out = []
    for root, dirs, files in os.walk(out_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("_") and not d.startswith("."))
        for name in sorted(files):
            if name.startswith("part-") and name.endswith((".jsonl.gz", ".jsonl", ".parquet")):
                out.append(os.path.join(root, name))
    return sorted(out)


def read_output(out_dir: str) -> List[Document]:
    """Every document of a corpusmill output directory (local), in file then line order."""
    docs: List[Document] = []
    for path in list_output_files(out_dir):
        docs.extend(read_documents_file(path))
    return docs


def _jsonl_gz_records(paths: Iterable[str]) -> List[dict]:
    import gzip
    import json

    out: List[dict] = []
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            out.extend(json.loads(line) for line in fh if line.strip())
    return out


def read_failed(out_dir: str) -> List[dict]:
    """Every dead-letter record of a local output directory (``_failed/failed-NNNNN.jsonl.gz``)."""
    folder = os.path.join(out_dir, "_failed")
    if not os.path.isdir(folder):
        return []
    return _jsonl_gz_records(os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".jsonl.gz"))


def read_dropped(out_dir: str) -> Dict[str, Dict[str, List[dict]]]:
    """``{step: {reason: records}}`` of ``_dropped/`` (the sample, or every file of ``--write-dropped``)."""
    import re

    folder = os.path.join(out_dir, "_dropped")
    out: Dict[str, Dict[str, List[dict]]] = {}
    if not os.path.isdir(folder):
        return out
    for step in sorted(os.listdir(folder)):
        for name in sorted(os.listdir(os.path.join(folder, step))):
            if name.endswith(".jsonl.gz"):
                reason = re.sub(r"-\d{5}$", "", name[: -len(".jsonl.gz")])
                out.setdefault(step, {}).setdefault(reason, []).extend(
                    _jsonl_gz_records([os.path.join(folder, step, name)]))
    return out


def document_group_dirs(out_dir: str) -> List[Tuple[str, str]]:
    """(group name, path) for the sub-directories that hold documents."""
    return [(name, os.path.join(out_dir, name)) for name in sorted(os.listdir(out_dir))
            if os.path.isdir(os.path.join(out_dir, name)) and not name.startswith(("_", "."))]


def expand_local(patterns: Iterable[str]) -> List[str]:
    """Expand local globs and directories to a sorted list of files; an empty match is an error.

    The local counterpart of :func:`corpusmill.io.files.expand_inputs` (which also reads gs://, s3://).
    """
    import glob

    from corpusmill.core.errors import CorpusmillError

    files: List[str] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            pattern = os.path.join(pattern, "**")
        matched = [p for p in glob.glob(pattern, recursive=True)
                   if not os.path.basename(p).startswith(".") and os.path.isfile(p)]
        if not matched:
            raise CorpusmillError(f"--input {pattern!r} matches no files; check the path or quote the glob")
        files.extend(os.path.abspath(p) if not os.path.isabs(pattern) else p for p in matched)
    return sorted(set(files))
