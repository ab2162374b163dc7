"""Source code files (the GitHub source, RedPajama v1's rules), the pure part; Beam is in
corpusmill.pipelines.github.

Steps, each a filter with its own drop reason:

- ``parse`` (:class:`ParseCodeRow`): a JSON line exported from BigQuery -> Document (``no_content``);
- ``extension`` (:class:`ExtensionAllowList`): the RECIPE.md allow-list (``extension_not_allowed``);
- ``size`` (:class:`SizeCap`): files over the cap (``too_large``), decided from the file size, so a
  huge file is never read;
- ``read`` (:class:`corpusmill.pipelines.github.ReadCodeFile`, rules in :func:`code_file_verdict`): a file on disk -> Document (``binary``: a NUL byte; ``not_utf8``);
- ``max_line_length`` (> 1000), ``mean_line_length`` (> 100), ``alnum_share`` (< 0.25),
  ``alpha_per_token`` (< 1.5): :class:`MaxLineLength`, :class:`MeanLineLength`, :class:`AlnumShare`,
  :class:`AlphaPerToken`;
- ``header`` (:class:`StripLicenseHeader`): removes a license/copyright header.

Tokens for ``alpha_per_token`` are words and single punctuation marks (``\\w+|[^\\w\\s]``); RedPajama
counted tokens of the Pythia (GPT-NeoX) tokenizer, a model file corpusmill does not download.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import re
from typing import Optional

from corpusmill.core.document import Document, make_id
from corpusmill.filters.base import Filter, Verdict, drop, keep

SOURCE = "github"

# RECIPE.md / RedPajama v1, matched case-sensitively (".C" and ".H" are C++ there).
ALLOWED_EXTENSIONS = frozenset(
    ".asm .bat .cmd .c .h .cs .cpp .hpp .c++ .h++ .cc .hh .C .H .cmake .css .dockerfile .f90 .f .f03 .f08 "
    ".f77 .f95 .for .fpp .go .hs .html .java .js .jl .lua .md .markdown .php .php3 .php4 .php5 .phps .phpt "
    ".pl .pm .pod .perl .ps1 .psd1 .psm1 .py .rb .rs .sql .scala .sh .bash .command .zsh .ts .tsx .tex .vb "
    ".xml .rst .m .smali".split()
)
ALLOWED_NAMES = frozenset({"Dockerfile", "Makefile"})
DEFAULT_MAX_BYTES = 1 << 20  # the BigQuery contents table holds files under 1 MiB
BINARY_SNIFF = 8192
EXPORT_ERROR_KEY = "__corpusmill_error__"  # an error line in a BigQuery export (corpusmill.io.bigquery)


def extension_of(path: str) -> str:
    name = posixpath.basename(path.replace("\\", "/"))
    if name in ALLOWED_NAMES:
        return name
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def is_allowed(path: str) -> bool:
    ext = extension_of(path)
    return ext in ALLOWED_NAMES or ext in ALLOWED_EXTENSIONS


@dataclasses.dataclass(slots=True)
class CodeFile:
    """One file of a local repository checkout, not yet read."""

    path: str  # where it is (absolute or a URL)
    repo: str  # the top directory under the input directory
    relpath: str  # path inside the repository, with /
    size: int

    @property
    def location(self) -> str:
        return self.path

    @property
    def nbytes(self) -> int:
        return self.size


def _path_of(element) -> str:
    if isinstance(element, CodeFile):
        return element.relpath
    return str(element.metadata.get("path") or "")


class ExtensionAllowList(Filter):
    """``extension``: keeps allow-listed extensions and the names Dockerfile / Makefile."""

    name = "extension"

    def __call__(self, element) -> Verdict:
        if not is_allowed(_path_of(element)):
            return drop("extension_not_allowed", element if isinstance(element, Document) else None)
        return keep(element)


class SizeCap(Filter):
    """``size``: drops ``too_large`` over ``max_bytes`` (a file's size on disk, or the UTF-8 text)."""

    name = "size"

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes

    def __call__(self, element) -> Verdict:
        if element.nbytes > self.max_bytes:
            return drop("too_large", element if isinstance(element, Document) else None)
        return keep(element)


def code_document(repo: str, path: str, text: str, location: str, ref: str = "", url: str = "", **meta) -> Document:
    """The Document of one file; its id derives from repository, ref and path."""
    key = f"{repo}@{ref}/{path}" if ref else f"{repo}/{path}"
    metadata = {"repo_name": repo, "path": path, "extension": extension_of(path)}
    metadata.update({k: v for k, v in meta.items() if v not in (None, "")})
    return Document(make_id(SOURCE, key), text, SOURCE, url, "", location, metadata)


def code_file_verdict(repo: str, relpath: str, path: str, data: bytes, max_bytes: int) -> Verdict:
    """The ``read`` rules for the first ``max_bytes + 1`` bytes of a file: ``too_large``, ``binary``
    (a NUL byte in the first 8 KiB), ``not_utf8``; else its Document."""
    if len(data) > max_bytes:
        return drop("too_large")
    if b"\x00" in data[:BINARY_SNIFF]:
        return drop("binary")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return drop("not_utf8")
    return keep(code_document(repo, relpath, text, path, size=len(data)))


class ParseCodeRow(Filter):
    """``parse``: one JSON line of a BigQuery export (``repo_name``, ``path``, ``content``, optional
    ``ref``, ``license``, ``id``, ``size``) -> Document. Drops ``no_content`` (null content); a line that
    is not such an object, or a paging error recorded by the BigQuery reader, is a dead letter."""

    name = "parse"

    def __call__(self, record) -> Verdict:
        if record.error:
            raise IOError(record.error)
        try:
            row = json.loads(record.payload)
        except ValueError as exc:
            raise ValueError(f"{record.location}: not valid JSON ({exc})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{record.location}: expected a JSON object per line, got {type(row).__name__}")
        if EXPORT_ERROR_KEY in row:
            raise IOError(str(row[EXPORT_ERROR_KEY]))
        missing = [k for k in ("repo_name", "path") if not row.get(k)]
        if missing:
            raise ValueError(
                f"{record.location}: missing {', '.join(missing)}; a GitHub row needs repo_name, "
                f"path and content (the columns of the RedPajama query)"
            )
        content = row.get("content")
        if content is None:
            return drop("no_content")
        if not isinstance(content, str):
            raise ValueError(f"{record.location}: 'content' must be a string, got {type(content).__name__}")
        repo, path, ref = str(row["repo_name"]), str(row["path"]), str(row.get("ref") or "")
        branch = ref.rsplit("refs/heads/", 1)[-1] if ref else "HEAD"
        url = f"https://github.com/{repo}/blob/{branch}/{path}"
        return keep(
            code_document(
                repo,
                path,
                content,
                record.location,
                ref,
                url,
                license=row.get("license"),
                blob_id=row.get("id"),
                size=row.get("size"),
            )
        )


# -- quality: RedPajama's thresholds -----------------------------------------------------------------
_TOKENS = re.compile(r"\w+|[^\w\s]")


def max_line_length(text: str) -> float:
    return max(map(len, text.splitlines()), default=0)


def mean_line_length(text: str) -> float:
    lines = text.splitlines()
    return sum(map(len, lines)) / len(lines) if lines else 0.0


def alnum_share(text: str) -> float:
    return sum(map(str.isalnum, text)) / len(text) if text else 0.0


def alpha_per_token(text: str) -> float:
    tokens = sum(1 for _ in _TOKENS.finditer(text))
    return sum(map(str.isalpha, text)) / tokens if tokens else 0.0


class _Threshold(Filter):
    """Drops ``<name>`` (annotating the measured value) when ``measure(text)`` is above ``limit``
    (``upper`` limits) or below it (lower limits)."""

    upper = True

    def __init__(self, limit: float):
        self.limit = limit

    @staticmethod
    def measure(text: str) -> float:  # pragma: no cover - set by each subclass
        raise NotImplementedError

    @property
    def scores(self):  # the profile histograms the measure of every file, kept and dropped
        return (self.name,)

    def thresholds(self):
        return {self.name: self.limit}

    def __call__(self, doc: Document) -> Verdict:
        value = self.measure(doc.text)
        measures = {self.name: value}
        if (value > self.limit) if self.upper else (value < self.limit):
            return drop(self.name, doc.annotate(**{self.name: round(value, 4)}), measures=measures)
        return keep(doc, measures=measures)


class MaxLineLength(_Threshold):
    name, measure = "max_line_length", staticmethod(max_line_length)

    def __init__(self, limit: int = 1000):
        super().__init__(limit)


class MeanLineLength(_Threshold):
    name, measure = "mean_line_length", staticmethod(mean_line_length)

    def __init__(self, limit: float = 100.0):
        super().__init__(limit)


class AlnumShare(_Threshold):
    name, measure, upper = "alnum_share", staticmethod(alnum_share), False

    def __init__(self, minimum: float = 0.25):
        super().__init__(minimum)


class AlphaPerToken(_Threshold):
    name, measure, upper = "alpha_per_token", staticmethod(alpha_per_token), False

    def __init__(self, minimum: float = 1.5):
        super().__init__(minimum)


# -- license / copyright headers ---------------------------------------------------------------------
_MENTIONS = re.compile(r"copyright|license|licence|\(c\)|©", re.I)
_HASH_LANGS = frozenset(
    ".py .sh .bash .zsh .command .rb .pl .pm .perl .pod .cmake .ps1 .psd1 .psm1 .jl "
    "Dockerfile Makefile .dockerfile".split()
)
_DASH_LANGS = frozenset(".sql .hs .lua".split())
_SLASH_LANGS = frozenset(
    ".c .h .cs .cpp .hpp .c++ .h++ .cc .hh .C .H .go .java .js .php .php3 .php4 .php5 "
    ".phps .phpt .rs .scala .ts .tsx .m .css .smali .f90".split()
)


def _line_comment_prefixes(ext: str):
    if ext in _HASH_LANGS:
        return ("#",)
    if ext in _DASH_LANGS:
        return ("--",)
    if ext in _SLASH_LANGS:
        return ("//",)
    return ("//", "#", "--")


# Prose and markup: a ``#`` line is a heading, not a comment ("# License" in a README is content).
_PROSE = frozenset(
    ".md .markdown .mdown .rst .txt .text .adoc .asciidoc .org .tex .html .htm .xml .json .ipynb .csv .tsv".split()
)
_MODELINE = re.compile(r"-\*-.*-\*-|\bvim?:|\bex:")  # emacs -*- ... -*-, vim: / vi: / ex: settings
_LEADING_UNITS = 3  # the header may follow a modeline (-*- coding -*-, vim:) or a short comment


def _comment_unit(text: str, at: int, prefixes, block: bool):
    """The end offset of the comment that starts at ``at`` (a ``/* */`` block, or a run of line
    comments), or None when no comment starts there."""
    if block and text.startswith("/*", at):
        close = text.find("*/", at + 2)
        if close < 0:
            return None
        m = re.compile(r"[ \t]*\n?").match(text, close + 2)
        return m.end()
    end = at
    while end < len(text):
        nl = text.find("\n", end)
        line = text[end : nl if nl >= 0 else len(text)]
        if not line.lstrip().startswith(prefixes) or line.startswith("#!"):
            break
        first = end == at
        end = nl + 1 if nl >= 0 else len(text)
        if first and _MODELINE.search(line):  # a modeline is a comment of its own
            break
    return end if end > at else None


def strip_license_header(text: str, ext: str = "") -> str:
    """Remove the license/copyright header of a source file.

    Among the first comments at the top of the file (after a ``#!`` line; up to three, separated by
    blank lines, so a modeline or a short note before the header does not hide it), the first one that
    mentions copyright or a license is removed: a ``/* ... */`` block, or a run of line comments
    (``//``, ``#`` or ``--``, by language). Comments before it stay; a header that mentions neither is
    an ordinary comment and stays. Prose and markup files (Markdown, reStructuredText, HTML, ...) have no
    comment header to remove: their ``#`` lines are headings.
    """
    if ext in _PROSE:
        return text
    prefixes = _line_comment_prefixes(ext)
    block = ext not in _HASH_LANGS and ext not in _DASH_LANGS
    at = text.find("\n") + 1 if text.startswith("#!") else 0
    if at == 0 and text.startswith("#!"):  # a file that is one #! line
        return text
    for _ in range(_LEADING_UNITS):
        m = re.compile(r"(?:[ \t]*\n)*[ \t]*").match(text, at)  # blank lines and indentation
        start = m.end()
        end = _comment_unit(text, start, prefixes, block)
        if end is None:
            break
        if _MENTIONS.search(text[start:end]):
            rest = re.compile(r"(?:[ \t]*\n)*").match(text, end).end()  # and the blank lines after it
            head = text[:start] if text[:start].strip() else text[:at]
            return head + text[rest:]
        at = end
    return text


class StripLicenseHeader(Filter):
    """``header``: removes the license header (:func:`strip_license_header`); drops ``empty`` when
    nothing but the header was in the file. Records ``header_removed`` (characters)."""

    name = "header"

    def __call__(self, doc: Document) -> Verdict:
        text = strip_license_header(
            doc.text, str(doc.metadata.get("extension") or extension_of(str(doc.metadata.get("path") or "")))
        )
        if text == doc.text:
            return keep(doc)
        doc = doc.replace(text=text).annotate(header_removed=len(doc.text) - len(text))
        if not text.strip():
            return drop("empty", doc)
        return keep(doc)


def repo_and_path(root: str, path: str) -> Optional[tuple]:
    """(repository, path inside it) of a file under an input directory: the repository is the top
    directory; a file directly in the input directory belongs to a repository named after the directory."""
    rel = os.path.relpath(path, root).replace(os.sep, "/")
    if rel.startswith("../"):
        return None
    if "/" in rel:
        repo, inner = rel.split("/", 1)
        return repo, inner
    return os.path.basename(os.path.normpath(root)), rel
