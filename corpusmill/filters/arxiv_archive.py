"""One arXiv paper's source, safely unpacked, as one flattened LaTeX text (the ``extract`` step of the
ArXiv source; Beam and file reading are in corpusmill.pipelines.arxiv).

arXiv ships each paper as a ``.gz``: either a gzipped tar of the paper's files or a single gzipped
``.tex``. Nothing is ever written to disk: members are read into memory under caps, and a paper whose
archive has a member that would leave the paper (absolute path, ``..``), a link, a device/FIFO member, or
a member over the size caps is dropped with a reason naming it:

- ``unsafe_path``, ``link_member``, ``special_member``: hostile or broken archives;
- ``too_large``: the paper's ``.gz`` (``max_paper_bytes``), its unpacked size (``max_unpacked_bytes``, a
  gzip bomb stops there) or one member (``max_file_bytes``) is over its cap;
- ``not_latex``: a PDF-only submission or other non-TeX content; ``no_main_tex``: no file with an
  uncommented ``\\documentclass`` (or LaTeX 2.09 ``\\documentstyle``);
- ``not_utf8``: the main file is neither UTF-8 nor declares an 8-bit ``inputenc`` encoding.

The main file's comments are stripped and its ``\\input``/``\\include`` files inlined
(:mod:`corpusmill.filters.latex`).
"""

from __future__ import annotations

import dataclasses
import io
import posixpath
import re
import tarfile
import zlib
from typing import Dict, Optional, Sequence, Tuple

from corpusmill.core.document import Document, make_id
from corpusmill.filters.base import Filter, Verdict, drop, keep
from corpusmill.filters.latex import (
    inline_inputs,
    loaded_packages,
    package_definitions,
    protect_verbatim,
    restore_verbatim,
    strip_comments,
    verbatim_environments,
)

SOURCE = "arxiv"
TEX_SUFFIXES = (".tex", ".ltx", ".latex")
PACKAGE_SUFFIXES = (".sty", ".cls")  # a paper's own packages and class: read for their macro definitions
SOURCE_SUFFIXES = TEX_SUFFIXES + PACKAGE_SUFFIXES
_DOCCLASS = re.compile(r"^[^%\n]*\\document(?:class|style)\b", re.M)
_INPUTENC = re.compile(r"\\usepackage\s*\[([^\]]+)\]\s*\{inputenc\}")
_8BIT = {
    "latin1": "latin-1",
    "latin9": "iso8859-15",
    "latin2": "iso8859-2",
    "cp1252": "cp1252",
    "ansinew": "cp1252",
    "applemac": "mac_roman",
    "cp1250": "cp1250",
    "koi8-r": "koi8_r",
    "cp1251": "cp1251",
}


class Rejected(Exception):
    """A paper dropped for a reason (the reason is a counter name, the detail goes to metadata)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(slots=True)
class PaperRecord:
    """One paper, unparsed: the bytes of its ``.gz`` (``payload``) or its folder's files (``files``)."""

    paper: str  # arXiv id or folder name
    location: str  # bulk.tar#member or folder path
    size: int = 0
    payload: Optional[bytes] = None
    files: Optional[Dict[str, bytes]] = None
    reject: Optional[Tuple[str, str]] = None  # (reason, detail) decided while reading (links, sizes)
    error: str = ""

    @property
    def nbytes(self) -> int:
        return self.size


def arxiv_id(name: str) -> str:
    """The arXiv id of a source file name: ``1801/1801.00001.gz`` -> ``1801.00001``,
    ``astro-ph0001001.gz`` -> ``astro-ph/0001001``."""
    base = posixpath.basename(name.rstrip("/"))
    for suffix in (".tex.gz", ".tar.gz", ".tgz", ".gz", ".tar", ".tex", ".pdf"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    m = re.fullmatch(r"([a-z-]+(?:\.[A-Z]{2})?)(\d{7})(v\d+)?", base)
    return f"{m.group(1)}/{m.group(2)}" if m else base


def check_member_name(name: str) -> None:
    """Raise :class:`Rejected` for a path that is absolute or climbs out of the paper."""
    if not name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", name):
        raise Rejected("unsafe_path", f"member {name!r} has an absolute path")
    parts = re.split(r"[\\/]+", name)
    if ".." in parts:
        raise Rejected("unsafe_path", f"member {name!r} climbs out of the paper ('..')")


def _gunzip_capped(data: bytes, cap: int) -> bytes:
    dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = dec.decompress(data, cap + 1)
    if len(out) > cap:
        raise Rejected("too_large", f"the paper unpacks to more than {cap} bytes")
    if not dec.eof:
        raise ValueError("the paper's gzip stream is truncated or corrupt")
    return out


def unpack(payload: bytes, max_unpacked: int, max_file: int) -> Dict[str, bytes]:
    """The paper's TeX files ``{path: bytes}`` from its ``.gz`` bytes (see the module docstring)."""
    data = _gunzip_capped(payload, max_unpacked) if payload[:2] == b"\x1f\x8b" else payload
    if len(data) >= 262 and data[257:262] == b"ustar" or _looks_like_tar(data):
        files: Dict[str, bytes] = {}
        total = 0
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                check_member_name(member.name)
                if member.issym() or member.islnk():
                    raise Rejected("link_member", f"member {member.name!r} is a link (to {member.linkname!r})")
                if member.isdir():
                    continue
                if not member.isfile():
                    raise Rejected("special_member", f"member {member.name!r} is a device, FIFO or other special file")
                if member.size > max_file:
                    raise Rejected("too_large", f"member {member.name!r} is {member.size} bytes (cap {max_file})")
                total += member.size
                if total > max_unpacked:
                    raise Rejected("too_large", f"the paper's files add up to more than {max_unpacked} bytes")
                if member.name.lower().endswith(SOURCE_SUFFIXES):
                    fh = tar.extractfile(member)
                    files[posixpath.normpath(member.name)] = fh.read(max_file + 1) if fh else b""
        return files
    if data[:5] == b"%PDF-":
        raise Rejected("not_latex", "the submission is a PDF, not LaTeX source")
    if len(data) > max_file:
        raise Rejected("too_large", f"the single source file is {len(data)} bytes (cap {max_file})")
    return {"main.tex": data}


def _looks_like_tar(data: bytes) -> bool:
    if len(data) < 512 or data[:1] == b"\\" or data[:1] == b"%":
        return False
    try:
        with tarfile.open(fileobj=io.BytesIO(data[:10240]), mode="r:"):
            return True
    except (tarfile.TarError, EOFError):
        return False


def decode_tex(data: bytes, name: str) -> Tuple[str, str]:
    """UTF-8, or the 8-bit encoding the file declares with inputenc; else Rejected ``not_utf8``."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        head = data.decode("latin-1")
        m = _INPUTENC.search(head)
        if m:
            for option in (o.strip().lower() for o in m.group(1).split(",")):
                if option in _8BIT:
                    return data.decode(_8BIT[option]), _8BIT[option]
        raise Rejected(
            "not_utf8", f"{name} is not UTF-8 (byte {exc.start}) and declares no 8-bit inputenc encoding"
        ) from None


def main_tex(files: Dict[str, bytes]) -> str:
    """The file with an uncommented ``\\documentclass``; several: the one with ``\\begin{document}``,
    then the shallowest path, then the name."""
    cands = []
    for name, data in files.items():
        if not name.lower().endswith(TEX_SUFFIXES):
            continue  # a package or class file
        head = data.decode("latin-1")
        if _DOCCLASS.search(head):
            cands.append((0 if "\\begin{document}" in head else 1, name.count("/"), name))
    if not cands:
        raise Rejected("no_main_tex", f"no file with \\documentclass among {sorted(files)[:10]}")
    return min(cands)[2]


_MAX_PACKAGES = 32


def _local_packages(text: str, files: Dict[str, bytes], root: str, encoding: str) -> Dict[str, str]:
    """``{file name: comment-free source}`` of the packages and classes the (comment-free) paper loads
    that it ships itself (``\\usepackage{mymacros}`` with ``mymacros.sty`` beside the main file), and of
    the ones those load in turn."""
    found: Dict[str, str] = {}
    todo = [text]
    while todo and len(found) < _MAX_PACKAGES:
        source, _spans = protect_verbatim(todo.pop(0))  # (a \\usepackage in verbatim is text)
        for _end, name, suffix in loaded_packages(source):
            path = posixpath.normpath(posixpath.join(root, name if name.endswith(suffix) else name + suffix))
            if path in found or path not in files:
                continue
            try:
                source = decode_tex(files[path], path)[0]
            except Rejected:
                source = files[path].decode(encoding if encoding != "utf-8" else "latin-1")
            found[path] = strip_comments(source)
            todo.append(found[path])
    return found


def _with_package_definitions(flat: str, packages: Dict[str, str], root: str, verbatim: Sequence[str]) -> str:
    """``flat`` with each local package's definitions right after the command that loads it."""
    packages = dict(packages)
    flat, spans = protect_verbatim(flat, verbatim)
    pieces, pos = [], 0
    for end, name, suffix in loaded_packages(flat):
        path = posixpath.normpath(posixpath.join(root, name if name.endswith(suffix) else name + suffix))
        if path in packages:
            pieces += [flat[pos:end], "\n", package_definitions(packages.pop(path)), "\n"]
            pos = end
    pieces.append(flat[pos:])
    # a package loaded only by another package: its definitions go where the first one was loaded
    rest = "\n".join(package_definitions(src) for src in packages.values())
    out = "".join(pieces) if not rest else "".join(pieces).replace("\n", "\n" + rest + "\n", 1)
    return restore_verbatim(out, spans)


class ExtractPaper(Filter):
    """The ``extract`` step: :class:`PaperRecord` -> Document(text = the main file, flattened)."""

    name = "extract"

    def __init__(self, max_unpacked_bytes: int = 256 << 20, max_file_bytes: int = 32 << 20):
        self.max_unpacked = max_unpacked_bytes
        self.max_file = max_file_bytes

    def __call__(self, rec: PaperRecord) -> Verdict:
        if rec.error:
            raise IOError(rec.error)
        stub = Document(make_id(SOURCE, rec.paper), "", SOURCE, "", "", rec.location, {"paper": rec.paper})
        try:
            if rec.reject:
                raise Rejected(*rec.reject)
            files = rec.files if rec.files is not None else unpack(rec.payload or b"", self.max_unpacked, self.max_file)
            if not any(name.lower().endswith(TEX_SUFFIXES) for name in files):
                raise Rejected("not_latex", "no .tex file in the paper")
            main = main_tex(files)
            text, encoding = decode_tex(files[main], main)
        except Rejected as rej:
            return drop(rej.reason, stub.annotate(reject_detail=rej.detail))
        root = posixpath.dirname(main)

        def read(name: str) -> Optional[str]:
            for cand in (name, name + ".tex"):
                path = posixpath.normpath(posixpath.join(root, cand))
                if path in files:
                    try:
                        return decode_tex(files[path], path)[0]
                    except Rejected:
                        return files[path].decode(encoding if encoding != "utf-8" else "latin-1")
            return None

        # the paper's own packages and class (a .sty/.cls in the tarball): their definitions go where they
        # are loaded, so the paper's macros from them expand; verbatim environments they define stay as written
        stripped = strip_comments(text)
        packages = _local_packages(stripped, files, root, encoding)
        verbatim = verbatim_environments(stripped, *packages.values())
        if verbatim:  # again, with the paper's own verbatim environments left as written
            stripped = strip_comments(text, verbatim)
        flat, missing = inline_inputs(stripped, read, verbatim_envs=verbatim)
        if packages:
            flat = _with_package_definitions(flat, packages, root, verbatim)
        url = (
            f"https://arxiv.org/abs/{rec.paper}"
            if re.match(r"^(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})$", rec.paper)
            else ""
        )
        meta = {
            "paper": rec.paper,
            "main_tex": main,
            "encoding": encoding,
            "tex_files": sum(n.lower().endswith(TEX_SUFFIXES) for n in files),
        }
        if missing:
            meta["missing_inputs"] = sorted(set(missing))[:50]
        if packages:
            meta["local_packages"] = sorted(packages)
        if verbatim:
            meta["verbatim_environments"] = verbatim
        doc = stub.replace(text=flat, url=url, metadata=meta)
        if not flat.strip():
            return drop("empty", doc)
        return keep(doc)
