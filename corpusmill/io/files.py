"""Files on any Beam file system (local, gs://, s3://): globbing inputs, copying models to a worker's
disk, atomic writes."""

from __future__ import annotations

import contextlib
import glob
import os
from typing import Iterable, List, Optional

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import atomic_write_local, check_complete, is_metadata, join, output_root
from corpusmill.core.inputs import InputFiles, Skipped, skipped_link, walk_files
from corpusmill.core.text import printable


def open_input(path: str):
    """A seekable binary stream over an input file: local, any Beam file system (gs://, s3://), or
    http(s):// (corpusmill.io.http: retries, backoff, resumed downloads)."""
    from corpusmill.io.http import is_http, open_http

    if is_http(path):
        return open_http(path)
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def read_bytes(path: str) -> bytes:
    with open_input(path) as handle:
        return handle.read()


def check_filesystem(path: str, flag: str = "--input") -> None:
    """Refuse, before any work, a path whose file system is not installed (s3:// needs Beam's aws extra)."""
    from corpusmill.io.http import is_http

    if "://" not in path or is_http(path):
        return
    try:
        FileSystems.get_filesystem(path)
    except ValueError:
        scheme = path.split("://", 1)[0]
        extra = {"s3": "aws", "gs": "gcp", "azfs": "azure"}.get(scheme)
        hint = f"; install it with pip install 'apache-beam[{extra}]'" if extra else ""
        raise CorpusmillError(f"{flag} {path}: no file system for {scheme}:// is installed{hint}") from None


def check_outputs_complete(files: Iterable[str]) -> None:
    """Every local corpusmill output the files are in must be complete (``_SUCCESS`` and its file list)."""
    for root in sorted({r for r in (output_root(f) for f in files if "://" not in f) if r}):
        check_complete(root)


def expand_inputs(patterns: Iterable[str]) -> InputFiles:
    """Expand directories and globs (local or gs://) to a sorted list of files; an empty match is an
    error. ``http(s)://`` URLs are taken as they are (a missing one becomes a dead letter when read).

    A local directory is walked without following links, at any level; a glob's matches that are
    links are not read either. Each link and unreadable entry is in the result's ``skipped`` (the
    stage's first step counts them, :mod:`corpusmill.core.inputs`)."""
    from corpusmill.io.http import is_http

    files: List[str] = []
    skipped: List[Skipped] = []
    for pattern in patterns:
        if is_http(pattern):
            files.append(pattern)
            continue
        check_filesystem(pattern)
        local = "://" not in pattern
        if local and os.path.isdir(pattern):  # a directory input: its data files, not a run's metadata
            matched = [p for p in walk_files(pattern, skipped) if not is_metadata(p, pattern)]
        elif local:
            matched = []
            for p in sorted(glob.glob(pattern, recursive=True)):
                if os.path.basename(p).startswith("."):
                    continue
                if os.path.islink(p) and any(ch in pattern for ch in "*?["):
                    skipped.append(skipped_link(p))
                elif os.path.isfile(p):
                    matched.append(p)
        else:  # an object store: a glob or a file
            matched = [
                m.path
                for r in FileSystems.match([pattern])
                for m in r.metadata_list
                if not os.path.basename(m.path).startswith(".")
            ]
        check_outputs_complete(matched)
        if not matched and not any(s.location.startswith(printable(pattern)) for s in skipped):
            raise CorpusmillError(f"--input {pattern!r} matches no files; check the path or quote the glob")
        files.extend(matched)
    return InputFiles(sorted(set(files)), sorted(set(skipped), key=lambda s: (s.location, s.reason)))


MODEL_CACHE_ENV = "CORPUSMILL_MODEL_CACHE"


def _model_cache() -> str:
    import tempfile

    return os.environ.get(MODEL_CACHE_ENV) or os.path.join(tempfile.gettempdir(), "corpusmill-models")


def localize(path: Optional[str], only: Optional[Iterable[str]] = None) -> Optional[str]:
    """A local copy of a model file or directory that may live on gs:// (or any Beam file system).

    Local paths come back unchanged. A remote one is copied once per machine into the model cache
    (``$CORPUSMILL_MODEL_CACHE``, else ``<tmp>/corpusmill-models``), under a name derived from the URL,
    and the local path is returned; a directory is copied with everything below it, or with only the
    files named in ``only`` (names relative to it: the models of the languages a run uses).
    """
    if not path or "://" not in path:
        return path
    import hashlib
    import shutil

    root = os.path.join(_model_cache(), hashlib.sha1(path.encode("utf-8")).hexdigest()[:16])
    base = path.rstrip("/")
    name = base.rsplit("/", 1)[-1]
    below = [m.path for r in FileSystems.match([base + "/**"]) for m in r.metadata_list]
    if below:  # a directory (object stores: a prefix)
        files = [(p, os.path.join(name, p[len(base) + 1 :])) for p in sorted(below)]
        if only is not None:
            wanted = set(only)
            files = [(p, rel) for p, rel in files if p[len(base) + 1 :] in wanted]
    else:
        exact = [m for r in FileSystems.match([base]) for m in r.metadata_list if m.path.rstrip("/") == base]
        if not exact:
            raise CorpusmillError(
                f"model path {path} matches no file or directory; check the URL and that this machine can read it"
            )
        files = [(exact[0].path, name)]
    for remote, rel in files:
        local = os.path.join(root, rel)
        if os.path.exists(local):
            continue
        os.makedirs(os.path.dirname(local), exist_ok=True)
        tmp = f"{local}.tmp-{os.getpid()}"
        with FileSystems.open(remote, compression_type=CompressionTypes.UNCOMPRESSED) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, local)
    return os.path.join(root, name)


@contextlib.contextmanager
def atomic_write(path: str):
    """Open ``path`` for writing through a temporary name; rename into place only on success (local
    paths: corpusmill.core.files.atomic_write_local, with fsync)."""
    if "://" not in path:
        with atomic_write_local(path) as handle:
            yield handle
        return
    directory, name = path.rsplit("/", 1)
    tmp = join(directory, f".tmp-{name}")
    if "://" not in path:
        os.makedirs(directory or ".", exist_ok=True)
    handle = FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED)
    try:
        yield handle
        handle.close()
    except BaseException:
        handle.close()
        FileSystems.delete([tmp])
        raise
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def write_text_atomic(path: str, text: str) -> None:
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))


@contextlib.contextmanager
def open_text_lines(path: str):
    """A text stream of a (possibly gzipped) UTF-8 file on any Beam file system."""
    import gzip
    import io

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if path.endswith(".gz") else raw
        yield io.TextIOWrapper(stream, encoding="utf-8", errors="strict", newline="\n")
