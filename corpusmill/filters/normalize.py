"""Text normalization as CCNet does it.

Two different normalizations:

- :func:`normalize_text` cleans the text that is kept: Unicode NFC, control and format characters
  removed, runs of white space folded to one space, lines stripped, empty lines removed (a CCNet
  document is one paragraph per line).
- :func:`normalize_for_dedup` is only for hashing lines: lowercase, every digit -> ``0``, punctuation
  and non-printing characters removed, so that lines that differ only in case, numbers or punctuation
  (dates in footers, counters, "Page 3 of 7") hash the same.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import List, Optional

from corpusmill.filters.base import Filter, Verdict, drop, keep

_SPACES = re.compile(r"[^\S\n]+")  # white space except newline


def _is_removable(ch: str) -> bool:
    cat = unicodedata.category(ch)
    # Cc: control, Cf: format (zero-width, BOM, soft hyphen), Co/Cs: private use / surrogates
    return cat in ("Cc", "Cf", "Co", "Cs") and ch not in "\n\t"


def _strip_nonprinting(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(ch for ch in text if ch in "\n\t" or not _is_removable(ch))


def normalize_text(text: str) -> str:
    """NFC, non-printing characters removed, white space folded, empty lines removed."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = []
    for line in text.split("\n"):
        line = _SPACES.sub(" ", _strip_nonprinting(line)).strip()
        if line:
            lines.append(line)
    return "\n".join(lines)


class Normalize(Filter):
    """The ``normalize`` step. Drops ``empty`` when nothing printable is left."""

    name = "normalize"

    def __call__(self, doc) -> Verdict:
        text = normalize_text(doc.text)
        if not text:
            return drop("empty")
        return keep(doc if text == doc.text else doc.replace(text=text))


_DIGITS = re.compile(r"\d")


def normalize_for_dedup(line: str) -> str:
    """The form a line is hashed in: lowercase, digits -> 0, punctuation/non-printing removed."""
    line = _DIGITS.sub("0", line.strip().lower())
    return "".join(ch for ch in line if not unicodedata.category(ch).startswith(("P", "C"))).strip()


def line_hash(line: str) -> Optional[int]:
    """First 8 bytes of SHA-1 of the dedup-normalized line, as an int; None for a line with no content."""
    norm = normalize_for_dedup(line)
    if not norm:
        return None
    return int.from_bytes(hashlib.sha1(norm.encode("utf-8")).digest()[:8], "big")


def line_hashes(text: str) -> List[Optional[int]]:
    return [line_hash(line) for line in text.split("\n")]
