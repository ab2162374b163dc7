"""C4: the T5 builder's page cleaning, URL normalization, the bad-words filter, and LLaMA's extra
heuristics for the released C4. Pure functions and filters; the Beam part is corpusmill.pipelines.c4.

The rules follow ``tensorflow_datasets`` ``c4_utils`` (the builder that made C4):

- :class:`CleanPage` (``clean_page``): per line, in the builder's order: drop a line with a word over
  1000 characters; strip citation markers (``[1]``, ``[edit]``, ``[citation needed]``, lowercase, as the
  builder's pattern) and leave what remains as it is (the builder does not strip again, so "to vote. [1]"
  ends in a space and goes); drop a line
  that does not end in ``.``, ``?``, ``!`` or ``"`` (or ends in ``...``); drop a line with fewer than
  5 words; **drop the page** if a remaining line contains "lorem ipsum"; drop a line containing
  "javascript"; **drop the page** if a remaining line contains ``{``; drop a line with a cookie /
  privacy / terms-of-use phrase. Then drop the page if fewer than 3 sentences are left. A page over
  190,000 characters is dropped first (the builder's ``is_valid_length``).
- :func:`normalize_url` + :func:`url_occurrence`: one page per normalized URL, the newest kept.
- :class:`BadWords` (``badwords``): a page with a word from the list (LDNOOBW English by default, a
  file shipped in ``corpusmill/data/badwords`` with its CC-BY-4.0 license) is dropped.
- LLaMA's heuristics on released C4 (LLaMA gives no numbers; the defaults are ours and are options):
  :class:`TerminalPunctShare`, :class:`WordCount`, :class:`SentenceCount`.

Sentences are split by :func:`sentence_spans`, a rule-based splitter (the builder used NLTK's punkt
model, which would have to be downloaded): a sentence ends at ``.``, ``!`` or ``?`` (plus closing quotes
or brackets) followed by white space, except after a common abbreviation or a single-letter initial.
"""

from __future__ import annotations

import datetime
import math
import os
import re
from typing import Iterable, List, Optional, Sequence, Tuple

from corpusmill.core.document import Document, make_id
from corpusmill.core.errors import CorpusmillError
from corpusmill.filters.base import Filter, Verdict, drop, keep
from corpusmill.filters.charset import MAX_REPLACEMENT_SHARE, UNDECODABLE, replacement_share

SOURCE = "c4"
END_MARKS = (".", "?", "!", '"')
ELLIPSIS = "..."
CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")  # the builder's, case and all
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
MAX_PAGE_CHARS = 190_000

# -- sentences ---------------------------------------------------------------------------------------
_BOUNDARY = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s|$)")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs etc e.g i.e eg ie fig figs no nos vol vols ca cf al approx inc ltd "
    "co corp dept est jan feb mar apr jun jul aug sep sept oct nov dec ph.d u.s u.k p pp ed eds op".split()
)


def _is_abbreviation(line: str, match: "re.Match") -> bool:
    """A lone ``.`` after a common abbreviation or a single-letter initial ends no sentence."""
    if match.group() != ".":
        return False
    word = line[line.rfind(" ", 0, match.start()) + 1 : match.start()].lstrip("(\"'").lower()
    if len(word) == 1 and word.isalpha():  # an initial: "J. R. R. Tolkien"
        return True
    return word in _ABBREVIATIONS


def sentence_spans(line: str) -> List[Tuple[int, int]]:
    """``(start, end)`` offsets of the sentences of one line; together they cover every non-space character."""
    spans: List[Tuple[int, int]] = []
    n = len(line.rstrip())
    start = len(line) - len(line.lstrip())
    if start >= n:
        return spans
    for m in _BOUNDARY.finditer(line, start, n):
        end = m.end()
        if end >= n:
            break
        if _is_abbreviation(line, m):
            continue
        nxt = end
        while nxt < n and line[nxt].isspace():
            nxt += 1
        if nxt < n and line[nxt].islower():  # "3 p.m. and then" / "e.g. the": not a boundary
            continue
        spans.append((start, end))
        start = nxt
    if start < n:
        spans.append((start, n))
    return spans


def count_sentences(text: str) -> int:
    return sum(len(sentence_spans(line)) for line in text.split("\n"))


def ends_in_terminal_punct(line: str) -> bool:
    line = line.rstrip()
    return line.endswith(END_MARKS) and not line.endswith(ELLIPSIS)


# -- clean_page --------------------------------------------------------------------------------------
class CleanPage(Filter):
    """The builder's ``clean_page`` (see the module doc). Drops ``too_long``, ``lorem_ipsum``,
    ``curly_brace``, ``too_few_sentences``; kept pages carry ``c4_lines_removed`` (lines removed by rule)."""

    name = "clean_page"
    scores = ("page_chars", "sentences")

    def __init__(
        self,
        min_words_per_line: int = 5,
        min_sentences: int = 3,
        max_word_length: int = 1000,
        max_page_chars: int = MAX_PAGE_CHARS,
    ):
        self.min_words_per_line = min_words_per_line
        self.min_sentences = min_sentences
        self.max_word_length = max_word_length
        self.max_page_chars = max_page_chars

    def thresholds(self):
        return {"page_chars": self.max_page_chars, "sentences": self.min_sentences}

    def __call__(self, doc: Document) -> Verdict:
        chars = len(doc.text)
        if chars > self.max_page_chars:
            return drop("too_long", doc, measures={"page_chars": chars})
        kept: List[str] = []
        removed = {}
        sentences = 0
        for raw in doc.text.split("\n"):
            line = raw.strip()
            if not line:
                continue
            reason = None
            words = line.split()
            if any(len(w) > self.max_word_length for w in words):
                reason = "too_long_word"
            else:
                line = CITATION.sub("", line)  # not stripped again: the builder's order
                lower = line.lower()
                if not (line.endswith(END_MARKS) and not line.endswith(ELLIPSIS)):
                    reason = "no_endmark"
                elif len(line.split()) < self.min_words_per_line:
                    reason = "too_short"
                elif "lorem ipsum" in lower:
                    return drop("lorem_ipsum", doc, measures={"page_chars": chars})
                elif "javascript" in lower:
                    reason = "javascript"
                elif "{" in line:
                    return drop("curly_brace", doc, measures={"page_chars": chars})
                elif any(p in lower for p in POLICY_PHRASES):
                    reason = "policy"
            if reason:
                removed[reason] = removed.get(reason, 0) + 1
                continue
            sentences += len(sentence_spans(line))
            kept.append(line)
        measures = {"page_chars": chars, "sentences": sentences}
        if sentences < self.min_sentences:
            return drop("too_few_sentences", doc, measures=measures)
        return keep(
            doc.replace(text="\n".join(kept)).annotate(c4_lines_removed=dict(sorted(removed.items()))),
            measures=measures,
        )


# -- URLs: one page per normalized URL, the newest --------------------------------------------------
_TRACKING_KEYS = ("ref", "feed", "fbclid", "gclid")


def normalize_url(url: str) -> str:
    """``https://www.Example.com/a/?utm_source=x&id=3#top`` -> ``example.com/a?id=3``.

    Scheme, ``www.``, fragment, tracking parameters (``utm_*``, ``ref``, ``feed``, ``fbclid``, ``gclid``)
    and a trailing slash are removed; the host is lowercased; other parameters keep their order.
    """
    from urllib.parse import urlsplit

    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url if "://" in url else "//" + url)
    host = parts.netloc.lower()
    if host.startswith("www."):
        host = host[4:]
    params = [p for p in parts.query.split("&") if p]
    params = [p for p in params if not (k := p.split("=", 1)[0].lower()).startswith("utm_") and k not in _TRACKING_KEYS]
    out = host + parts.path.rstrip("/")
    return out + ("?" + "&".join(params) if params else "")


def timestamp_seconds(ts: str) -> Optional[float]:
    """Seconds since the epoch of an ISO-8601 time (WARC-Date, C4 ``timestamp``); None when unparseable."""
    ts = (ts or "").strip()
    if not ts:
        return None
    try:
        value = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.timestamp()


def url_occurrence(doc: Document) -> Iterable[Tuple[str, Tuple[str, float]]]:
    """``(normalized url, (doc id, rank))`` where a smaller rank is newer (no time: ranked oldest)."""
    key = normalize_url(doc.url)
    if key:
        seconds = timestamp_seconds(doc.timestamp)
        yield key, (doc.id, -seconds if seconds is not None else math.inf)


def newest_first(occurrence: Tuple[str, float]) -> Tuple[float, str]:
    """The rank that keeps the newest page of a URL (ties: the smallest document id)."""
    doc_id, rank = occurrence
    return rank, doc_id


# -- bad words ---------------------------------------------------------------------------------------
def default_badwords_path() -> str:
    return os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "badwords", "ldnoobw-en.txt"
    )


def load_badwords(path: str) -> List[str]:
    """Words and phrases of a bad-words file: one per line, ``#`` comments and blank lines ignored."""
    try:
        with open(path, encoding="utf-8") as fh:
            words = [w.strip().lower() for w in fh if w.strip() and not w.lstrip().startswith("#")]
    except OSError as exc:
        raise CorpusmillError(
            f"bad-words list {path}: cannot read it ({exc.strerror}); pass --badwords PATH "
            f"(one word per line) or --badwords none"
        ) from None
    except UnicodeDecodeError as exc:
        raise CorpusmillError(f"bad-words list {path}: not UTF-8 ({exc}); re-encode it as UTF-8") from None
    if not words:
        raise CorpusmillError(f"bad-words list {path} has no entries; pass --badwords none to skip the filter")
    return sorted(set(words))


_WORD = re.compile(r"\w+")


def badwords_regex(words: Sequence[str]):
    # Longest first, so a phrase wins over its prefix; matched on the lowercased page as the builder does.
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))
    return re.compile(r"(?:\W|^)(?:" + alternatives + r")(?:\W|$)")


class BadWords(Filter):
    """The ``badwords`` step: drops ``badword`` for a page containing any listed word (word boundaries).

    Same result as the builder's one regex ``(?:\\W|^)(word|...)(?:\\W|$)`` on the lowercased page, but
    faster: an entry made only of word characters matches exactly when it is one of the page's
    ``\\w+`` tokens (a set lookup); only the entries with spaces or punctuation go through a regex."""

    name = "badwords"
    transient = ("_words", "_regex")

    def __init__(self, path: Optional[str] = None):
        self.path = path or default_badwords_path()
        self._words = None
        self._regex = None

    def setup(self) -> None:
        if self._words is None:
            words = load_badwords(self.path)
            self._words = frozenset(w for w in words if _WORD.fullmatch(w))
            rest = [w for w in words if not _WORD.fullmatch(w)]
            self._regex = badwords_regex(rest) if rest else None

    def __call__(self, doc: Document) -> Verdict:
        if self._words is None:
            self.setup()
        lower = doc.text.lower()
        if not self._words.isdisjoint(_WORD.findall(lower)) or (self._regex and self._regex.search(lower)):
            return drop("badword", doc)
        return keep(doc)


# -- released C4: reading and LLaMA's heuristics ------------------------------------------------------
class ParseC4Json(Filter):
    """The ``read`` step for released C4: one JSON line ``{"text", "url", "timestamp"}`` -> Document.

    Ids derive from the file's base name and the line (``c4-train.00000-of-01024.json.gz:17``), so they
    do not depend on where the files are. Drops ``blank_line``; a line that is not JSON, or has no
    ``text`` string, is a dead letter naming the file and line.
    """

    name = "read"

    def __call__(self, record) -> Verdict:
        import json

        if record.error:
            raise IOError(record.error)
        if not record.payload.strip():
            return drop("blank_line")
        try:
            data = json.loads(record.payload)
        except ValueError as exc:
            raise ValueError(
                f"{record.location}: not valid JSON ({exc}); a C4 file has one "
                f'{{"text", "url", "timestamp"}} object per line'
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise ValueError(
                f'{record.location}: expected an object with a "text" string (C4 fields: text, url, '
                f"timestamp), got {str(data)[:200]}"
            )
        where = os.path.basename(record.location)
        doc = Document(
            make_id(SOURCE, where),
            data["text"],
            SOURCE,
            str(data.get("url") or ""),
            str(data.get("timestamp") or ""),
            record.location,
        )
        if replacement_share(doc.text) > MAX_REPLACEMENT_SHARE:  # mojibake is never kept
            return drop(UNDECODABLE, doc)
        return keep(doc)


class TerminalPunctShare(Filter):
    """``terminal_punct``: drops ``low_terminal_punct_share`` when the share of non-empty lines ending in
    terminal punctuation (as :func:`ends_in_terminal_punct`) is below ``min_share``."""

    name = "terminal_punct"
    scores = ("terminal_punct_share",)

    def __init__(self, min_share: float = 0.5):
        self.min_share = min_share

    def thresholds(self):
        return {"terminal_punct_share": self.min_share}

    def __call__(self, doc: Document) -> Verdict:
        lines = [line for line in doc.text.split("\n") if line.strip()]
        share = sum(map(ends_in_terminal_punct, lines)) / len(lines) if lines else 0.0
        doc = doc.annotate(terminal_punct_share=round(share, 4))
        if share < self.min_share:
            return drop("low_terminal_punct_share", doc)
        return keep(doc)


class WordCount(Filter):
    """``word_count``: drops ``too_few_words`` / ``too_many_words`` (white-space separated words)."""

    name = "word_count"
    scores = ("words",)

    def __init__(self, min_words: int = 50, max_words: int = 100_000):
        self.min_words = min_words
        self.max_words = max_words

    def thresholds(self):
        return {"words": [self.min_words, self.max_words] if self.max_words else self.min_words}

    def __call__(self, doc: Document) -> Verdict:
        n = len(doc.text.split())
        doc = doc.annotate(words=n)
        if n < self.min_words:
            return drop("too_few_words", doc)
        if self.max_words and n > self.max_words:
            return drop("too_many_words", doc)
        return keep(doc)


class SentenceCount(Filter):
    """``sentence_count``: drops ``too_few_sentences`` below ``min_sentences`` (:func:`count_sentences`)."""

    name = "sentence_count"
    scores = ("sentences",)

    def __init__(self, min_sentences: int = 3):
        self.min_sentences = min_sentences

    def thresholds(self):
        return {"sentences": self.min_sentences}

    def __call__(self, doc: Document) -> Verdict:
        n = count_sentences(doc.text)
        doc = doc.annotate(sentences=n)
        if n < self.min_sentences:
            return drop("too_few_sentences", doc)
        return keep(doc)
