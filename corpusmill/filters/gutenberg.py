"""Books: reading one book record and removing Project Gutenberg's header and footer (pure part of the
Books source; the Beam part is corpusmill.pipelines.books).

- :class:`ReadBook` (step ``read``): a :class:`BookRecord` (a ``.txt`` file, or one line of Gutenberg- or
  Books3-style JSONL) -> Document. Drops ``too_large`` (over ``max_bytes``, decided from the file size
  before reading, or while reading with a cap) and ``empty``.
- :class:`StripGutenberg` (step ``gutenberg``): cuts everything up to the ``*** START OF ...`` marker
  (and its older variants, e.g. ``*END*THE SMALL PRINT! ...``) plus the "Produced by ..." credits that
  follow it, and everything from the ``*** END OF ...`` / ``End of the Project Gutenberg EBook ...``
  marker on. The removed line counts go to metadata (``gutenberg_header_lines``,
  ``gutenberg_footer_lines``); stats.json shows the effect as ``bytes_read`` - ``bytes_kept`` of the step.
  Books without markers (Books3, pre-stripped texts) pass unchanged. Drops ``empty_after_strip``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Optional, Tuple

from corpusmill.core.document import Document, make_id
from corpusmill.filters import charset
from corpusmill.filters.base import Filter, Verdict, drop, keep
from corpusmill.filters.charset import UNDECODABLE

SOURCE = "books"

_START = re.compile(
    r"^\W*(?:"
    r"\*{3}\s*START OF (?:THE |THIS )?PROJECT GUTENBERG"  # modern and 2000s files
    r"|\*{3}\s*START OF THE COPYRIGHTED PROJECT GUTENBERG"
    r"|\*?END\*?\s*THE SMALL PRINT"  # 1990s etexts: the licence ("small print") ends, the text begins
    r"|\*{3}\s*START\*{0,3}\s*OF THE PROJECT GUTENBERG"
    r")",
    re.IGNORECASE,
)
_END = re.compile(
    r"^\W*(?:"
    r"\*{3}\s*END OF (?:THE |THIS )?PROJECT GUTENBERG"
    r"|\*{3}\s*END OF THE COPYRIGHTED PROJECT GUTENBERG"
    r"|END OF (?:THE |THIS )?PROJECT GUTENBERG"
    r"|END OF PROJECT GUTENBERG'?S"
    r"|END OF (?:THE |THIS )?PROJECT GUTENBERG'?S?\s+(?:E-?TEXT|E-?BOOK|ETEXT|EBOOK)"
    r"|\*{3}\s*END\*{0,3}\s*OF THE PROJECT GUTENBERG"
    r")",
    re.IGNORECASE,
)
# Credit lines right after the start marker ("Produced by ...", "E-text prepared by ...").
_CREDITS = re.compile(
    r"^\s*(?:produced by|e-?text prepared by|this e-?text was (?:prepared|produced) by|"
    r"transcribed (?:from|by)|prepared by)\b",
    re.IGNORECASE,
)
_HEAD_WINDOW = 1000  # the start marker is searched in the first lines only (it is never deeper)


def strip_gutenberg(text: str) -> Tuple[str, int, int]:
    """``(body, header_lines_removed, footer_lines_removed)``; a text without markers is returned whole."""
    lines = text.split("\n")
    start = 0
    for i, line in enumerate(lines[:_HEAD_WINDOW]):
        if _START.match(line):
            start = i + 1
            break
    if start:
        j = start
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j < len(lines) and _CREDITS.match(lines[j]):  # the credits paragraph, up to a blank line
            while j < len(lines) and lines[j].strip():
                j += 1
            start = j
    end = len(lines)
    for i in range(start, len(lines)):
        if _END.match(lines[i]):
            end = i
            break
    body = "\n".join(lines[start:end]).strip("\n\r ")
    return body, start, len(lines) - end


class StripGutenberg(Filter):
    name = "gutenberg"

    def __call__(self, doc: Document) -> Verdict:
        body, head, foot = strip_gutenberg(doc.text)
        doc = doc.replace(text=body).annotate(gutenberg_header_lines=head, gutenberg_footer_lines=foot)
        counts = {"header_lines_stripped": head, "footer_lines_stripped": foot}
        if not body.strip():
            return drop("empty_after_strip", doc, counts)
        return keep(doc, counts)


# ---------------------------------------------------------------------------------------------------
# reading one book
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class BookRecord:
    """One book, unparsed: a whole text file (``kind`` "txt") or one JSONL line (``kind`` "json")."""

    kind: str
    path: str
    key: str  # the book's stable name: the file's path relative to its input root, plus ``:line`` for JSONL
    location: str
    size: int = 0  # bytes on disk (text files) or of the line
    payload: Optional[bytes] = None
    error: str = ""
    too_large: bool = False

    @property
    def nbytes(self) -> int:
        return self.size


def decode_text(data: bytes) -> Tuple[Optional[str], str]:
    """``(text, encoding)`` by evidence (corpusmill.filters.charset): a BOM, UTF-8, else what
    charset-normalizer finds, Windows-1252 first when it is a candidate (old Gutenberg files).
    ``(None, "undecodable")`` when nothing decodes the bytes (binary data, a broken file)."""
    text, codec = charset.decode(data, prefer=("cp1252",))
    return text, ("utf-8" if codec == "utf-8-sig" else codec)


def _first(record: dict, *names: str) -> Any:
    lowered = {k.lower(): v for k, v in record.items()}
    for name in names:
        if lowered.get(name) not in (None, ""):
            return lowered[name]
    return None


def book_from_json(record: dict, rec: BookRecord) -> Tuple[str, dict, str, str]:
    """(text, metadata, key, url) from a Gutenberg-style (id, text, title, author, url; PG-19's
    short_book_title; the ``METADATA`` string of some Gutenberg dumps) or Books3-style (title, text; the
    Pile's ``meta.pile_set_name``) record."""
    if not isinstance(record, dict):
        raise ValueError(f"{rec.location}: expected a JSON object per line, got {type(record).__name__}")
    text = _first(record, "text", "content", "raw_content")
    if not isinstance(text, str):
        raise ValueError(
            f"{rec.location}: no 'text' string field; a book record needs one (fields: "
            f"{', '.join(sorted(record))[:200]})"
        )
    meta_in = _first(record, "meta", "metadata") or {}
    if isinstance(meta_in, str):
        try:
            meta_in = json.loads(meta_in)
        except json.JSONDecodeError:
            meta_in = {}
    meta_in = meta_in if isinstance(meta_in, dict) else {}
    merged = {**meta_in, **{k: v for k, v in record.items() if k.lower() not in ("text", "meta", "metadata")}}
    meta = {}
    title = _first(merged, "title", "short_book_title", "book_title")
    author = _first(merged, "author", "authors")
    book_id = _first(merged, "id", "book_id", "gutenberg_id", "ebook_id")
    collection = _first(merged, "pile_set_name", "source", "collection")
    if title is not None:
        meta["title"] = str(title)
    if author is not None:
        meta["author"] = author if isinstance(author, (str, list)) else str(author)
    if collection is not None:
        meta["collection"] = str(collection)
    if book_id is not None:
        meta["book_id"] = str(book_id)
    url = _first(merged, "url")
    key = f"{rec.key}:{book_id}" if book_id is not None else rec.key
    return text, meta, key, str(url) if url else ""


class ReadBook(Filter):
    """The ``read`` step: :class:`BookRecord` -> Document (see the module docstring)."""

    name = "read"

    def __init__(self, max_bytes: int = 64 << 20):
        self.max_bytes = max_bytes

    def __call__(self, rec: BookRecord) -> Verdict:
        if rec.error:
            raise IOError(rec.error)
        if rec.too_large or rec.size > self.max_bytes:
            return drop(
                "too_large",
                Document(
                    make_id(SOURCE, rec.key),
                    "",
                    SOURCE,
                    "",
                    "",
                    rec.location,
                    {"bytes": rec.size, "max_bytes": self.max_bytes},
                ),
            )
        meta: dict = {}
        url = ""
        key = rec.key
        if rec.kind == "txt":
            text, meta["encoding"] = decode_text(rec.payload or b"")
            if text is None:  # never stored as mojibake
                return drop(
                    UNDECODABLE, Document(make_id(SOURCE, key), "", SOURCE, "", "", rec.location, {"bytes": rec.size})
                )
        else:
            try:
                record = json.loads(rec.payload)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"{rec.location}: not a JSON line ({exc})") from None
            text, meta, key, url = book_from_json(record, rec)
            meta["encoding"] = "utf-8"
        if "\r" in text:  # most Gutenberg .txt files end lines CRLF: training text gets \n only
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        doc = Document(make_id(SOURCE, key), text, SOURCE, url, "", rec.location, meta)
        if not text.strip():
            return drop("empty", doc)
        return keep(doc)
