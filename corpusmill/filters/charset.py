"""Decoding text by evidence, never into mojibake.

:func:`decode` tries, in order, and takes the first that decodes the bytes *cleanly* (strict):

1. a byte-order mark (UTF-8, UTF-16, UTF-32);
2. the declared charset (an HTTP header, a ``<meta charset>``), when there is one;
3. UTF-8;
4. UTF-8 (declared or not) with a few bad bytes replaced by U+FFFD, when they are at most
   ``MAX_REPLACEMENT_SHARE`` of the text and the valid multi-byte characters outnumber them ten to
   one: a real UTF-8 page with one truncated character is UTF-8, not Windows-1252 mojibake of all its
   other characters, while a Windows-1252 page that says UTF-8 has almost no valid multi-byte sequence;
5. charset-normalizer's candidates: first the Windows code page of the language it finds, when it is
   a candidate (its ranking of the Latin code pages is weak: Turkish text came first as cp1250), then a code page in ``prefer``
   that is among them (Windows-1252 for old Gutenberg files), then its ranking.

When nothing decodes, the result is ``None``: the caller drops the record as ``undecodable``.

:func:`replacement_share` is the share of U+FFFD in a text. The CCNet stage and C4 drop a page whose
share is above ``MAX_REPLACEMENT_SHARE`` (``undecodable``). Measured (docs/reliability.md): none of
the 593 real HTML pages and WET records in tests/data and python3.11-doc has a single U+FFFD; a
Russian or Japanese page whose header wrongly says UTF-8 has a share of 0.45 to 0.9 when decoded as
the header says.
"""

from __future__ import annotations

import codecs
from typing import Optional, Sequence, Tuple

UNDECODABLE = "undecodable"
MAX_REPLACEMENT_SHARE = 0.01
REPLACEMENT = "\ufffd"

# the Windows code page of each language that has one (charset-normalizer's language names)
LANGUAGE_CODEPAGES = {
    **dict.fromkeys(
        [
            "English",
            "German",
            "French",
            "Spanish",
            "Portuguese",
            "Italian",
            "Dutch",
            "Danish",
            "Swedish",
            "Norwegian",
            "Finnish",
            "Indonesian",
            "Catalan",
        ],
        "cp1252",
    ),
    **dict.fromkeys(["Polish", "Czech", "Slovak", "Hungarian", "Slovene", "Croatian", "Romanian"], "cp1250"),
    **dict.fromkeys(["Russian", "Ukrainian", "Bulgarian", "Serbian", "Belarusian", "Macedonian"], "cp1251"),
    "Greek": "cp1253",
    "Turkish": "cp1254",
    "Hebrew": "cp1255",
    "Arabic": "cp1256",
    "Persian": "cp1256",
    **dict.fromkeys(["Lithuanian", "Latvian", "Estonian"], "cp1257"),
    "Vietnamese": "cp1258",
}

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),  # before UTF-16: BOM_UTF32_LE starts with it
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def codec_name(name: Optional[str]) -> Optional[str]:
    """Python's name for a charset label, or None for a label Python does not know."""
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None


def replacement_share(text: str) -> float:
    """The share of U+FFFD among the characters of ``text`` (0 for an empty text)."""
    if not text or REPLACEMENT not in text:
        return 0.0
    return text.count(REPLACEMENT) / len(text)


def _strict_count(data: bytes) -> int:
    """U+FFFD characters the bytes themselves hold (EF BF BD), as opposed to decoding errors."""
    return data.count(b"\xef\xbf\xbd")


def _strict(data: bytes, codec: str) -> Optional[str]:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode(
    data: bytes,
    declared: Optional[str] = None,
    prefer: Sequence[str] = ("cp1252",),
    max_share: float = MAX_REPLACEMENT_SHARE,
) -> Tuple[Optional[str], str]:
    """``(text, codec)`` by the rules of the module docstring, or ``(None, "undecodable")``."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            text = _strict(data, codec)
            if text is not None:
                return text.lstrip("\ufeff"), codec
    declared = codec_name(declared)
    for codec in dict.fromkeys(c for c in (declared, "utf-8") if c):
        text = _strict(data, codec)
        if text is not None:
            return text, codec
    if declared in (None, "utf-8"):
        text = data.decode("utf-8", "replace")
        bad = text.count(REPLACEMENT) - _strict_count(data)
        wide = sum(1 for ch in text if ord(ch) > 127) - text.count(REPLACEMENT)
        if bad <= max_share * len(text) and wide >= 10 * bad:
            return text, "utf-8"
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    candidates = [m.encoding for m in matches]
    names = {codec_name(c) for c in candidates}
    # charset-normalizer tells the language better than the Latin code page: that language's own
    # legacy code page first (Turkish text is cp1254, not the cp1250 it ranks first)
    own = [
        LANGUAGE_CODEPAGES[m.language] for m in matches[:1] if LANGUAGE_CODEPAGES.get(m.language) in names
    ]  # only a candidate: KOI8-U is not cp1251
    preferred = own + [p for p in (codec_name(c) for c in prefer) if p and p in names]
    for codec in dict.fromkeys(preferred + candidates):
        text = _strict(data, codec)
        if text is not None:
            # the same text under a preferred name (cp1250 and cp1252 agree on most bytes): say that one
            for alias in [p for p in (codec_name(c) for c in prefer) if p]:
                if alias != codec_name(codec) and _strict(data, alias) == text:
                    return text, alias
            return text, codec_name(codec) or codec
    return None, UNDECODABLE
