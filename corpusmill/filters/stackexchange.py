"""StackExchange Posts.xml rows -> question-and-answer documents, the pure part (Beam is in
corpusmill.pipelines.stackexchange).

- :class:`ParsePostRow` (step ``parse``): one ``<row .../>`` of a Posts.xml -> a post Document
  (question or answer; body HTML turned into text by corpusmill.filters.stackexchange_html). The row
  is parsed alone, with a hardened parser (no DTD, no entity resolution, no network): a DOCTYPE or an
  entity other than XML's predefined ones cannot be declared inside a row, so XXE and entity bombs
  fail as malformed rows. Drops ``post_type_other`` (tag wikis, ...), ``missing_parent_id`` (an answer
  without ParentId).
- :class:`KeepTopSites` (``top_sites``): keeps posts of the N largest sites (ranked by post count).
- :class:`FormatThread` (``format``): a question with all its answers -> one Document; answers sorted
  by numeric score, highest first (ties: lower post id first). Drops ``no_question`` (answers whose
  question is not in the dump), ``too_few_answers``.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence, Tuple

from corpusmill.core.document import Document, make_id
from corpusmill.filters.base import Filter, Verdict, drop, keep
from corpusmill.filters.stackexchange_html import html_to_text

MAX_ROW_BYTES = 16 << 20

SOURCE = "stackexchange"
QUESTION, ANSWER = "1", "2"
FORMATS = ("qa", "redpajama")


@dataclasses.dataclass(slots=True)
class PostLine:
    """One raw ``<row/>`` of a Posts.xml (bytes), or an unreadable region of the file."""

    site: str
    location: str
    payload: bytes = b""
    error: str = ""

    @property
    def nbytes(self) -> int:
        return len(self.payload)


def parse_row(payload: bytes, where: str) -> dict:
    """The attributes of one ``<row .../>`` element, parsed alone with the hardened parser."""
    from lxml import etree

    from corpusmill.filters.wikitext import hardened_parser

    text = payload.strip()
    if not text.startswith(b"<row") or b"<!" in text:
        raise ValueError(
            f"{where}: not a single <row .../> element (declarations such as DOCTYPE or "
            f"ENTITY are refused; entities are never expanded)"
        )
    try:
        element = etree.fromstring(text, hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"{where}: malformed Posts.xml row ({exc})") from None
    if element.tag != "row" or len(element):
        raise ValueError(f"{where}: expected an empty <row/> element, got <{element.tag}> with {len(element)} children")
    return dict(element.attrib)


def _int(attrs: dict, name: str, where: str, default: Optional[int] = None) -> int:
    value = attrs.get(name)
    if value is None or value == "":
        if default is None:
            raise ValueError(f"{where}: row has no {name}")
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{where}: {name}={value!r} is not an integer") from None


def post_id(site: str, number: int) -> str:
    return make_id(SOURCE, f"{site}/posts/{number}")


class ParsePostRow(Filter):
    """The ``parse`` step (see the module doc). The post Document's metadata holds site, post_id,
    post_type, parent_id, score, title, tags, accepted_answer_id; its text is the body as text."""

    name = "parse"

    def __call__(self, line: PostLine) -> Verdict:
        if line.error:
            raise IOError(line.error)
        attrs = parse_row(line.payload, line.location)
        number = _int(attrs, "Id", line.location)
        kind = attrs.get("PostTypeId", "")
        if kind not in (QUESTION, ANSWER):
            if not kind:
                raise ValueError(f"{line.location}: row Id={number} has no PostTypeId")
            return drop("post_type_other")
        meta = {
            "site": line.site,
            "post_id": number,
            "post_type": "question" if kind == QUESTION else "answer",
            "score": _int(attrs, "Score", line.location, default=0),
        }
        if kind == ANSWER:
            if not attrs.get("ParentId"):
                return drop(
                    "missing_parent_id",
                    Document(
                        post_id(line.site, number),
                        attrs.get("Body", ""),
                        SOURCE,
                        "",
                        attrs.get("CreationDate", ""),
                        line.location,
                        meta,
                    ),
                )
            meta["parent_id"] = _int(attrs, "ParentId", line.location)
        else:
            meta["title"] = attrs.get("Title", "")
            meta["tags"] = attrs.get("Tags", "")
            if attrs.get("AcceptedAnswerId"):
                meta["accepted_answer_id"] = _int(attrs, "AcceptedAnswerId", line.location)
        text = html_to_text(attrs.get("Body", ""))
        return keep(
            Document(post_id(line.site, number), text, SOURCE, "", attrs.get("CreationDate", ""), line.location, meta)
        )


def question_key(doc: Document) -> str:
    """The grouping key of a post: its site and question id (its own id, or its parent's)."""
    meta = doc.metadata
    qid = meta["post_id"] if meta["post_type"] == "question" else meta["parent_id"]
    return f"{meta['site']}\t{qid}"


def rank_sites(counts: Sequence[Tuple[str, int]], top: int, only: Optional[Sequence[str]] = None) -> dict:
    """``{site: rank}`` (1 = most posts; ties by name) of the sites kept: the ``top`` largest, or the
    sites named in ``only``."""
    ordered = sorted(counts, key=lambda sc: (-sc[1], sc[0]))
    ranks = {site: i + 1 for i, (site, _count) in enumerate(ordered)}
    if only:
        return {s: ranks[s] for s in only if s in ranks}
    return {site: r for site, r in ranks.items() if r <= top}


class KeepTopSites(Filter):
    """``top_sites``: takes ``(post, rank or None)``; drops ``site_not_in_top`` when the site is not kept."""

    name = "top_sites"

    def __call__(self, item) -> Verdict:
        doc, rank = item
        if rank is None:
            return drop("site_not_in_top", doc)
        return keep(doc.annotate(site_rank=rank))


@dataclasses.dataclass(slots=True)
class Thread:
    """A question and its answers (post Documents), as grouped by the shuffle."""

    key: str
    posts: List[Document]

    @property
    def location(self) -> str:
        site, qid = self.key.split("\t", 1)
        return f"{site}/questions/{qid}"

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.posts)


class FormatThread(Filter):
    """``format``: one document per question (see the module doc).

    ``qa``: ``Q: <title>`` on the first line, the question body under it, then each answer as a block
    ``A: <answer>``, blocks separated by a blank line. ``redpajama``: RedPajama's
    ``Q: <title> <body>\\nA: <answer>\\nA: <answer>``.
    """

    name = "format"

    def __init__(self, fmt: str = "qa", min_answers: int = 0):
        if fmt not in FORMATS:
            raise ValueError(f"unknown StackExchange text format {fmt!r}; use one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.min_answers = min_answers

    def __call__(self, thread: Thread) -> Verdict:
        # a post id given twice (a damaged or concatenated dump): the first row by location counts once
        posts, seen, repeated = [], set(), 0
        for post in sorted(thread.posts, key=lambda p: (p.metadata["post_id"], p.location, p.text)):
            if post.metadata["post_id"] in seen:
                repeated += 1
                continue
            seen.add(post.metadata["post_id"])
            posts.append(post)
        counts = {"duplicate_post_id": repeated} if repeated else None
        questions = [p for p in posts if p.metadata["post_type"] == "question"]
        answers = sorted(
            (p for p in posts if p.metadata["post_type"] == "answer"),
            key=lambda p: (-p.metadata["score"], p.metadata["post_id"]),
        )
        if not questions:
            return drop("no_question", counts=counts)
        if len(answers) < self.min_answers:
            return drop("too_few_answers", counts=counts)
        q = questions[0]
        meta = q.metadata
        title = meta.get("title", "")
        if self.fmt == "redpajama":
            text = "\n".join([f"Q: {title} {q.text}".rstrip()] + [f"A: {a.text}" for a in answers])
        else:
            blocks = [f"Q: {title}\n{q.text}".rstrip()] + [f"A: {a.text}" for a in answers]
            text = "\n\n".join(blocks)
        site, qid = meta["site"], meta["post_id"]
        out = Document(
            make_id(SOURCE, f"{site}/questions/{qid}"),
            text,
            SOURCE,
            f"https://{site}/questions/{qid}",
            q.timestamp,
            q.location,
            {
                "site": site,
                "site_rank": meta.get("site_rank"),
                "question_id": qid,
                "title": title,
                "tags": meta.get("tags", ""),
                "question_score": meta["score"],
                "answer_ids": [a.metadata["post_id"] for a in answers],
                "answer_scores": [a.metadata["score"] for a in answers],
                "accepted_answer_id": meta.get("accepted_answer_id"),
            },
        )
        return keep(out, counts=counts)
