"""Rebuild tests/data/arxiv/ from Debian's texlive-publishers-doc (see tests/data/PROVENANCE.md).

    apt-get download texlive-publishers-doc && dpkg -x texlive-publishers-doc_*.deb /tmp/tl
    python tests/data/arxiv/make_arxiv.py /tmp/tl/usr/share/doc/texlive-doc/latex

- ``papers/*.tex.gz``: four journal samples, copied as Debian ships them (a single gzipped ``.tex`` is also
  how arXiv ships a one-file paper);
- ``folders/ecothesis/``: a multi-file LaTeX project (main.tex with ``\\input``/``\\include`` of files in
  sub-folders, one commented-out ``\\input``), the ``.tex`` files only, gunzipped; the package's own
  documentation (``ecothesis.tex``) is left out;
- ``packages/aipguide/``, ``packages/elsdoc/``: papers that load their own ``.sty`` (revtex4-1's AIP guide
  with ``docs.sty``; elsarticle's documentation with ``rvdtx.sty`` and ``pdfwidgets.sty``, which also has
  verbatim-like ``vquote`` environments, ``\\verb`` and a ``comment`` environment), gunzipped.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = {"aastex/sample631.tex.gz": "aastex-sample631.tex.gz", "ijmart/ijmsample.tex.gz": "ijmart-ijmsample.tex.gz",
           "aomart/aomsample.tex.gz": "aomart-aomsample.tex.gz",
           "revtex4-1/sample/aps/apssamp.tex.gz": "revtex-apssamp.tex.gz"}


def main(latex: str) -> None:
    os.makedirs(os.path.join(HERE, "papers"), exist_ok=True)
    for src, dst in SAMPLES.items():
        shutil.copyfile(os.path.join(latex, src), os.path.join(HERE, "papers", dst))
    root = os.path.join(latex, "ecothesis")
    out = os.path.join(HERE, "folders", "ecothesis")
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if rel == "ecothesis.tex.gz" or not name.endswith((".tex", ".tex.gz")):
                continue
            target = os.path.join(out, rel[:-3] if rel.endswith(".gz") else rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            opener = gzip.open if rel.endswith(".gz") else open
            with opener(os.path.join(root, rel), "rb") as fh, open(target, "wb") as dst_fh:
                dst_fh.write(fh.read())

    packages = {"aipguide": ["revtex4-1/aip/aipguide4-1.tex.gz", "revtex4-1/aip/docs.sty"],
                "elsdoc": ["elsarticle/elsdoc.tex.gz", "elsarticle/rvdtx.sty.gz", "elsarticle/pdfwidgets.sty.gz"]}
    for folder, files in packages.items():
        os.makedirs(os.path.join(HERE, "packages", folder), exist_ok=True)
        for rel in files:
            name = os.path.basename(rel)[:-3] if rel.endswith(".gz") else os.path.basename(rel)
            opener = gzip.open if rel.endswith(".gz") else open
            with opener(os.path.join(latex, rel), "rb") as fh, open(os.path.join(HERE, "packages", folder, name), "wb") as out_fh:
                out_fh.write(fh.read())


if __name__ == "__main__":
    main(sys.argv[1])
