"""Rebuild the small real-data samples under tests/data/ (see PROVENANCE.md).

Run with the project's venv after `apt-get install python3.11-doc` and with the pywb 2.10.0 sdist and
the gflanguages 0.7.11 wheel unpacked (paths as arguments). The outputs are committed; this script
documents exactly how they were made.

    python tests/data/make_samples.py --pywb-sdist /tmp/data/pywb-2.10.0 --gflanguages /tmp/data/gfl
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import re
import shutil
import uuid

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HERE = os.path.dirname(os.path.abspath(__file__))
DOCS = "/usr/share/doc/python3.11/html"
BASE_URL = "https://docs.python.org/3.11/"
DATE = "2024-05-01T12:00:00Z"

PAGES = (
    [
        f"faq/{n}.html"
        for n in ("general", "programming", "design", "library", "extending", "windows", "gui", "installed")
    ]
    + [
        f"tutorial/{n}.html"
        for n in (
            "appetite",
            "interpreter",
            "introduction",
            "controlflow",
            "datastructures",
            "modules",
            "inputoutput",
            "errors",
            "classes",
            "stdlib",
            "stdlib2",
            "venv",
            "whatnow",
            "interactive",
            "floatingpoint",
            "appendix",
        )
    ]
    + [
        "about.html",
        "bugs.html",
        "copyright.html",
        "genindex-A.html",
        "genindex-B.html",
        "genindex-Q.html",
        "py-modindex.html",
    ]
)


def _record_id(url: str, kind: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, kind + ':' + url)}>"


def _response(writer, url, body: bytes, content_type="text/html; charset=utf-8", status="200 OK"):
    http = StatusAndHeaders(
        status, [("Content-Type", content_type), ("Content-Length", str(len(body)))], protocol="HTTP/1.1"
    )
    req = StatusAndHeaders(
        "GET /" + url.split("/", 3)[-1] + " HTTP/1.1",
        [("Host", "docs.python.org"), ("User-Agent", "corpusmill-sample")],
        is_http_request=True,
    )
    writer.write_record(
        writer.create_warc_record(
            url,
            "request",
            http_headers=req,
            warc_headers_dict={"WARC-Record-ID": _record_id(url, "request"), "WARC-Date": DATE},
        )
    )
    writer.write_record(
        writer.create_warc_record(
            url,
            "response",
            payload=io.BytesIO(body),
            http_headers=http,
            warc_headers_dict={"WARC-Record-ID": _record_id(url, "response"), "WARC-Date": DATE},
        )
    )


def build_pydocs_warc(path: str) -> None:
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        writer.write_record(
            writer.create_warcinfo_record(
                os.path.basename(path),
                {
                    "software": "corpusmill tests/data/make_samples.py",
                    "description": "Python 3.11 docs (Debian python3.11-doc) as a crawl",
                },
            )
        )
        for page in PAGES:
            with open(os.path.join(DOCS, page), "rb") as fh:
                _response(writer, BASE_URL + page, fh.read())
        # The same page served twice (a recrawl): its lines are all duplicates of the first copy.
        with open(os.path.join(DOCS, "faq/general.html"), "rb") as fh:
            _response(writer, BASE_URL + "faq/general.html?recrawl=1", fh.read())
        # A page in windows-1252, declared only in the HTTP header.
        with open(os.path.join(DOCS, "tutorial/appetite.html"), encoding="utf-8") as fh:
            html = fh.read().replace('charset="utf-8"', 'charset="windows-1252"')
        _response(
            writer,
            BASE_URL + "cp1252/appetite.html",
            html.encode("cp1252", "replace"),
            "text/html; charset=windows-1252",
        )
        # A page in ISO-8859-1 whose only declaration is a <meta charset>.
        with open(os.path.join(DOCS, "tutorial/whatnow.html"), encoding="utf-8") as fh:
            html = fh.read().replace('charset="utf-8"', 'charset="iso-8859-1"')
        _response(writer, BASE_URL + "latin1/whatnow.html", html.encode("latin-1", "replace"), "text/html")
        # Non-HTML payload, an empty page, a missing page.
        with open(os.path.join(DOCS, "_images/tk_msg.png"), "rb") as fh:
            _response(writer, BASE_URL + "_images/tk_msg.png", fh.read(), "image/png")
        _response(writer, BASE_URL + "empty.html", b"<html><head><title></title></head><body></body></html>")
        _response(
            writer, BASE_URL + "missing.html", b"<html><body><h1>Not Found</h1></body></html>", status="404 Not Found"
        )
        # A revisit record (the server said: unchanged since the last crawl).
        writer.write_record(
            writer.create_revisit_record(
                BASE_URL + "faq/general.html",
                digest="sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                refers_to_uri=BASE_URL + "faq/general.html",
                refers_to_date=DATE,
                warc_headers_dict={
                    "WARC-Record-ID": _record_id(BASE_URL + "faq/general.html", "revisit"),
                    "WARC-Date": DATE,
                },
            )
        )


# lid.176 labels for the UDHR samples we keep (a language lid.176 knows, written in its main script).
LID_LANGS = [
    "af",
    "am",
    "ar",
    "az",
    "be",
    "bg",
    "bn",
    "br",
    "ca",
    "cs",
    "cy",
    "da",
    "de",
    "el",
    "en",
    "eo",
    "es",
    "et",
    "eu",
    "fa",
    "fi",
    "fr",
    "ga",
    "gl",
    "gu",
    "he",
    "hi",
    "hr",
    "hu",
    "hy",
    "id",
    "is",
    "it",
    "ja",
    "ka",
    "kk",
    "km",
    "kn",
    "ko",
    "lt",
    "lv",
    "mk",
    "ml",
    "mn",
    "mr",
    "ms",
    "mt",
    "my",
    "ne",
    "nl",
    "no",
    "pa",
    "pl",
    "pt",
    "ro",
    "ru",
    "si",
    "sk",
    "sl",
    "sq",
    "sr",
    "sv",
    "sw",
    "ta",
    "te",
    "th",
    "tl",
    "tr",
    "uk",
    "ur",
    "uz",
    "vi",
    "zh",
]
GFL_IDS = {
    "fa": "fa_Arab",
    "zh": "zh_Hans",
    "sr": "sr_Cyrl",
    "uz": "uz_Latn",
    "ms": "ms_Latn",
    "mn": "mn_Cyrl",
    "az": "az_Latn",
    "no": "nb_Latn",
    "tl": "fil_Latn",
    "sw": "sw_Latn",
    "ar": "ar_Arab",
    "ne": "ne_Deva",
    "kk": "kk_Cyrl",
    "pa": "pa_Guru",
    "ur": "ur_Arab",
    "et": "et_Latn",
    "sq": "sq_Latn",
    "id": "id_Latn",
    "he": "he_Hebr",
    "ja": "ja_Jpan",
    "am": "am_Ethi",
    "be": "be_Cyrl",
    "bg": "bg_Cyrl",
    "bn": "bn_Beng",
    "el": "el_Grek",
    "gu": "gu_Gujr",
    "hi": "hi_Deva",
    "hy": "hy_Armn",
    "ka": "ka_Geor",
    "km": "km_Khmr",
    "kn": "kn_Knda",
    "ko": "ko_Kore",
    "mk": "mk_Cyrl",
    "ml": "ml_Mlym",
    "mr": "mr_Deva",
    "my": "my_Mymr",
    "ru": "ru_Cyrl",
    "si": "si_Sinh",
    "ta": "ta_Taml",
    "te": "te_Telu",
    "th": "th_Thai",
    "uk": "uk_Cyrl",
}


def build_udhr(gfl_dir: str, path: str) -> int:
    langs_dir = os.path.join(gfl_dir, "gflanguages", "data", "languages")
    rows = []
    for lang in LID_LANGS:
        fname = GFL_IDS.get(lang, f"{lang}_Latn")  # the language's main script
        fpath = os.path.join(langs_dir, fname + ".textproto")
        if not os.path.exists(fpath):
            continue
        text = open(fpath, encoding="utf-8").read()
        spec = re.search(r'specimen_36: "((?:[^"\\]|\\.)*)"', text) or re.search(r'tester: "((?:[^"\\]|\\.)*)"', text)
        if not spec:
            continue
        sample = ast.literal_eval('"' + spec.group(1) + '"')
        rows.append({"lang": lang, "gflanguages_id": fname, "text": sample})
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pywb-sdist", required=True)
    ap.add_argument("--gflanguages", required=True)
    args = ap.parse_args()
    build_pydocs_warc(os.path.join(HERE, "warc", "pydocs.warc.gz"))
    warcs = os.path.join(args.pywb_sdist, "sample_archive", "warcs")
    for name in (
        "iana.warc.gz",
        "example-bad.warc.gz.bad",
        "missing-status-text.warc",
        "bad.arc",
        "example.arc.gz",
        "dupes.warc.gz",
    ):
        shutil.copy(os.path.join(warcs, name), os.path.join(HERE, "warc", name))
    n = build_udhr(args.gflanguages, os.path.join(HERE, "udhr.jsonl"))
    print(f"wrote pydocs.warc.gz, copied pywb samples, {n} UDHR languages")


if __name__ == "__main__":
    main()
