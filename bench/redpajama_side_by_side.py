"""Side by side with RedPajama v1 on the same real input: ArXiv and StackExchange.

    git --git-dir=.../RedPajama-Data/repo archive rp_v1 data_prep | tar -x -C /tmp/rp   # their code, not ours
    pip install beautifulsoup4                                                          # their HTML cleaner
    .venv/bin/python bench/redpajama_side_by_side.py --redpajama /tmp/rp \\
        [--texlive .../usr/share/doc/texlive-doc/latex]

RedPajama's own functions run on the same inputs as corpusmill's: for ArXiv, ``clean_tex_files`` of
``data_prep/arxiv/arxiv_cleaner.py`` (imported from the checkout) on each paper's main file, against
corpusmill's ``extract`` + ``latex`` steps; for StackExchange, ``data_prep/stack_exchange``'s way
(``filter.py``'s question/answer grouping, re-stated here line by line because the script runs at import;
``post_processing.py``'s ``cleanhtml`` and answer order, taken from its source) on the committed sample
dump, against the corpusmill stage. Then the same residue counters on both outputs. Nothing of
RedPajama's is committed. Record the numbers in docs/sources.md.

Inputs: every ``.tex.gz`` with a ``\\documentclass`` under ``--texlive`` (Debian texlive-publishers-doc
and texlive-latex-recommended-doc, unpacked), and tests/data/stackexchange.
"""

from __future__ import annotations

import argparse
import ast
import glob
import gzip
import os
import re
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SE_DUMP = os.path.join(HERE, "..", "tests", "data", "stackexchange")
DEFINITION = re.compile(r"\\(?:newcommand|renewcommand|providecommand|def|gdef|edef|xdef)(?![A-Za-z@])")
NEWCOMMAND = re.compile(r"\\(?:re)?newcommand\*?\s*\{?\s*\\([A-Za-z]+)\s*\}?(?:\s*\[\d\])?\s*\{")


def _row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


# -- ArXiv ---------------------------------------------------------------------------------------------
def arxiv(redpajama: str, texlive: str) -> None:
    from corpusmill.filters.arxiv_archive import ExtractPaper, PaperRecord
    from corpusmill.filters.latex import CleanLatex, protect_verbatim, strip_comments

    sys.path.insert(0, os.path.join(redpajama, "data_prep", "arxiv"))
    import arxiv_cleaner  # RedPajama's

    papers = []
    for path in sorted(glob.glob(os.path.join(texlive, "**", "*.tex.gz"), recursive=True)):
        data = open(path, "rb").read()
        text = gzip.decompress(data)
        if b"documentclass" in text:
            papers.append((path, data, text.decode("utf-8", "replace")))
    extract, clean = ExtractPaper(), CleanLatex()
    counts = {
        "corpusmill": dict.fromkeys(
            (
                "papers",
                "chars",
                "comment lines",
                "definitions",
                "unexpanded macro uses",
                "bibliography",
                "verbatim blocks intact",
                "failed",
            ),
            0,
        ),
        "RedPajama v1": dict.fromkeys(
            (
                "papers",
                "chars",
                "comment lines",
                "definitions",
                "unexpanded macro uses",
                "bibliography",
                "verbatim blocks intact",
                "failed",
            ),
            0,
        ),
    }
    blocks_total = 0
    for path, data, source in papers:
        # what the residue counters look for, from the source: its argument-free user macros, its verbatim blocks
        plain = strip_comments(source)
        names = set(NEWCOMMAND.findall(plain))
        first = re.search(r"\\(?:part|chapter|section|subsection)\*?\s*[{\[]", plain)
        body = plain[first.start() :] if first else ""
        blocks = re.findall(
            r"\\begin\{verbatim\}.*?\\end\{verbatim\}", source[source.find(body[:200]) if body else 0 :], flags=re.S
        )
        blocks_total += len(blocks)
        outputs = {}
        try:
            v = extract(PaperRecord(os.path.basename(path), path, len(data), payload=data))
            if v.kept:
                v = clean(v.doc)
            outputs["corpusmill"] = v.doc.text if v.kept else ""
        except Exception:  # noqa: BLE001
            counts["corpusmill"]["failed"] += 1
            outputs["corpusmill"] = ""
        try:
            outputs["RedPajama v1"] = arxiv_cleaner.clean_tex_files([source])
        except Exception:  # noqa: BLE001
            counts["RedPajama v1"]["failed"] += 1
            outputs["RedPajama v1"] = ""
        for who, text in outputs.items():
            c = counts[who]
            if not text.strip():
                continue
            c["papers"] += 1
            c["chars"] += len(text)
            c["verbatim blocks intact"] += sum(1 for b in blocks if b in text)
            outside = protect_verbatim(text)[0]  # residue outside verbatim text (verbatim is text as written)
            c["comment lines"] += sum(1 for line in outside.split("\n") if re.search(r"(?<!\\)%", line))
            c["definitions"] += len(DEFINITION.findall(outside))
            c["unexpanded macro uses"] += sum(len(re.findall(r"\\" + n + r"(?![A-Za-z@])", outside)) for n in names)
            c["bibliography"] += len(re.findall(r"\\bibitem|\\begin\{thebibliography\}", outside))
    print(
        f"\nArXiv: {len(papers)} texlive papers with \\documentclass ({blocks_total} verbatim blocks after the first "
        f"section in their sources)"
    )
    keys = list(counts["corpusmill"])
    print(_row(["", *keys]))
    print(_row(["---"] * (len(keys) + 1)))
    for who, c in counts.items():
        print(_row([who, *[f"{c[k]:,}" for k in keys]]))


# -- StackExchange -------------------------------------------------------------------------------------
def _redpajama_functions(redpajama: str, names):
    """RedPajama's functions, from their source (the module itself runs the whole pipeline at import)."""
    path = os.path.join(redpajama, "data_prep", "stack_exchange", "post_processing.py")
    tree = ast.parse(open(path, encoding="utf-8").read())
    keep = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and node.name in names
        or isinstance(node, ast.Assign)
        and any(getattr(t, "id", "") == "CLEANR" for t in node.targets)
    ]
    scope = {"re": re, "BeautifulSoup": __import__("bs4").BeautifulSoup}
    exec(compile(ast.Module(body=keep, type_ignores=[]), path, "exec"), scope)  # noqa: S102 - their code, benched
    return scope


def _redpajama_qa_pairs(xml: bytes):
    """filter.py's grouping: answers by ParentId (scores as the strings they are), then each question
    with answers, or with a title and none."""
    parents, pairs = {}, []
    rows = [line for line in xml.decode("utf-8-sig").split("\n") if line.strip().startswith("<row")]
    for line in rows:
        root = ET.fromstring(line)
        if "ParentId" in root.attrib:
            parents.setdefault(root.attrib["ParentId"], []).append(
                {"id": root.attrib["Id"], "text": root.attrib["Body"], "score": root.attrib["Score"]}
            )
    for line in rows:
        root = ET.fromstring(line)
        if "ParentId" not in root.attrib:
            post_id = root.attrib["Id"]
            if post_id in parents:
                pairs.append(
                    {
                        "question": {
                            "id": post_id,
                            "text": f"{root.attrib['Title']} {root.attrib['Body']}",
                            "score": root.attrib["Score"],
                        },
                        "answers": parents[post_id],
                    }
                )
            elif "Title" in root.attrib:
                pairs.append(
                    {
                        "question": {
                            "id": post_id,
                            "text": f"{root.attrib['Title']} {root.attrib.get('Body', '')}",
                            "score": root.attrib.get("Score", 0),
                        }
                    }
                )
    return pairs


def _residue(texts):
    joined = "\n".join(texts)
    return {
        "documents": len(texts),
        "chars": len(joined),
        "HTML tags": len(re.findall(r"</?(?:p|a|code|pre|strong|em|br|img|li|ul|ol|blockquote|h\d)\b", joined)),
        "entities": len(re.findall(r"&(?:[a-z]+|#\d+|#x[0-9a-f]+);", joined)),
        "placeholder alt text": joined.count("enter image description here"),
    }


def stackexchange(redpajama: str) -> None:
    import bz2

    from corpusmill.core.files import read_output
    from corpusmill.pipelines.stackexchange import StackExchangeConfig, run_stackexchange

    fns = _redpajama_functions(redpajama, {"cleanhtml"})
    texts, misordered = [], 0
    for site in sorted(os.listdir(SE_DUMP)):
        for name in ("Posts.xml", "Posts.xml.bz2"):
            path = os.path.join(SE_DUMP, site, name)
            if not os.path.exists(path):
                continue
            xml = bz2.decompress(open(path, "rb").read()) if name.endswith(".bz2") else open(path, "rb").read()
            for pair in _redpajama_qa_pairs(xml):
                if "answers" in pair:  # post_processing.process_qa_pair, without its language ID
                    ordered = sorted(pair["answers"], key=lambda x: x["score"], reverse=True)
                    misordered += ordered != sorted(pair["answers"], key=lambda x: int(x["score"]), reverse=True)
                    answers = "\nA: ".join([fns["cleanhtml"](x["text"]) for x in ordered])
                    texts.append(f"Q: {fns['cleanhtml'](pair['question']['text'])}\nA: {answers}")
                else:
                    texts.append(f"Q: {fns['cleanhtml'](pair['question']['text'])}")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "se")
        run_stackexchange(StackExchangeConfig(input=[SE_DUMP], output=out))  # the .7z site too (RedPajama: unpacked)
        mine = [d.text for d in read_output(out)]
    rows = {"corpusmill": _residue(mine), "RedPajama v1 (plain and .bz2 sites)": _residue(texts)}
    rows["corpusmill"]["answers out of score order"] = 0  # numeric sort (tested)
    rows["RedPajama v1 (plain and .bz2 sites)"]["answers out of score order"] = misordered
    print(f"\nStackExchange: tests/data/stackexchange (corpusmill also reads the .7z site, {len(mine)} threads in all)")
    keys = list(rows["corpusmill"])
    print(_row(["", *keys]))
    print(_row(["---"] * (len(keys) + 1)))
    for who, r in rows.items():
        print(_row([who, *[f"{r[k]:,}" for k in keys]]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redpajama", required=True, help="a checkout of RedPajama-Data's rp_v1 branch (data_prep/)")
    ap.add_argument("--texlive", help="usr/share/doc/texlive-doc/latex of the unpacked texlive doc packages")
    args = ap.parse_args()
    if args.texlive:
        arxiv(args.redpajama, args.texlive)
    stackexchange(args.redpajama)


if __name__ == "__main__":
    main()
