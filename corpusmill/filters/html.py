"""HTML -> main text: charset detection and boilerplate-free extraction with trafilatura.

Pure functions over bytes and strings; no Beam, no files.
"""

from __future__ import annotations

import codecs
import re
from typing import Optional, Tuple

HTML_TYPES = ("text/html", "application/xhtml+xml")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:\-]+)", re.I)


def mime_type(content_type: Optional[str]) -> str:
    """``text/html; charset=utf-8`` -> ``text/html``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_html(content_type: Optional[str]) -> bool:
    return mime_type(content_type) in HTML_TYPES


def _valid_codec(name: Optional[str]) -> Optional[str]:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None


def detect_charset(body: bytes, content_type: Optional[str] = None) -> Tuple[str, str]:
    """The charset of an HTML body and where it came from: ``header``, ``meta`` or ``detected``.

    Order as browsers do it (minus BOM sniffing, which ``decode_html`` handles): the HTTP header's
    charset, then a ``<meta charset>`` / ``http-equiv`` in the first 4 KB, then detection
    (charset-normalizer). A declared charset that Python does not know is ignored.
    """
    if content_type:
        m = _HEADER_CHARSET.search(content_type)
        codec = _valid_codec(m.group(1)) if m else None
        if codec:
            return codec, "header"
    m = _META_CHARSET.search(body[:4096])
    codec = _valid_codec(m.group(1).decode("ascii", "ignore")) if m else None
    if codec:
        return codec, "meta"
    try:
        body.decode("utf-8")
        return "utf-8", "detected"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(body[:200_000]).best()
    return (best.encoding if best is not None else "utf-8"), "detected"


def decode_html(body: bytes, content_type: Optional[str] = None) -> Tuple[str, str]:
    """Decode an HTML body to text; returns (text, charset). Undecodable bytes become U+FFFD."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return body.decode(codec, "replace").lstrip("\ufeff"), codec
    charset, _ = detect_charset(body, content_type)
    return body.decode(charset, "replace"), charset


def extract_main_text(html: str, url: str = "", fast: bool = False) -> Optional[str]:
    """Main text of a page (no navigation, ads or comments) as paragraphs separated by newlines.

    ``fast`` skips trafilatura's second opinion (its comparison with the readability/jusText
    fallbacks): about 40% less time on documentation pages (docs/ccnet.md), slightly more
    boilerplate on unusual layouts.
    """
    import trafilatura

    if not html.strip():
        return None
    text = trafilatura.extract(html, url=url or None, include_comments=False, include_tables=True,
                               deduplicate=False, output_format="txt", fast=fast)
    return text or None
