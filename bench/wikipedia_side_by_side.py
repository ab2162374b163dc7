"""Wikipedia: corpusmill's source against the TFDS / Hugging Face ``wikipedia`` builder's cleaning (what
RedPajama v1 used, through Hugging Face's copy of it) on the same real dump, residue counted in both.

    pip download --no-deps tensorflow-datasets -d /tmp/tfds && (cd /tmp/tfds && unzip -q *.whl)
    .venv/bin/python bench/wikipedia_side_by_side.py \\
        --tfds-wikipedia /tmp/tfds/tensorflow_datasets/text/wikipedia.py [--dump tests/data/wikipedia/...bz2]

The builder's own ``_parse_and_clean_wikicode`` is taken from its source file (the function and its
``re_rm_wikilink`` pattern, executed as written; nothing of it is committed here) and run on the pages its
extraction keeps (main namespace, non-empty, not ``#redirect``). corpusmill runs its ``source wikipedia``
stage. Both outputs are then scanned for the same residue. Record the numbers in docs/sources.md.
"""

from __future__ import annotations

import argparse
import ast
import bz2
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as etree

HERE = os.path.dirname(os.path.abspath(__file__))
DUMP = os.path.join(HERE, "..", "tests", "data", "wikipedia", "enwiki-sample-multistream.xml.bz2")

RESIDUE = {
    "image residue (thumb|, NNNpx)": re.compile(r"\bthumb\||\b\d+px\b"),
    "table syntax lines ({| |- |} ! |)": re.compile(r"^\s*(\{\||\|-|\|\}|!|\|)", re.M),
    "template braces {{ }}": re.compile(r"\{\{|\}\}"),
    "link brackets [[ ]]": re.compile(r"\[\[|\]\]"),
    "Category: / File: lines": re.compile(r"^\s*(Category|File|Image):", re.M),
    "HTML entities and tags": re.compile(r"&[a-z]+;|</?(ref|br|small|sup|sub|div|span)\b", re.I),
    "reference sections left (References, External links, See also, Notes)": re.compile(
        r"^(References|External links|See also|Notes|Further reading)\s*$", re.M
    ),
}


def tfds_cleaner(path: str):
    """The builder's ``_parse_and_clean_wikicode`` (nested in ``_generate_examples``) as a function of the
    raw wikitext, compiled from its own source."""
    import mwparserfromhell

    tree = ast.parse(open(path, encoding="utf-8").read())
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "_parse_and_clean_wikicode":
            found["fn"] = node
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "re_rm_wikilink" for t in node.targets):
            found["re"] = node
    if set(found) != {"fn", "re"}:
        raise SystemExit(f"{path}: no _parse_and_clean_wikicode / re_rm_wikilink found; is it TFDS's wikipedia.py?")
    module = ast.Module(body=[found["re"], found["fn"]], type_ignores=[])
    scope = {"re": re, "mwparserfromhell": mwparserfromhell}
    exec(compile(module, path, "exec"), scope)  # noqa: S102 - the anchor's own code, named by the user
    return scope["_parse_and_clean_wikicode"]


def tfds_pages(dump: str):
    """(title, wikitext) of the pages the builder keeps: namespace 0, a text, not a redirect."""
    with bz2.open(dump, "rb") as fh:
        for _event, elem in etree.iterparse(fh, events=("end",)):
            if not elem.tag.endswith("page"):
                continue
            ns = elem.tag[:-4]
            if elem.findtext(f"{ns}ns") != "0":
                elem.clear()
                continue
            text = elem.findtext(f"{ns}revision/{ns}text")
            title = elem.findtext(f"{ns}title")
            elem.clear()
            if text and not text[:9].lower().startswith("#redirect"):
                yield title, text


def corpusmill_texts(dump: str, out: str):
    subprocess.run(
        [sys.executable, "-m", "corpusmill.cli.main", "source", "wikipedia", "--input", dump, "--output", out],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    from corpusmill.core.files import read_output

    return [(d.metadata.get("title", d.id), d.text) for d in read_output(out)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tfds-wikipedia", required=True, help="tensorflow_datasets/text/wikipedia.py")
    ap.add_argument("--dump", default=DUMP)
    args = ap.parse_args()
    clean = tfds_cleaner(args.tfds_wikipedia)
    theirs = [(t, clean(w)) for t, w in tfds_pages(args.dump)]
    theirs = [(t, x) for t, x in theirs if x]
    with tempfile.TemporaryDirectory() as tmp:
        mine = corpusmill_texts(args.dump, os.path.join(tmp, "wiki"))
    print(f"dump: {args.dump}")
    print("| | articles | characters | " + " | ".join(RESIDUE) + " |")
    print("|---|---|---|" + "---|" * len(RESIDUE))
    for name, docs in (("corpusmill", mine), ("TFDS / HF builder", theirs)):
        counts = [sum(len(rx.findall(text)) for _, text in docs) for rx in RESIDUE.values()]
        print(f"| {name} | {len(docs)} | {sum(len(x) for _, x in docs):,} | " + " | ".join(map(str, counts)) + " |")
    titles_m, titles_t = {t for t, _ in mine}, {t for t, _ in theirs}
    print(f"\narticles only the builder keeps: {sorted(titles_t - titles_m)[:20]} ({len(titles_t - titles_m)})")
    print(f"articles only corpusmill keeps: {sorted(titles_m - titles_t)[:20]} ({len(titles_m - titles_t)})")


if __name__ == "__main__":
    main()
