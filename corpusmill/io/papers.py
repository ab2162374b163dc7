"""Reading arXiv sources: bulk .tar files, per-paper .gz/.tgz/.tex and paper folders, safely
(no links, no FIFOs, size caps), as paper records for the ArXiv stage.
"""

from __future__ import annotations

import dataclasses
import os
import tarfile
from typing import Dict, Iterator, List, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.inputs import InputFiles, Skipped, skipped_link
from corpusmill.core.progress import expect_input
from corpusmill.filters.arxiv_archive import (
    PaperRecord,
    Rejected,
    arxiv_id,
    check_member_name,
)
from corpusmill.io.documents import with_skipped
from corpusmill.io.files import expand_inputs

PAPER_SUFFIXES = (".gz", ".tgz", ".tex")
BULK_SUFFIXES = (".tar",)


@dataclasses.dataclass(slots=True)
class PaperRef:
    """Where one paper is: a member of a bulk tar, a paper file, or a paper folder."""

    kind: str  # "member", "file", "dir", "error"
    path: str
    name: str = ""
    offset: int = 0
    size: int = 0
    reject: Optional[tuple] = None
    error: str = ""

    @property
    def location(self) -> str:
        return f"{self.path}#{self.name}" if self.kind == "member" else self.path


def scan_bulk_tar(path: str) -> Iterator[PaperRef]:
    """One ref per member of a bulk tar, from the headers only (member data is skipped by seeking)."""
    try:
        with (
            FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw,
            tarfile.open(fileobj=raw, mode="r:") as tar,
        ):
            for member in tar:
                if member.isdir():
                    continue
                reject = None
                try:
                    check_member_name(member.name)
                except Rejected as rej:
                    reject = (rej.reason, rej.detail)
                if reject is None and (member.issym() or member.islnk()):
                    reject = ("link_member", f"bulk tar member {member.name!r} is a link to {member.linkname!r}")
                elif reject is None and not member.isfile():
                    reject = ("special_member", f"bulk tar member {member.name!r} is not a regular file")
                yield PaperRef("member", path, member.name, member.offset_data, member.size, reject)
    except Exception as exc:  # noqa: BLE001 - a damaged tar: what was listed stands, the rest is one dead letter
        yield PaperRef("error", path, "", 0, 0, None, f"unreadable tar {path}: {type(exc).__name__}: {exc}"[:1000])


def list_papers(inputs: Sequence[str]) -> List[PaperRef]:
    """Expand ``--input`` arguments into bulk tars, paper files and paper folders (sorted)."""
    refs: List[PaperRef] = []
    skipped: List[Skipped] = []
    for arg in inputs:
        if os.path.isdir(arg):
            for entry in sorted(os.listdir(arg)):
                full = os.path.join(arg, entry)
                if entry.startswith("."):
                    continue
                if os.path.islink(full):  # never followed: counted ``symlink`` by the read step
                    skipped.append(skipped_link(full))
                elif os.path.isdir(full):
                    refs.append(PaperRef("dir", full, entry))
                elif entry.lower().endswith(BULK_SUFFIXES):
                    refs.append(PaperRef("bulk", full, entry))
                elif entry.lower().endswith(PAPER_SUFFIXES) or entry.lower().endswith(".tar.gz"):
                    refs.append(PaperRef("file", full, entry))
            continue
        files = expand_inputs([arg])
        skipped.extend(files.skipped)
        for f in files:
            low = f.lower()
            if low.endswith(BULK_SUFFIXES):
                refs.append(PaperRef("bulk", f, os.path.basename(f)))
            elif low.endswith(PAPER_SUFFIXES):
                refs.append(PaperRef("file", f, os.path.basename(f)))
            else:
                raise CorpusmillError(
                    f"input {f}: the ArXiv source reads bulk .tar files, per-paper .gz/.tar.gz/"
                    f".tgz/.tex files and directories of paper folders"
                )
    return InputFiles(sorted(refs, key=lambda r: (r.path, r.name)), skipped)


def scan(ref: PaperRef) -> Iterator[PaperRef]:
    if ref.kind == "bulk":
        yield from scan_bulk_tar(ref.path)
    else:
        yield ref


def _read_folder(folder: str, max_file: int, max_total: int) -> PaperRecord:
    name = os.path.basename(folder.rstrip("/"))
    files: Dict[str, bytes] = {}
    total = 0
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs.sort()
        for sub in list(dirs):
            if os.path.islink(os.path.join(root, sub)):
                return PaperRecord(name, folder, 0, reject=("link_member", f"{os.path.join(root, sub)} is a link"))
        for n in sorted(names):
            full = os.path.join(root, n)
            rel = os.path.relpath(full, folder).replace(os.sep, "/")
            if os.path.islink(full):
                return PaperRecord(name, folder, total, reject=("link_member", f"{rel} is a link"))
            size = os.path.getsize(full)
            total += size
            if size > max_file or total > max_total:
                return PaperRecord(
                    name,
                    folder,
                    total,
                    reject=("too_large", f"{rel}: {size} bytes; caps {max_file} per file, {max_total} per paper"),
                )
            if rel.lower().endswith((".tex", ".ltx", ".latex", ".sty", ".cls")):
                with open(full, "rb") as fh:
                    files[rel] = fh.read(max_file + 1)
            elif rel.lower().endswith((".tex.gz", ".sty.gz", ".cls.gz")):  # Debian-style gzipped sources
                import gzip

                with gzip.open(full) as fh:
                    data = fh.read(max_file + 1)
                total += len(data) - size  # what it unpacks to counts, not its compressed size
                if len(data) > max_file or total > max_total:
                    return PaperRecord(
                        name,
                        folder,
                        total,
                        reject=(
                            "too_large",
                            f"{rel} unpacks to {len(data)}+ bytes; caps {max_file} per file, {max_total} per paper",
                        ),
                    )
                files[rel[:-3]] = data
    return PaperRecord(name, folder, total, files=files)


def read_paper(ref: PaperRef, max_paper: int, max_file: int, max_total: int) -> Iterator[PaperRecord]:
    """One ref -> one :class:`PaperRecord` (bytes read under the caps)."""
    if ref.kind == "error":
        yield PaperRecord(ref.path, ref.path, 0, error=ref.error)
        return
    paper = arxiv_id(ref.name)
    if ref.kind == "dir":
        try:
            yield _read_folder(ref.path, max_file, max_total)
        except OSError as exc:
            yield PaperRecord(paper, ref.path, 0, error=f"{type(exc).__name__}: {exc}")
        return
    if ref.reject:
        yield PaperRecord(paper, ref.location, ref.size, reject=ref.reject)
        return
    try:
        size = ref.size if ref.kind == "member" else FileSystems.match([ref.path])[0].metadata_list[0].size_in_bytes
        if size > max_paper:
            yield PaperRecord(
                paper,
                ref.location,
                size,
                reject=("too_large", f"{ref.location} is {size} bytes (cap {max_paper}); not read"),
            )
            return
        with FileSystems.open(ref.path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            fh.seek(ref.offset)
            data = fh.read(size)
        if len(data) < size:
            raise IOError(f"{ref.location}: the file ends after {len(data)} of {size} bytes (truncated)")
        yield PaperRecord(paper, ref.location, size, payload=data)
    except Exception as exc:  # noqa: BLE001
        yield PaperRecord(paper, ref.location, 0, error=f"{type(exc).__name__}: {exc}"[:1000])


class ReadPapers(beam.PTransform):
    def __init__(self, refs: Sequence[PaperRef], max_paper: int, max_file: int, max_total: int):
        super().__init__()
        self.refs = list(refs)
        self.skipped = list(getattr(refs, "skipped", ()))
        expect_input(r.path for r in self.refs if r.kind in ("bulk", "file"))
        self.caps = (max_paper, max_file, max_total)

    def expand(self, pbegin):
        caps = self.caps
        records = (
            pbegin
            | "Inputs" >> beam.Create(self.refs)
            | "SpreadInputs" >> beam.Reshuffle()
            | "Scan" >> beam.FlatMap(lambda ref: scan(ref))
            | "SpreadPapers" >> beam.Reshuffle()
            | "ReadPapers" >> beam.FlatMap(lambda ref: read_paper(ref, *caps))
        )
        return with_skipped(pbegin, records, self.skipped)
