"""Rebuild tests/data/github/repos/: real files laid out as a few "repositories".

    .venv/bin/python tests/data/github/make_github_samples.py

Sources (see tests/data/PROVENANCE.md): the CPython 3.11.7 standard library and headers installed on the
machine (PSF license; dynamic_annotations.h is BSD-3-Clause, Google), Debian python3.11-doc
(_static/language_data.js, BSD-2-Clause, Sphinx), Debian python3-dev (searchindex.js, a generated
Sphinx index) and Debian libjs-underscore (underscore.min.js, MIT). No file is modified.

What each is for: ordinary code that passes; license headers to strip (email/*.py: leading `#` lines;
dynamic_annotations.h and language_data.js: a /* */ block); exact duplicates across repositories
(vendored-json copies two json modules); files each filter drops: a minified and a generated one-line
JavaScript file (max_line_length), expat224_utf8_bug.xml (mean_line_length), an empty __init__.py
(alnum_share), colorsys.py and inC14N6.xml (alpha_per_token), module_iso_8859_1.py (not UTF-8), and
files outside the extension allow-list (README.txt, python.gif). The binary and 100 MB files are made by
the tests themselves (tests/test_github.py).
"""

from __future__ import annotations

import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"
INCLUDE = "/root/.pyenv/versions/3.11.7/include/python3.11"

FILES = {
    "cpython-json": [(f"{LIB}/json/{n}", f"json/{n}") for n in ("__init__.py", "scanner.py", "tool.py")],
    "cpython-email": [(f"{LIB}/email/{n}", f"email/{n}") for n in ("__init__.py", "base64mime.py", "errors.py")]
    + [(f"{LIB}/email/mime/__init__.py", "email/mime/__init__.py"), (f"{LIB}/idlelib/README.txt", "README.txt")],
    "cpython-misc": [
        (f"{LIB}/colorsys.py", "Lib/colorsys.py"),
        (f"{LIB}/test/encoded_modules/module_iso_8859_1.py", "Lib/test/encoded_modules/module_iso_8859_1.py"),
        (f"{LIB}/test/xmltestdata/expat224_utf8_bug.xml", "Lib/test/xmltestdata/expat224_utf8_bug.xml"),
        (f"{LIB}/test/xmltestdata/c14n-20/inC14N6.xml", "Lib/test/xmltestdata/c14n-20/inC14N6.xml"),
        (f"{INCLUDE}/dynamic_annotations.h", "Include/dynamic_annotations.h"),
        (f"{LIB}/idlelib/Icons/python.gif", "Lib/idlelib/Icons/python.gif"),
    ],
    "vendored-json": [
        (f"{LIB}/json/scanner.py", "third_party/json/scanner.py"),
        (f"{LIB}/json/tool.py", "third_party/json/tool.py"),
    ],
    "sphinx-static": [
        ("/usr/share/doc/python3.11/html/_static/language_data.js", "_static/language_data.js"),
        ("/usr/share/javascript/underscore/underscore.min.js", "_static/underscore.min.js"),
        ("/usr/share/doc/python3/searchindex.js", "searchindex.js"),
    ],
}


def main() -> None:
    root = os.path.join(HERE, "repos")
    shutil.rmtree(root, ignore_errors=True)
    n = 0
    for repo, files in FILES.items():
        for src, rel in files:
            dst = os.path.join(root, repo, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(src, dst)
            n += 1
    print(f"copied {n} files into {root}")


if __name__ == "__main__":
    main()
