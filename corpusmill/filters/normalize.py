"""Text normalization as CCNet does it.

Two different normalizations:

- :func:`normalize_text` cleans the text that is kept: Unicode NFC, control and format characters
  removed, runs of white space folded to one space, lines stripped, empty lines removed (a CCNet
  document is one paragraph per line).
- :func:`normalize_for_dedup_ccnet` is only for hashing lines, exactly as cc_net: lowercase, every
  digit -> ``0``, cc_net's Unicode punctuation and the control characters removed, so that lines that
  differ only in case or numbers (dates in footers, counters, "Page 3 of 7") hash the same.
  :func:`normalize_for_dedup` is the wider option: all punctuation removed, white space folded.
"""

from __future__ import annotations

import re
import unicodedata
from typing import List

from corpusmill.core.hashing import stable_hash_signed
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

    clean_output = True  # cuts, joins or annotates clean text (Filter.clean_output)

    name = "normalize"

    def __call__(self, doc) -> Verdict:
        text = normalize_text(doc.text)
        if not text:
            return drop("empty")
        return keep(doc if text == doc.text else doc.replace(text=text))


_DIGITS = re.compile(r"\d")

# cc_net's dedup normalization (text_normalizer.normalize_for_dedup): the Unicode punctuation it maps in
# its UNICODE_PUNCT table and the C0/C1 control characters are removed; ASCII punctuation and white space
# stay. These 34 characters are cc_net's table, listed here as data.
CCNET_UNICODE_PUNCT = "，。、„”“«»１」「《》´∶：？！（）；–—．～’…━〈〉【】％►"
_CONTROL = "".join(chr(c) for c in list(range(0, 32)) + list(range(127, 160)))
_CCNET_REMOVE = re.compile("[" + "".join(re.escape(ch) for ch in CCNET_UNICODE_PUNCT + _CONTROL) + "]")
DEDUP_NORMALIZERS = ("ccnet", "wide")


# ASCII lines (most of a crawl): the same in one C pass, str.translate (digits -> 0, controls removed)
_CCNET_ASCII = str.maketrans({**{chr(c): None for c in list(range(0, 32)) + [127]}, **dict.fromkeys("123456789", "0")})


def normalize_for_dedup_ccnet(line: str) -> str:
    """cc_net's form of a line for hashing: stripped, lowercased, digits -> 0, its Unicode punctuation
    and control characters removed. A line may normalize to "" (``«``, ``—``): it is hashed like any."""
    line = line.strip()
    if not line:
        return line
    if line.isascii():
        return line.lower().translate(_CCNET_ASCII)
    return _CCNET_REMOVE.sub("", _DIGITS.sub("0", line.lower()))


_ASCII_PUNCT = str.maketrans(
    "", "", "".join(chr(c) for c in range(128) if unicodedata.category(chr(c)).startswith(("P", "C")))
)
_ANY_SPACE = re.compile(r"\s+")


def normalize_for_dedup(line: str) -> str:
    """The wide form (``--dedup-normalize wide``, and C4's sentence spans): lowercased, digits -> 0, every
    Unicode punctuation and non-printing character removed, then white space folded to one space, so
    ``| x | |`` and ``| x | | | |`` hash the same."""
    line = _DIGITS.sub("0", line.strip().lower())
    if line.isascii():
        line = line.translate(_ASCII_PUNCT)
    else:
        line = "".join(ch for ch in line if not unicodedata.category(ch).startswith(("P", "C")))
    return _ANY_SPACE.sub(" ", line).strip()


def line_hash(line: str, normalize: str = "ccnet") -> int:
    """First 8 bytes of SHA-1 of the dedup-normalized line (cc_net's HASH_SIZE), as a signed 64-bit
    int (the same 8 bytes). Every line has one, an empty normalized form included (cc_net hashes "" too)."""
    norm = normalize_for_dedup_ccnet(line) if normalize == "ccnet" else normalize_for_dedup(line)
    return stable_hash_signed(norm)


def line_hashes(text: str, normalize: str = "ccnet") -> List[int]:
    if normalize not in DEDUP_NORMALIZERS:
        raise ValueError(f"unknown dedup normalization {normalize!r}; use one of {', '.join(DEDUP_NORMALIZERS)}")
    norm = normalize_for_dedup_ccnet if normalize == "ccnet" else normalize_for_dedup
    return [stable_hash_signed(norm(line)) for line in text.split("\n")]
