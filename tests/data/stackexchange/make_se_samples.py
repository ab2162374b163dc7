"""Rebuild the StackExchange sample dump in this directory from the Python FAQ (Debian python3.11-doc).

    .venv/bin/python tests/data/stackexchange/make_se_samples.py   # needs python3.11-doc and py7zr

No package ships a real StackExchange Posts.xml, so the XML wrapper is ours: every question and answer
text is real (the HTML of the Python 3.11 FAQ pages, PSF license), laid out as the dump's rows
(``<row Id PostTypeId ParentId AcceptedAnswerId Score Title Body Tags CreationDate .../>``, one per
line, newlines as ``&#xA;``). Each FAQ page becomes a "site" named ``<page>.python-faq.example``; each
FAQ entry (an h3 section) a question whose body restates the heading, and its answer HTML one to three
answers (split at top-level blocks). Scores are made up, deterministically (from a hash of the title);
the first programming question's three answers get scores 9, 10 and 2 so that numeric sorting shows.
Each site also has a tag-wiki row (PostTypeId 5) as real dumps do.

Layouts, as the dump publishes them: programming (all its entries, Posts.xml.bz2 in a site directory),
design (a site .7z archive holding Posts.xml and Tags.xml), library, general, extending, windows, gui,
installed (plain Posts.xml; at most 30 entries each, to keep the sample small).
"""

from __future__ import annotations

import bz2
import hashlib
import os
import shutil

from lxml import etree
from lxml import html as lxml_html

HERE = os.path.dirname(os.path.abspath(__file__))
FAQ = "/usr/share/doc/python3.11/html/faq"
PAGES = ["programming", "library", "design", "general", "extending", "windows", "gui", "installed"]


def _attr(value: str) -> str:
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return value.replace("\r", "&#xD;").replace("\n", "&#xA;").replace("\t", "&#x9;")


def _row(**attrs) -> str:
    return "  <row " + " ".join(f'{k}="{_attr(str(v))}"' for k, v in attrs.items() if v is not None) + " />"


def faq_entries(page: str):
    root = lxml_html.parse(os.path.join(FAQ, f"{page}.html")).getroot()
    for section in root.iter("section"):
        children = [c for c in section if isinstance(c.tag, str)]
        if not children or children[0].tag not in ("h2", "h3"):
            continue
        head = children[0]
        for link in head.xpath(".//a[@class='headerlink']"):
            link.drop_tree()
        title = " ".join(head.text_content().split())
        blocks = [
            etree.tostring(c, encoding="unicode", method="html").strip() for c in children[1:] if c.tag != "section"
        ]
        blocks = [b for b in blocks if b]
        if title and blocks and not any(c.tag == "section" for c in children):
            yield title, blocks


def _score(text: str, salt: str) -> int:
    return int(hashlib.sha1(f"{salt}:{text}".encode()).hexdigest()[:4], 16) % 15 - 2


def site_rows(page: str, max_entries: int = 30):
    rows = ['<?xml version="1.0" encoding="utf-8"?>', "<posts>"]
    next_id = 1
    day = 0
    for n, (title, blocks) in enumerate(faq_entries(page)):
        if n >= max_entries:
            break
        parts = 3 if len(blocks) >= 6 else 2 if len(blocks) >= 3 else 1
        size = -(-len(blocks) // parts)
        answers = ["\n".join(blocks[i : i + size]) for i in range(0, len(blocks), size)]
        qid = next_id
        aids = list(range(qid + 1, qid + 1 + len(answers)))
        next_id = aids[-1] + 1
        if page == "programming" and n == 0:
            scores = [9, 10, 2][: len(answers)]
        else:
            scores = [_score(a, f"{page}{i}") for i, a in enumerate(answers)]
        day += 1
        date = f"2011-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T12:00:00.000"
        rows.append(
            _row(
                Id=qid,
                PostTypeId=1,
                AcceptedAnswerId=aids[0],
                CreationDate=date,
                Score=_score(title, page),
                ViewCount=100 + qid,
                Body=f"<p>{title}</p>",
                Title=title,
                Tags="<python><faq>",
                AnswerCount=len(answers),
                ContentLicense="CC BY-SA 3.0",
            )
        )
        for aid, body, score in zip(aids, answers, scores):
            rows.append(
                _row(
                    Id=aid,
                    PostTypeId=2,
                    ParentId=qid,
                    CreationDate=date,
                    Score=score,
                    Body=body,
                    ContentLicense="CC BY-SA 3.0",
                )
            )
    intro = lxml_html.parse(os.path.join(FAQ, f"{page}.html")).getroot().xpath("//p")[0]
    rows.append(
        _row(
            Id=next_id,
            PostTypeId=5,
            CreationDate="2011-01-01T00:00:00.000",
            Score=0,
            Body=etree.tostring(intro, encoding="unicode", method="html").strip(),
        )
    )
    rows.append("</posts>")
    return "\n".join(rows) + "\n"


def main() -> None:
    import py7zr

    for entry in os.listdir(HERE):
        path = os.path.join(HERE, entry)
        if entry.endswith(".python-faq.example") or entry.endswith(".7z"):
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    for page in PAGES:
        site = f"{page}.python-faq.example"
        xml = site_rows(page, 1000 if page == "programming" else 30).encode("utf-8")
        if page == "design":
            with py7zr.SevenZipFile(os.path.join(HERE, f"{site}.7z"), "w") as archive:
                archive.writestr(xml, "Posts.xml")
                archive.writestr(
                    b'<?xml version="1.0" encoding="utf-8"?>\n<tags>\n  <row Id="1" TagName="python" '
                    b'Count="29" />\n</tags>\n',
                    "Tags.xml",
                )
            continue
        os.makedirs(os.path.join(HERE, site), exist_ok=True)
        if page == "programming":
            with open(os.path.join(HERE, site, "Posts.xml.bz2"), "wb") as fh:
                fh.write(bz2.compress(xml, 9))
        else:
            with open(os.path.join(HERE, site, "Posts.xml"), "wb") as fh:
                fh.write(xml)
    print("wrote", ", ".join(sorted(os.listdir(HERE))))


if __name__ == "__main__":
    main()
