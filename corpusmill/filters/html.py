"""HTML -> main text: charset detection and boilerplate-free extraction with trafilatura.

Pure functions over bytes and strings; no Beam, no files.
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

from corpusmill.filters import charset

HTML_TYPES = ("text/html", "application/xhtml+xml")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:\-]+)", re.I)


def mime_type(content_type: Optional[str]) -> str:
    """``text/html; charset=utf-8`` -> ``text/html``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_html(content_type: Optional[str]) -> bool:
    return mime_type(content_type) in HTML_TYPES


def _valid_codec(name: Optional[str]) -> Optional[str]:
    return charset.codec_name(name)


def declared_charset(body: bytes, content_type: Optional[str] = None) -> Tuple[Optional[str], str]:
    """The charset a page declares and where: ``header`` (HTTP), ``meta`` (the first 4 KB), or
    ``(None, "")``. A declared charset that Python does not know is ignored."""
    if content_type:
        m = _HEADER_CHARSET.search(content_type)
        codec = _valid_codec(m.group(1)) if m else None
        if codec:
            return codec, "header"
    m = _META_CHARSET.search(body[:4096])
    codec = _valid_codec(m.group(1).decode("ascii", "ignore")) if m else None
    if codec:
        return codec, "meta"
    return None, ""


def detect_charset(body: bytes, content_type: Optional[str] = None) -> Tuple[str, str]:
    """The charset of an HTML body and where it came from: ``header``, ``meta`` (a declaration that
    decodes the page), or ``detected`` (corpusmill.filters.charset: UTF-8, else charset-normalizer)."""
    declared, where = declared_charset(body, content_type)
    text, codec = charset.decode(body, declared, prefer=("cp1252",))
    if text is None:
        return declared or "utf-8", where or "detected"
    return codec, (where if codec == declared else "detected")


def decode_html(body: bytes, content_type: Optional[str] = None) -> Tuple[Optional[str], str]:
    """Decode an HTML body by evidence (corpusmill.filters.charset); returns ``(text, charset)``:
    the declared charset when it decodes the page cleanly, else UTF-8, else what charset-normalizer
    finds. ``(None, "undecodable")`` when nothing decodes it: never mojibake."""
    declared, _ = declared_charset(body, content_type)
    text, codec = charset.decode(body, declared, prefer=("cp1252",))
    if text is None:
        return None, codec
    return text.lstrip("\ufeff"), codec


EXTRACTORS = ("trafilatura", "resiliparse")
# A page with more markup than this ('<' characters) is dropped as too_complex before extraction: the
# cost of trafilatura grows faster than the page (python3.11-doc's contents.html, 97,689 tags, took
# 8 s, a fifth of the extraction time of all 530 pages), and a count of the bytes, unlike a time
# limit, gives the same output on any machine under any load.
MAX_PAGE_TAGS = 50_000


def markup_size(html: str) -> int:
    """What the per-page cap counts: the '<' characters of the page (about its elements)."""
    return html.count("<")


def extract_main_text(html: str, url: str = "", fast: bool = False, extractor: str = "trafilatura") -> Optional[str]:
    """Main text of a page (no navigation, ads or comments) as paragraphs separated by newlines.

    ``trafilatura`` (the default): ``fast`` skips its second opinion (the comparison with the
    readability/jusText fallbacks): about 40% less time on documentation pages, slightly more
    boilerplate on unusual layouts. ``resiliparse``: its main-content extractor (Resiliparse's
    ``extract_plain_text(main_content=True)``), about 15x faster on the same pages (14.8x, bench/extractors.py) and a little more
    navigation kept (docs/ccnet.md has the measured comparison).
    """
    if not html.strip():
        return None
    if extractor == "resiliparse":
        from resiliparse.extract.html2text import extract_plain_text

        text = extract_plain_text(
            html, main_content=True, alt_texts=False, links=False, form_fields=False, noscript=False, list_bullets=False
        )
        return text.strip() or None
    if extractor != "trafilatura":
        raise ValueError(f"unknown extractor {extractor!r}; use one of {', '.join(EXTRACTORS)}")
    import trafilatura

    text = trafilatura.extract(
        html,
        url=url or None,
        include_comments=False,
        include_tables=True,
        deduplicate=False,
        output_format="txt",
        fast=fast,
    )
    return text or None
