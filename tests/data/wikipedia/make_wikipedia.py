"""Rebuild tests/data/wikipedia/ from gensim's real enwiki dump sample (see tests/data/PROVENANCE.md).

    pip download --no-deps -d /tmp/g gensim==4.4.0 && unzip -q /tmp/g/gensim-4.4.0-*.whl -d /tmp/g
    python tests/data/wikipedia/make_wikipedia.py /tmp/g/gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2

The sample has 206 pages (100 redirects, one of them in namespace 4; 106 articles) and is 1.7 MB; we
keep a slice: every redirect and non-article page plus the 30 smallest articles, in dump order, written
the way Wikipedia writes ``*-multistream.xml.bz2`` dumps: the header in the first bz2 stream, then one
stream per 10 pages, then the closing tag in its own stream. Text bytes are the dump's, unchanged.
"""

from __future__ import annotations

import bz2
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ARTICLES = 30
PAGES_PER_STREAM = 10


def main(src: str) -> None:
    xml = bz2.open(src).read()
    first = xml.index(b"<page>")
    header = xml[:first]
    pages = re.findall(rb"  <page>.*?</page>\n", xml[first:], flags=re.S)
    footer = xml[xml.rindex(b"</page>") + len(b"</page>\n") :]
    is_article = [b"<ns>0</ns>" in p and b"<redirect" not in p for p in pages]
    smallest = sorted((len(p), i) for i, p in enumerate(pages) if is_article[i])[:ARTICLES]
    chosen = {i for _, i in smallest} | {i for i, a in enumerate(is_article) if not a}
    kept = [p for i, p in enumerate(pages) if i in chosen]
    out = os.path.join(HERE, "enwiki-sample-multistream.xml.bz2")
    with open(out, "wb") as fh:
        fh.write(bz2.compress(header, 9))
        for k in range(0, len(kept), PAGES_PER_STREAM):
            fh.write(bz2.compress(b"".join(kept[k : k + PAGES_PER_STREAM]), 9))
        fh.write(bz2.compress(footer, 9))
    print(f"{out}: {len(kept)} pages ({sum(is_article[i] for i in chosen)} articles), {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
