"""corpusmill's line dedup against cc_net's own code, on the same real pages (issue 12).

cc_net is not on PyPI; point ``--ccnet-src`` at a checkout of facebookresearch/cc_net (the folder that
holds ``cc_net/``). The pages: every HTML page of Debian's python3.11-doc when installed
(``apt-get install python3.11-doc``), else the 30 pages of tests/data/warc/pydocs.warc.gz; their main text
(trafilatura, as the stage extracts it) is one snapshot: navigation, headings and code lines repeat across
pages and inside pages.

Both sides dedup the same normalized texts in one scope:
- cc_net: ``dedup.HashesCollector`` over every document, then ``dedup.DuplicatesRemover`` (mine.py's way);
- corpusmill: ``corpusmill ccnet`` on the same texts as JSONL, ``--dedup-scope run``, no length or
  language filter, no document dedup.

    .venv/bin/python bench/ccnet_dedup_reference.py --ccnet-src /path/to/cc_net
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
DOCS = "/usr/share/doc/python3.11/html"


def page_texts():
    from corpusmill.filters import html as html_text
    from corpusmill.filters.normalize import normalize_text

    pages = sorted(glob.glob(os.path.join(DOCS, "**", "*.html"), recursive=True))
    out = []
    if pages:
        for path in pages:
            text = html_text.extract_main_text(
                open(path, encoding="utf-8", errors="replace").read(),
                "https://docs.python.org/3.11/" + os.path.relpath(path, DOCS),
            )
            if text and normalize_text(text):
                out.append((os.path.relpath(path, DOCS), normalize_text(text)))
        return "python3.11-doc", out
    from corpusmill.io.warc import ExtractWarcRecord, scan_records

    extract = ExtractWarcRecord()
    for ref in scan_records(os.path.join(HERE, "..", "tests", "data", "warc", "pydocs.warc.gz")):
        verdict = extract(ref)
        if verdict.kept and normalize_text(verdict.doc.text):
            out.append((verdict.doc.url, normalize_text(verdict.doc.text)))
    return "pydocs.warc.gz", out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ccnet-src", required=True, help="a checkout of facebookresearch/cc_net")
    args = ap.parse_args()
    sys.path.insert(0, args.ccnet_src)
    from cc_net import dedup

    from corpusmill.core.document import Document
    from corpusmill.core.files import read_output
    from corpusmill.pipelines.ccnet import CCNetConfig, run_ccnet

    name, pages = page_texts()
    docs = [(f"a-{i:05d}", t) for i, (_, t) in enumerate(pages)]
    total = sum(len(t) for _, t in docs)
    with tempfile.TemporaryDirectory() as tmp:
        hashes = Path(tmp) / "hashes.bin"
        collector = dedup.HashesCollector(field="raw_content", output=hashes)
        for _, text in docs:
            collector.do({"raw_content": text})
        collector.close()
        remover = dedup.DuplicatesRemover(field="raw_content", hashes_files=[hashes])
        remover._prepare()
        theirs = {}
        for doc_id, text in docs:
            out = remover.do({"raw_content": text})
            if out is not None and out["raw_content"]:
                theirs[doc_id] = out["raw_content"]

        src = os.path.join(tmp, "docs.jsonl")
        with open(src, "w", encoding="utf-8") as fh:
            for doc_id, text in docs:
                fh.write(Document(doc_id, text, "cc").to_json() + "\n")
        run_ccnet(
            CCNetConfig(
                input=[src],
                output=os.path.join(tmp, "out"),
                dedup_scope="run",
                min_length=1,
                lang_threshold=0.0,
                doc_dedup=False,
            )
        )
        ours = {d.id: d.text for d in read_output(os.path.join(tmp, "out"))}
    kept_theirs, kept_ours = sum(map(len, theirs.values())), sum(map(len, ours.values()))
    same = sum(ours.get(k) == v for k, v in theirs.items())
    print(f"input: {name}, {len(docs)} documents, {total:,} characters")
    print(f"cc_net keeps {kept_theirs:,} characters in {len(theirs)} documents")
    print(
        f"corpusmill keeps {kept_ours:,} characters in {len(ours)} documents "
        f"({(kept_ours - kept_theirs) / max(kept_theirs, 1):+.3%})"
    )
    print(f"documents with identical text: {same} of {len(theirs)}; only one side: {len(set(theirs) ^ set(ours))}")


if __name__ == "__main__":
    main()
