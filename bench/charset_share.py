"""The U+FFFD share of real pages and of mislabelled ones: what ``MAX_REPLACEMENT_SHARE`` rests on.

    .venv/bin/python bench/charset_share.py [--html-dir /usr/share/doc/python3.11/html] [--html-dir DIR ...]

Real pages: every HTML response and WET record in tests/data (WARC, ARC, WET), plus every ``*.html``
under each ``--html-dir`` (Debian's python3.11-doc; trafilatura's sdist ``tests/resources``). Each is
decoded the way the CCNet stage decodes it (corpusmill.filters.html.decode_html) and its share of
U+FFFD is measured.

Mislabelled pages: the UDHR samples of tests/data/charset (12 languages, 10 scripts) wrapped in HTML,
encoded in each language's legacy code page, with an HTTP header that says ``charset=utf-8``. For each:
the share when decoded as the header says (what corpusmill did before issue 13), and whether the
decoding by evidence gives back the original text.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os

from warcio.archiveiterator import ArchiveIterator

from corpusmill.filters import html
from corpusmill.filters.charset import MAX_REPLACEMENT_SHARE, replacement_share

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, os.pardir, "tests", "data")
LEGACY = {
    "ja_Jpan": "shift_jis",
    "ru_Cyrl": "cp1251",
    "uk_Cyrl": "koi8-u",
    "el_Grek": "cp1253",
    "zh_Hans": "gb2312",
    "ko_Kore": "euc-kr",
    "de_Latn": "cp1252",
    "fr_Latn": "iso8859-1",
    "pl_Latn": "cp1250",
    "tr_Latn": "cp1254",
    "ar_Arab": "cp1256",
    "he_Hebr": "cp1255",
}


def real_pages(html_dirs):
    for path in sorted(
        glob.glob(
            os.path.join(
                DATA,
                "**",
                "*.*",
            ),
            recursive=True,
        )
    ):
        if not path.endswith((".warc.gz", ".arc.gz", ".wet.gz", ".warc")):
            continue
        with open(path, "rb") as fh:
            try:
                for rec in ArchiveIterator(fh, arc2warc=True):
                    if rec.rec_type == "conversion":
                        yield path, rec.content_stream().read().decode("utf-8", "replace")
                    elif rec.rec_type in ("response", "resource"):
                        headers = rec.http_headers if rec.http_headers is not None else rec.rec_headers
                        ctype = headers.get_header("Content-Type")
                        if html.is_html(ctype):
                            yield path, html.decode_html(rec.content_stream().read(), ctype)[0]
            except Exception:  # noqa: BLE001 - the deliberately broken files of tests/data/warc
                continue
    for root in html_dirs:
        for path in sorted(glob.glob(os.path.join(root, "**", "*.html*"), recursive=True)):
            body = open(path, "rb").read()
            if path.endswith(".gz"):
                body = gzip.decompress(body)
            yield path, html.decode_html(body, None)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html-dir", action="append", default=[])
    args = ap.parse_args()
    shares = [(replacement_share(text), path) for path, text in real_pages(args.html_dir) if text]
    nonzero = sorted((s for s in shares if s[0] > 0), reverse=True)
    print(
        f"real pages: {len(shares)}; with any U+FFFD: {len(nonzero)}; largest share: "
        f"{max(s for s, _ in shares):.6f}; above the threshold {MAX_REPLACEMENT_SHARE}: "
        f"{sum(s > MAX_REPLACEMENT_SHARE for s, _ in shares)}"
    )
    for share, path in nonzero[:5]:
        print(f"  {share:.6f}  {os.path.relpath(path)}")
    print("\nmislabelled (header says utf-8):")
    print(f"{'sample':10} {'encoded as':12} {'share as utf-8':>14}  by evidence")
    with open(os.path.join(DATA, "charset", "udhr_samples.jsonl"), encoding="utf-8") as fh:
        samples = [json.loads(line) for line in fh]
    for s in samples:
        page = f"<html><body><p>{s['text'].replace(chr(10), '</p><p>')}</p></body></html>"
        try:
            body = page.encode(LEGACY[s["lang"]])
        except UnicodeEncodeError:  # the sample has a character the code page lacks (’ in Latin-1)
            LEGACY[s["lang"]] = "cp1252"
            body = page.encode("cp1252")
        as_declared = body.decode("utf-8", "replace")
        text, codec = html.decode_html(body, "text/html; charset=utf-8")
        verdict = "same text" if text == page else ("undecodable (dropped)" if text is None else f"DIFFERS ({codec})")
        print(f"{s['lang']:10} {LEGACY[s['lang']]:12} {replacement_share(as_declared):14.3f}  {codec}: {verdict}")


if __name__ == "__main__":
    main()
