"""Text that can always be written as UTF-8.

Two things make a Python string unwritable as UTF-8, and both come from real inputs:

- a lone surrogate (``\\ud800``): JSON allows the escape, so ``json.loads`` returns it;
- a file name that is not UTF-8: ``os.listdir`` returns its bad bytes as surrogate escapes
  (``\\udcff`` for byte ``0xff``).

The rules (docs/reliability.md), applied where a document is made, so no coder, key function or
writer ever sees such a string:

- in a document's text, id, url, timestamp, source and metadata, every lone surrogate becomes U+FFFD
  (the glue counts the document under ``counters.surrogates_replaced``);
- in a location (``path@offset``), which names a file a person must find, the bytes of the name are
  kept readable: ``\\xff`` for a byte that is not UTF-8 (:func:`printable`).

The real file name is kept where the file must be opened again (the readers carry it in their own
records, which are pickled, not UTF-8 encoded).
"""

from __future__ import annotations

import re
from typing import Any, Tuple

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def has_surrogates(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def replace_surrogates(text: str) -> Tuple[str, int]:
    """``text`` with every lone surrogate replaced by U+FFFD, and how many there were."""
    if text.isascii():
        return text, 0
    return _SURROGATE.subn(REPLACEMENT, text)


def printable(path: str) -> str:
    """A path or location as valid UTF-8 text: the bytes of a non-UTF-8 file name as ``\\xNN``."""
    if not has_surrogates(path):
        return path
    try:
        raw = path.encode("utf-8", "surrogateescape")  # os.listdir's escapes back to the real bytes
    except UnicodeEncodeError:
        raw = path.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")


def clean_value(value: Any) -> Tuple[Any, int]:
    """A JSON-like value (str, list, dict) with lone surrogates replaced, and how many there were."""
    if isinstance(value, str):
        return replace_surrogates(value)
    if isinstance(value, dict):
        total, out = 0, {}
        for key, item in value.items():
            key, n = clean_value(key) if isinstance(key, str) else (key, 0)
            item, m = clean_value(item)
            out[key] = item
            total += n + m
        return (out, total) if total else (value, 0)
    if isinstance(value, (list, tuple)):
        total, out = 0, []
        for item in value:
            item, n = clean_value(item)
            out.append(item)
            total += n
        return (type(value)(out), total) if total else (value, 0)
    return value, 0
