"""MediaWiki dump pages -> plain text (the pure part of the Wikipedia source; Beam is in
corpusmill.pipelines.wikipedia).

Two filters:

- :class:`ParseWikiPage` (step ``parse``): one ``<page>...</page>`` fragment of a dump (raw bytes, in
  the dump's declared encoding) -> a Document holding the page's wikitext. The fragment is parsed with
  a hardened lxml parser (no DTD, no entity resolution, no network); a fragment that references any
  entity other than XML's five predefined ones is refused (a dump has none: that is an XXE or
  entity-expansion attempt). Drops ``namespace`` (not the main namespace 0) and ``redirect``.
- :class:`WikitextToText` (step ``wikitext``): wikitext -> plain text with mwparserfromhell. Templates,
  ``<ref>``, comments, tables, files/images, categories, interlanguage links, magic words and bare URLs
  are removed; links become their anchor text; headings are kept as lines of text; boilerplate sections
  (References, External links, See also, ... in the page's language, one of the 20 LLaMA languages) are
  dropped with their content.
  Drops ``empty`` when nothing is left.
"""

from __future__ import annotations

import dataclasses
import html
import re
import unicodedata
import urllib.parse
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple

from corpusmill.core.document import Document, make_id
from corpusmill.filters.base import Filter, Verdict, drop, keep

SOURCE = "wikipedia"

# Section titles dropped with their content (matched case-insensitively, whitespace-normalized).
# The 20 LLaMA languages: bg ca cs da de en es fr hr hu it nl pl pt ro ru sl sr sv uk.
BOILERPLATE_SECTIONS = {
    "en": [
        "References",
        "External links",
        "See also",
        "Notes",
        "Further reading",
        "Bibliography",
        "Sources",
        "Footnotes",
        "Citations",
        "Notes and references",
        "References and notes",
        "Works cited",
        "Explanatory notes",
        "Other websites",
    ],
    "bg": ["Бележки", "Източници", "Външни препратки", "Вижте също", "Литература", "Библиография"],
    "ca": ["Referències", "Enllaços externs", "Vegeu també", "Notes", "Bibliografia", "Notes i referències"],
    "cs": ["Reference", "Externí odkazy", "Související články", "Literatura", "Poznámky", "Odkazy"],
    "da": ["Referencer", "Eksterne henvisninger", "Se også", "Kilder", "Noter", "Litteratur"],
    "de": ["Einzelnachweise", "Weblinks", "Siehe auch", "Literatur", "Anmerkungen", "Quellen", "Fußnoten", "Belege"],
    "es": [
        "Referencias",
        "Enlaces externos",
        "Véase también",
        "Notas",
        "Bibliografía",
        "Fuentes",
        "Notas y referencias",
    ],
    "fr": [
        "Références",
        "Liens externes",
        "Voir aussi",
        "Notes et références",
        "Bibliographie",
        "Notes",
        "Articles connexes",
    ],
    "hr": ["Izvori", "Vanjske poveznice", "Vidi još", "Literatura", "Bilješke"],
    "hu": ["Jegyzetek", "Források", "További információk", "Kapcsolódó szócikkek", "Külső hivatkozások", "Irodalom"],
    "it": ["Note", "Bibliografia", "Voci correlate", "Collegamenti esterni", "Altri progetti", "Riferimenti"],
    "nl": [
        "Referenties",
        "Externe links",
        "Externe link",
        "Zie ook",
        "Bronnen",
        "Noten",
        "Literatuur",
        "Bronvermelding",
    ],
    "pl": ["Przypisy", "Linki zewnętrzne", "Zobacz też", "Bibliografia", "Uwagi"],
    "pt": ["Referências", "Ligações externas", "Ver também", "Notas", "Bibliografia", "Leitura adicional", "Fontes"],
    "ro": ["Referințe", "Referinţe", "Legături externe", "Vezi și", "Vezi şi", "Note", "Bibliografie"],
    "ru": ["Примечания", "Литература", "Ссылки", "См. также", "Источники"],
    "sl": ["Sklici", "Zunanje povezave", "Glej tudi", "Viri", "Literatura", "Opombe"],
    "sr": [
        "Референце",
        "Спољашње везе",
        "Види још",
        "Литература",
        "Напомене",
        "Извори",
        "Reference",
        "Spoljašnje veze",
        "Vidi još",
        "Literatura",
        "Napomene",
        "Izvori",
    ],
    "sv": ["Referenser", "Externa länkar", "Se även", "Källor", "Noter", "Litteratur", "Vidare läsning"],
    "uk": ["Примітки", "Джерела", "Посилання", "Див. також", "Література"],
}

# Namespaces whose links carry no text: 6 = File, 14 = Category. The dump's <siteinfo> gives their local
# names (Datei, Kategorie, Fichier, ...); the English canonical names and aliases always work.
CANONICAL_NO_TEXT_NAMESPACES = ("file", "image", "category", "media")

# Tags whose content is not article prose.
DROPPED_TAGS = frozenset(
    {
        "ref",
        "references",
        "table",
        "gallery",
        "timeline",
        "imagemap",
        "math",
        "chem",
        "ce",
        "score",
        "graph",
        "mapframe",
        "maplink",
        "templatedata",
        "templatestyles",
        "noinclude",
        "includeonly",
        "onlyinclude",
        "syntaxhighlight",
        "source",
        "hiero",
        "inputbox",
        "categorytree",
        "section",
        "indicator",
        "style",
        "script",
    }
)
LINE_BREAK_TAGS = frozenset({"br", "p", "div", "li", "dd", "dt", "tr", "hr", "blockquote", "poem"})

_NS_KEY = "_no_text_namespaces"  # carried from ``parse`` to ``wikitext`` only; never written
_XML_PREDEFINED = frozenset({"amp", "lt", "gt", "quot", "apos"})
_ENTITY_REF = re.compile(rb"&([A-Za-z_:][\w.:-]*);")
_INTERLANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z]{2,8}){0,2}$|^simple$")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_STYLE_QUOTES = re.compile(r"'{2,}")
_BLANKS = re.compile(r"[ \t\u00a0]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def _norm_title(title: str) -> str:
    return " ".join(unicodedata.normalize("NFC", title).casefold().split()).strip(" :.")


def boilerplate_titles(languages: Optional[Iterable[str]] = None) -> FrozenSet[str]:
    """Normalized boilerplate section titles of ``languages`` (all 20 when None)."""
    langs = list(languages) if languages else list(BOILERPLATE_SECTIONS)
    out = set()
    for lang in langs:
        out.update(_norm_title(t) for t in BOILERPLATE_SECTIONS.get(lang, ()))
    return frozenset(out)


_ALL_BOILERPLATE = boilerplate_titles()
_BOILERPLATE_BY_LANGUAGE = {lang: boilerplate_titles([lang]) for lang in BOILERPLATE_SECTIONS}


def boilerplate_for(language: str) -> FrozenSet[str]:
    """The boilerplate titles of a page's language (``pt``, ``sr-ec`` -> ``sr``); all 20 languages' titles
    for another language. Per language, because one language's boilerplate is another's content
    ("Literatura" is a bibliography in Czech or Polish, a section on literature in Portuguese or Spanish)."""
    lang = (language or "").lower().split("-", 1)[0]
    return _BOILERPLATE_BY_LANGUAGE.get(lang, _ALL_BOILERPLATE)


# ---------------------------------------------------------------------------------------------------
# XML: one page fragment
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class SiteInfo:
    """What every page of one dump shares (read once from the dump's header)."""

    dbname: str = ""
    language: str = ""
    base_url: str = ""  # https://en.wikipedia.org/wiki/Main_Page
    encoding: str = "utf-8"
    no_text_namespaces: tuple = ()  # lowercased local names of namespaces 6 and 14

    def page_url(self, title: str) -> str:
        if not self.base_url:
            return ""
        root = self.base_url.rsplit("/", 1)[0] + "/"
        return root + urllib.parse.quote(title.replace(" ", "_"), safe="/:,()'!*@$;~-._")


@dataclasses.dataclass(slots=True)
class PageRecord:
    """One raw ``<page>`` fragment (bytes in the dump's encoding) or an unreadable region."""

    path: str
    location: str
    site: SiteInfo
    payload: bytes = b""
    error: str = ""

    @property
    def nbytes(self) -> int:
        return len(self.payload)


def hardened_parser():
    """An lxml parser that never loads a DTD, resolves entities or touches the network."""
    from lxml import etree

    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        recover=False,
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def refuse_entities(payload: bytes, encoding: str, where: str) -> None:
    """Raise if the XML bytes use an entity other than the five predefined ones (or a DTD)."""
    text = (
        payload
        if encoding.replace("-", "").lower() in ("utf8", "ascii", "latin1", "iso88591")
        else payload.decode(encoding, "replace").encode("utf-8")
    )
    if b"<!DOCTYPE" in text or b"<!ENTITY" in text:
        raise ValueError(
            f"{where}: the XML declares a DTD or entities; MediaWiki dumps have none, so this is "
            f"refused (entities are never resolved: XXE / entity-expansion protection)"
        )
    for m in _ENTITY_REF.finditer(text):
        if m.group(1).decode("ascii", "replace") not in _XML_PREDEFINED:
            raise ValueError(
                f"{where}: the page references the XML entity &{m.group(1).decode('ascii', 'replace')};"
                f" which a MediaWiki dump never declares; refused (entities are never resolved)"
            )


def parse_page_xml(payload: bytes, encoding: str, where: str):
    """Parse one ``<page>`` fragment with the hardened parser; returns the lxml element."""
    from lxml import etree

    refuse_entities(payload, encoding, where)
    try:
        text = payload.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise ValueError(f"{where}: page is not valid {encoding} ({exc})") from None
    try:
        return etree.fromstring(text, hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"{where}: malformed page XML ({exc})") from None


def _child(elem, name: str):
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


class ParseWikiPage(Filter):
    """The ``parse`` step: a :class:`PageRecord` -> Document(text=wikitext) for articles of namespace 0."""

    name = "parse"

    def __init__(self, namespaces: Sequence[int] = (0,)):
        self.namespaces = frozenset(int(n) for n in namespaces)

    def __call__(self, record: PageRecord) -> Verdict:
        if record.error:
            raise IOError(record.error)
        site = record.site
        page = parse_page_xml(record.payload, site.encoding, record.location)
        if _local(page.tag) != "page":
            raise ValueError(f"{record.location}: expected a <page> element, found <{_local(page.tag)}>")
        title = (_child(page, "title").text or "") if _child(page, "title") is not None else ""
        ns_el = _child(page, "ns")
        ns = int(ns_el.text) if ns_el is not None and (ns_el.text or "").strip().lstrip("-").isdigit() else 0
        if ns not in self.namespaces:
            return drop("namespace")
        if _child(page, "redirect") is not None:
            return drop("redirect")
        page_id = (_child(page, "id").text or "").strip() if _child(page, "id") is not None else ""
        revision = _child(page, "revision")
        text_el = _child(revision, "text") if revision is not None else None
        wikitext = (text_el.text or "") if text_el is not None else ""
        timestamp_el = _child(revision, "timestamp") if revision is not None else None
        timestamp = (timestamp_el.text or "").strip() if timestamp_el is not None else ""
        if wikitext.lstrip()[:9].upper() == "#REDIRECT":  # very old dumps lack <redirect/>
            return drop("redirect")
        key = f"{site.dbname or site.language}:{page_id or title}"
        meta = {
            "title": title,
            "language": site.language,
            "page_id": page_id,
            "dbname": site.dbname,
            _NS_KEY: list(site.no_text_namespaces),
        }
        doc = Document(make_id(SOURCE, key), wikitext, SOURCE, site.page_url(title), timestamp, record.location, meta)
        return keep(doc)


# ---------------------------------------------------------------------------------------------------
# wikitext -> text
# ---------------------------------------------------------------------------------------------------
class _Renderer:
    def __init__(self, no_text_namespaces: FrozenSet[str]):
        self.no_text = no_text_namespaces

    def render(self, code) -> str:
        out: List[str] = []
        for node in code.nodes:
            out.append(self.node(node))
        return "".join(out)

    def node(self, node) -> str:  # noqa: C901 - one branch per node type
        import mwparserfromhell.nodes as n

        if isinstance(node, n.Text):
            return _STYLE_QUOTES.sub("", _MAGIC_WORD.sub("", node.value))
        if isinstance(node, (n.Template, n.Comment, n.Argument)):
            return ""
        if isinstance(node, n.HTMLEntity):
            try:
                return node.normalize()
            except Exception:  # noqa: BLE001 - an unknown entity stays as written
                return str(node)
        if isinstance(node, n.Heading):
            title = self.render(node.title).strip()
            return f"\n\x00H{node.level}\x00{title}\n"
        if isinstance(node, n.Wikilink):
            target = str(node.title).strip()
            colon = target.startswith(":")
            prefix = target.lstrip(":").split(":", 1)[0].strip().lower() if ":" in target else ""
            if prefix and not colon and (prefix in self.no_text or _INTERLANGUAGE.match(prefix)):
                return ""  # file, image, category or interlanguage link
            if node.text is not None:
                return self.render(node.text)
            shown = target.lstrip(":")
            return shown.split("#", 1)[0] if "#" in shown and not shown.startswith("#") else shown.lstrip("#")
        if isinstance(node, n.ExternalLink):
            return self.render(node.title) if node.title is not None else ""
        if isinstance(node, n.Tag):
            tag = str(node.tag).strip().lower()
            if tag in DROPPED_TAGS:
                return ""
            if tag == "nowiki":
                return str(node.contents) if node.contents is not None else ""
            inner = self.render(node.contents) if node.contents is not None else ""
            if tag in ("li", "dt", "dd") and node.wiki_markup:  # list bullets: the item text on its line
                return inner
            if tag in LINE_BREAK_TAGS:
                return "\n" + inner if not node.wiki_markup else inner
            return inner
        return str(node)


def wikitext_to_text(
    wikitext: str,
    no_text_namespaces: Iterable[str] = (),
    boilerplate: FrozenSet[str] = _ALL_BOILERPLATE,
    counts: Optional[Dict[str, int]] = None,
) -> str:
    """Plain text of a page's wikitext (see the module docstring for what is removed). ``counts`` gets
    ``bare_headings_removed``: headings left with no text under them (a section that was only a table)."""
    import mwparserfromhell

    code = mwparserfromhell.parse(wikitext, skip_style_tags=True)
    names = frozenset(CANONICAL_NO_TEXT_NAMESPACES) | frozenset(x.lower() for x in no_text_namespaces)
    rendered = _Renderer(names).render(code)
    entries: List[Tuple[int, str]] = []  # (heading level, title) or (0, a line of text)
    skip_level = 0  # inside a boilerplate section of this heading level (0: not skipping)
    for line in rendered.split("\n"):
        if line.startswith("\x00H"):
            level = int(line[2])
            title = line[4:].strip()
            if skip_level and level > skip_level:
                continue
            skip_level = level if _norm_title(title) in boilerplate else 0
            if not skip_level and title:
                entries.append((level, title))
            continue
        if skip_level:
            continue
        entries.append((0, _BLANKS.sub(" ", line).strip()))
    kept = _without_bare_headings(entries)
    if counts is not None:
        counts["bare_headings_removed"] = sum(1 for level, _ in entries if level) - sum(1 for level, _ in kept if level)
    lines: List[str] = []
    for level, line in kept:
        lines += ["", line] if level else [line]
    text = "\n".join(lines)
    # an entity the renderer passed through as text (inside some template arguments): the character it names
    text, decoded = _ENTITY.subn(lambda m: html.unescape(m.group(0)), text)
    if counts is not None:
        counts["entities_decoded"] = decoded
    return _MANY_NEWLINES.sub("\n\n", text).strip()


_ENTITY = re.compile(r"&(?:[a-zA-Z][a-zA-Z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")


def _without_bare_headings(entries: List[Tuple[int, str]]) -> List[Tuple[int, str]]:
    """Drop each heading with no text before the next heading of its level or above (its section and
    sub-sections are empty: their tables, galleries or templates were removed)."""
    has_text = [False] * len(entries)
    # from the end: per level k, whether text comes before the next heading of level <= k
    text_below: Dict[int, bool] = {}
    for i in range(len(entries) - 1, -1, -1):
        level, line = entries[i]
        if level == 0:
            if line:
                text_below = {k: True for k in range(1, 7)}
            continue
        has_text[i] = text_below.get(level, False)
        for k in range(level, 7):  # it ends the sections of its level and deeper that come before it
            text_below[k] = False
    return [e for i, e in enumerate(entries) if e[0] == 0 or has_text[i]]


class WikitextToText(Filter):
    """The ``wikitext`` step: Document(text=wikitext) -> Document(text=plain text); drops ``empty``."""

    name = "wikitext"

    def __init__(self, min_chars: int = 1):
        self.min_chars = min_chars

    def __call__(self, doc: Document) -> Verdict:
        meta = dict(doc.metadata)
        no_text = meta.pop(_NS_KEY, ())  # the dump's local File/Category names, passed on by ``parse``
        counts: Dict[str, int] = {}
        text = wikitext_to_text(doc.text, no_text, boilerplate_for(meta.get("language", "")), counts)
        doc = doc.replace(text=text, metadata=meta)
        counts = {k: v for k, v in counts.items() if v}
        if len(text) < self.min_chars:
            return drop("empty", doc, counts=counts or None)
        return keep(doc, counts=counts or None)
