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
import re
from typing import Dict, Iterable, Iterator, List, Optional

from corpusmill.core.document import Document


def join(*parts: str) -> str:
    """Join path parts for local paths and URLs (gs://, s3://, https://) alike."""
    first = parts[0]
    if "://" in first:
        return posixpath.join(*parts)
    return os.path.join(*parts)


# A name taken from data (a language, a site, a bucket, a domain label) that becomes a folder or file
# name: lower-case letters, digits, '.', '_' and '-', starting with a letter or digit (so never '.', '..',
# a hidden name, an absolute path or a path with a separator), at most 100 characters.
SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


def is_safe_name(value) -> bool:
    return isinstance(value, str) and SAFE_NAME.fullmatch(value) is not None


def check_name(value, what: str) -> str:
    """``value`` if it may name a folder or file under an output, else ValueError naming ``what``.
    Every output group and file name derived from data passes here before it meets a path."""
    if not is_safe_name(value):
        raise ValueError(
            f"{what} {value!r} cannot name an output folder (expected {SAFE_NAME.pattern}); "
            f"nothing was written under it"
        )
    return value


def check_group(group: str) -> str:
    """An output group (a sub-folder of the output, e.g. ``en``, ``en_head``, ``s00001/en``): "" (none) or
    ``/``-separated parts, each a safe name."""
    if group != "":
        for part in group.split("/") if isinstance(group, str) else [group]:
            check_name(part, "output group")
    return group


@contextlib.contextmanager
def atomic_write_local(path: str):
    """Open a local ``path`` for writing through a temporary name (one per process); on success the
    bytes are flushed to disk (fsync), renamed into place and the rename made durable (the folder's
    fsync), so a crash leaves the old file or the new one, whole. The one atomic write of the package:
    corpusmill.io.files.atomic_write uses it for local paths."""
    directory, name = os.path.split(path)
    os.makedirs(directory or ".", exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{name}")
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, path)
    fsync_dir(directory or ".")


def fsync_dir(path: str) -> None:
    """Make a rename or a new file in folder ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_local(path: str, text: str) -> None:
    write_bytes_local(path, text.encode("utf-8"))


def write_bytes_local(path: str, data: bytes) -> None:
    with atomic_write_local(path) as handle:
        handle.write(data)


def encode_jsonl_gz(records: Iterable[dict], handle, level: int = 6) -> None:
    """gzip-compressed JSON lines with a fixed header (mtime 0, no name): same records, same bytes.
    ``level`` 1 for files a run reads back itself (the CCNet stage's shard outputs): 3x faster."""
    with gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0, compresslevel=level) as gz:
        buf: List[bytes] = []
        size = 0
        for record in records:
            # backslashreplace: a dead letter naming a non-UTF-8 file is written, not a crash (documents
            # were made writable by the glue, core.text)
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace")
            buf.append(line)
            size += len(line)
            if size > 1 << 20:  # one compressor call per MB, not two per record
                gz.write(b"\n".join(buf) + b"\n")
                buf, size = [], 0
        if buf:
            gz.write(b"\n".join(buf) + b"\n")


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
                reason = re.sub(r"-\d{5,}$", "", name[: -len(".jsonl.gz")])
                out.setdefault(step, {}).setdefault(reason, []).extend(
                    _jsonl_gz_records([os.path.join(folder, step, name)])
                )
    return out


def expand_local(patterns: Iterable[str]) -> List[str]:
    """Expand local globs and directories to a sorted list of files; an empty match is an error.

    The local counterpart of :func:`corpusmill.io.files.expand_inputs` (which also reads gs://, s3://).
    """
    import glob

    from corpusmill.core.errors import CorpusmillError
    from corpusmill.core.inputs import walk_files

    files: List[str] = []
    for pattern in patterns:
        if os.path.isdir(pattern):  # never following a link; a link or unreadable entry is refused here
            skipped: list = []
            matched = [p for p in walk_files(pattern, skipped) if not is_metadata(p, pattern)]
            if skipped:
                raise CorpusmillError(
                    f"--input {pattern}: {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} "
                    f"not read, e.g. {skipped[0].location} ({skipped[0].reason}: "
                    f"{skipped[0].detail}); links are never followed: remove it or name its target"
                )
        else:
            matched = [
                p
                for p in glob.glob(pattern, recursive=True)
                if not os.path.basename(p).startswith(".") and os.path.isfile(p)
            ]
        for root in sorted({r for r in (output_root(p) for p in matched) if r}):
            check_complete(root)
        if not matched:
            raise CorpusmillError(f"--input {pattern!r} matches no files; check the path or quote the glob")
        files.extend(os.path.abspath(p) if not os.path.isabs(pattern) else p for p in matched)
    return sorted(set(files))


# -- complete or absent -------------------------------------------------------------------------------
DONE_NAME = "_SUCCESS"
# The run's bookkeeping sits in one folder, apart from the documents, where directory readers do not look
# (pyarrow/pandas/Spark skip names starting with "_"): pd.read_parquet(OUT) reads the documents only
META_DIR = "_meta"
STATS_NAME = f"{META_DIR}/stats.json"
PROFILE_NAME = f"{META_DIR}/profile.json"
REPEATED_LINES_NAME = f"{META_DIR}/repeated_lines.json"
# how the run was made (config, versions, model sha256, times): not part of the output's bytes, so
# _SUCCESS does not list it and two runs of the same command still give identical outputs
PROVENANCE_NAME = "_provenance.json"
METADATA_NAMES = frozenset({DONE_NAME, PROVENANCE_NAME, "_STAGE.json"})


def sha256_file(path: str, opener=None) -> str:
    """The sha256 of a file: the one digest of the package (shards, tokenizer models, ``_SUCCESS``,
    CCNet shard markers). ``opener(path)`` opens it elsewhere (corpusmill.engine.shards: any Beam file
    system); local files by default."""
    import hashlib

    with (opener or (lambda p: open(p, "rb")))(path) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def completion_record(out_dir: str) -> dict:
    """What ``_SUCCESS`` holds: every file of a local output (but ``_shards/``, a run's own resume state,
    and temporaries) with its size and sha256, sorted."""
    files = []
    for root, dirs, names in os.walk(out_dir):
        rel_root = os.path.relpath(root, out_dir)
        dirs[:] = sorted(d for d in dirs if not (rel_root == "." and d == "_shards") and not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or (rel_root == "." and name in (DONE_NAME, PROVENANCE_NAME)):
                continue
            path = os.path.join(root, name)
            rel = os.path.normpath(os.path.join(rel_root, name)).replace(os.sep, "/")
            files.append({"path": rel, "bytes": os.path.getsize(path), "sha256": sha256_file(path)})
    return {"files": sorted(files, key=lambda f: f["path"])}


def output_root(path: str, levels: int = 3) -> Optional[str]:
    """The corpusmill output directory ``path`` is in (itself or an ancestor with a stats.json), if any."""
    current = os.path.abspath(path if os.path.isdir(path) else os.path.dirname(path))
    for _ in range(levels + 1):
        if os.path.isfile(os.path.join(current, STATS_NAME)):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent
    return None


def check_complete(root: str, flag: str = "--input", verify: bool = True) -> None:
    """Refuse a corpusmill output without its completion marker, or whose listed files are missing or
    changed (size, and with ``verify`` the sha256 too: this reads every listed file), naming the
    directory and the fix."""
    import json

    from corpusmill.core.errors import CorpusmillError

    marker = os.path.join(root, DONE_NAME)
    if not os.path.isfile(marker):
        raise CorpusmillError(
            f"{flag} {root}: an incomplete corpusmill output (no {DONE_NAME}: the run that writes "
            f"it did not finish); rerun that command to finish it, or point at a complete output"
        )
    with open(marker, encoding="utf-8") as fh:
        text = fh.read()
    if not text.strip():
        return  # a marker from before file lists were recorded
    for f in json.loads(text).get("files", []):
        path = os.path.join(root, f["path"])
        if (
            not os.path.isfile(path)
            or os.path.getsize(path) != f["bytes"]
            or (verify and f.get("sha256") and sha256_file(path) != f["sha256"])
        ):
            raise CorpusmillError(
                f"{flag} {root}: {f['path']} is listed in {DONE_NAME} but is missing or changed; "
                f"rerun the command that wrote {root}"
            )


def is_metadata(path: str, top: str) -> bool:
    """Whether ``path`` (inside directory input ``top``) is a run's metadata rather than input data:
    any ``_``- or ``.``-prefixed part (``_meta/``, ``_dropped/``, ``_failed/``, ``_shards/``, ``_SUCCESS``)."""
    rel = os.path.relpath(path, top).replace(os.sep, "/").split("/")
    return any(part.startswith(("_", ".")) for part in rel) or rel[-1] in METADATA_NAMES


def read_provenance(out_dir: str) -> Optional[dict]:
    """An output's ``_provenance.json`` (corpusmill.engine.provenance), or None."""
    import json

    path = os.path.join(out_dir, PROVENANCE_NAME)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
