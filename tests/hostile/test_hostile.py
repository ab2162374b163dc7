"""The hostile-input table (issue 13): one row per attack, each asserting its outcome.

Every row builds a clean real input, runs the stage on it (the baseline), adds its attack to that
same input and runs again. It then asserts the attack's outcome (a dead letter naming the entry, a
drop with its reason, a counter, a repaired document) and that nothing else changed: every document
of the baseline comes out again, byte for byte (its JSON form). docs/reliability.md lists the rows.
Attacks that end a command before any work (exit 2 with one line) are in ``test_refused``.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
from typing import Callable, List, Optional

import pytest
from sources import DATA, SOURCES, run_source

from corpusmill.cli.main import main as cli_main
from corpusmill.core.files import read_dropped, read_failed, read_output

BAD_NAME = os.fsdecode(b"caf\xe9-\xff")  # a file name that is not UTF-8 (os.listdir's surrogate escapes)
OUTSIDE_SECRET = "AWS_SECRET_ACCESS_KEY = 'outside-the-input-0123456789'"


# -- what an attack's outcome may be ------------------------------------------------------------------
@dataclasses.dataclass
class Expect:
    step: str
    failed: Optional[str] = None  # a dead letter whose location contains this
    error: str = ""  # ... and whose error contains this
    dropped: Optional[str] = None  # a drop reason ...
    at: str = ""  # ... of a record whose location contains this
    counter: Optional[str] = None  # a stats.json counter of the step
    check: Optional[Callable] = None  # more: check(new_documents, out_dir)
    lost: Optional[Callable] = None  # the clean run's documents the attack may take (by their JSON form)


@dataclasses.dataclass
class Attack:
    id: str
    stage: str
    clean: Callable[[str], dict]  # build the clean input under tmp; returns the stage's fields
    attack: Callable[[str], None]  # add the attack to that input
    expect: Expect


def _copy(src: str, dst: str) -> str:
    (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, dst)
    return dst


def _outside(tmp: str) -> str:
    """A directory outside the input, holding what a link would leak."""
    os.makedirs(os.path.join(tmp, "outside", "repo"), exist_ok=True)
    with open(os.path.join(tmp, "outside", "creds.py"), "w") as fh:
        fh.write(OUTSIDE_SECRET + "\n")
    shutil.copy(os.path.join(tmp, "outside", "creds.py"), os.path.join(tmp, "outside", "repo", "creds.py"))
    with open(os.path.join(tmp, "outside", "paper.tex"), "w") as fh:
        fh.write(
            "\\documentclass{article}\\begin{document}\\section{Secret}"
            + OUTSIDE_SECRET
            + " "
            + "words " * 300
            + "\\end{document}\n"
        )
    return os.path.join(tmp, "outside")


def _no_secret(docs, out):
    for path, _dirs, files in os.walk(out):
        for name in files:
            data = open(os.path.join(path, name), "rb").read()
            if name.endswith(".gz"):
                data = gzip.decompress(data)
            assert b"outside-the-input" not in data, f"{name} holds a file from outside the input"


# -- the inputs ----------------------------------------------------------------------------------------
def github_input(tmp):
    return {"mode": "local", "input": [_copy(os.path.join(DATA, "github", "repos"), os.path.join(tmp, "repos"))]}


def arxiv_input(tmp):
    return {"input": [_copy(os.path.join(DATA, "arxiv", "papers"), os.path.join(tmp, "papers"))]}


def books_input(tmp):
    return {"input": [_copy(os.path.join(DATA, "books", "milton"), os.path.join(tmp, "books"))]}


def warc_input(tmp):
    os.makedirs(os.path.join(tmp, "crawl"))
    _copy(os.path.join(DATA, "warc", "iana.warc.gz"), os.path.join(tmp, "crawl", "iana.warc.gz"))
    return {"input": [os.path.join(tmp, "crawl")], "languages": ["en"]}


def jsonl_input(tmp):
    os.makedirs(os.path.join(tmp, "docs"))
    with (
        open(os.path.join(DATA, "udhr.jsonl"), encoding="utf-8") as fh,
        open(os.path.join(tmp, "docs", "udhr.jsonl"), "w", encoding="utf-8") as out,
    ):
        for i, line in enumerate(fh):
            rec = json.loads(line)
            out.write(json.dumps({"id": f"udhr-{rec['lang']}", "text": rec["text"], "location": f"udhr:{i}"}) + "\n")
    return {"input": [os.path.join(tmp, "docs")], "languages": None, "min_length": 0}


def c4_released_input(tmp):
    return {
        "mode": "released",
        "input": [
            _copy(
                os.path.join(DATA, "c4", "c4-released-sample.json.gz"),
                os.path.join(tmp, "c4-train.00000-of-01024.json.gz"),
            )
        ],
    }


def wiki_input(tmp):
    return {
        "input": [
            _copy(
                os.path.join(DATA, "wikipedia", "enwiki-sample-multistream.xml.bz2"),
                os.path.join(tmp, "enwiki-multistream.xml.bz2"),
            )
        ]
    }


def se_input(tmp):
    return {"input": [_copy(os.path.join(DATA, "stackexchange"), os.path.join(tmp, "se"))]}


# -- the attacks ---------------------------------------------------------------------------------------
def link(target_fn, name_fn):
    def attack(tmp):
        os.symlink(target_fn(tmp), name_fn(tmp))

    return attack


def write(path_fn, data: bytes):
    def attack(tmp):
        with open(path_fn(tmp), "wb") as fh:
            fh.write(data)

    return attack


def add_jsonl(*records: str):
    def attack(tmp):
        with open(os.path.join(tmp, "docs", "udhr.jsonl"), "a", encoding="utf-8") as fh:
            for r in records:
                fh.write(r + "\n")

    return attack


def flip_bz2_stream(tmp):
    path = os.path.join(tmp, "enwiki-multistream.xml.bz2")
    data = bytearray(open(path, "rb").read())
    for i in range(30000, 30040):  # inside the 9th of 15 streams (26778-38634)
        data[i] ^= 0x55
    open(path, "wb").write(bytes(data))


def udhr_sample(lang: str) -> str:
    with open(os.path.join(DATA, "charset", "udhr_samples.jsonl"), encoding="utf-8") as fh:
        return next(json.loads(line)["text"] for line in fh if json.loads(line)["lang"] == lang)


def book_in(encoding: str, lang: str, name: str):
    def attack(tmp):
        text = ("THE SAMPLE\n\n" + udhr_sample(lang) + "\n") * 3
        with open(os.path.join(tmp, "books", name), "wb") as fh:
            fh.write(text.encode(encoding))

    return attack


def decoded_as(name: str, lang: str, encoding: str):
    def check(docs, out):
        doc = next(d for d in docs if d.location.endswith(name))
        assert udhr_sample(lang) in doc.text and doc.metadata["encoding"] == encoding

    return check


def mislabelled_page(tmp):
    """A real WARC response whose page is re-encoded in cp1251 with a header that still says utf-8."""
    from helpers import rewrite_warc_page

    rewrite_warc_page(
        os.path.join(DATA, "warc", "pydocs.warc.gz"),
        os.path.join(tmp, "crawl", "ru.warc.gz"),
        udhr_sample("ru_Cyrl"),
        "cp1251",
        "text/html; charset=utf-8",
    )


def undecodable_page(tmp):
    from helpers import rewrite_warc_page

    rewrite_warc_page(
        os.path.join(DATA, "warc", "pydocs.warc.gz"),
        os.path.join(tmp, "crawl", "junk.warc.gz"),
        None,
        "utf-8",
        "text/html; charset=utf-8",
    )


def has_text(fragment: str):
    def check(docs, out):
        assert any(fragment in d.text for d in docs), f"no document holds {fragment!r}"

    return check


def lacks_text(fragment: str):
    def check(docs, out):
        assert not any(fragment in d.text for d in docs), f"a document holds {fragment!r}"
        dropped = read_dropped(out)["line_dedup"]["too_short"]
        assert sum(fragment in r["document"]["text"] for r in dropped) == 2  # both copies, each accounted

    return check


def repaired(docs, out):
    doc = next(d for d in docs if d.id.startswith("bad"))
    assert doc.id == "bad\ufffdid" and "\ufffd" in doc.text and "\ud800" not in doc.text


# a real-looking C4 page (5 sentences, 60 words) with a lone surrogate escape where a character was
HARBOUR = (
    "The harbour festival opens on Friday with music, food stalls and boat rides for the whole family. "
    "Visitors can walk along the old pier \udcff until late in the evening. Tickets are free for children "
    "under ten and half price for students. Parking is available near the station and at the school. "
    "The organisers thank the volunteers who have prepared the event since the spring."
)
RU_FIRST_LINE = udhr_sample("ru_Cyrl").split("\n")[0][:40]

ATTACKS: List[Attack] = [
    # links: never followed, counted, never in the output
    Attack(
        "github-top-file-link",
        "github",
        github_input,
        lambda t: (
            _outside(t),
            os.symlink(os.path.join(t, "outside", "creds.py"), os.path.join(t, "repos", "creds.py")),
        ),
        Expect("extension", dropped="symlink", at="repos/creds.py", check=_no_secret),
    ),
    Attack(
        "github-top-dir-link",
        "github",
        github_input,
        lambda t: (_outside(t), os.symlink(os.path.join(t, "outside", "repo"), os.path.join(t, "repos", "linked"))),
        Expect("extension", dropped="symlink", at="repos/linked", check=_no_secret),
    ),
    Attack(
        "github-nested-link",
        "github",
        github_input,
        lambda t: (
            _outside(t),
            os.symlink(
                os.path.join(t, "outside", "creds.py"), os.path.join(t, "repos", "cpython-json", "json", "creds.py")
            ),
        ),
        Expect("extension", dropped="symlink", at="json/creds.py", check=_no_secret),
    ),
    Attack(
        "arxiv-top-link",
        "arxiv",
        arxiv_input,
        lambda t: (
            _outside(t),
            os.symlink(os.path.join(t, "outside", "paper.tex"), os.path.join(t, "papers", "x.tex")),
        ),
        Expect("extract", dropped="symlink", at="papers/x.tex", check=_no_secret),
    ),
    Attack(
        "ccnet-linked-warc",
        "ccnet",
        warc_input,
        link(lambda t: os.path.join(DATA, "warc", "pydocs.warc.gz"), lambda t: os.path.join(t, "crawl", "l.warc.gz")),
        Expect("extract", dropped="symlink", at="crawl/l.warc.gz"),
    ),
    Attack(
        "books-linked-dir",
        "books",
        books_input,
        link(lambda t: os.path.join(DATA, "books", "shakespeare"), lambda t: os.path.join(t, "books", "more")),
        Expect("read", dropped="symlink", at="books/more"),
    ),
    # names and characters a coder or writer cannot encode: read, shown as \xNN, or repaired and counted
    Attack(
        "books-non-utf8-name",
        "books",
        books_input,
        lambda t: shutil.copy(
            os.path.join(DATA, "books", "shakespeare", "comedy_of_errors_gut.txt.gz"),
            os.path.join(t, "books", BAD_NAME + ".txt.gz"),
        ),
        Expect("read", counter="surrogates_replaced", check=has_text("Antipholus")),
    ),
    Attack(
        "ccnet-non-utf8-name",
        "ccnet",
        warc_input,
        lambda t: shutil.copy(
            os.path.join(DATA, "warc", "pydocs.warc.gz"), os.path.join(t, "crawl", BAD_NAME + ".warc.gz")
        ),
        Expect(
            "extract",
            counter="surrogates_replaced",
            check=lambda docs, out: any("caf\\xe9-\\xff" in d.location for d in docs) or pytest.fail("no doc"),
        ),
    ),
    Attack(
        "github-non-utf8-name",
        "github",
        github_input,
        write(
            lambda t: os.path.join(t, "repos", "cpython-json", "json", BAD_NAME + ".py"),
            b'"""A module with an odd name."""\n\ndef odd_name_function(value):\n    return value * 2 + 1\n',
        ),
        Expect("read", counter="surrogates_replaced", check=has_text("odd_name_function")),
    ),
    Attack(
        "jsonl-lone-surrogates",
        "ccnet",
        jsonl_input,
        add_jsonl(
            '{"id": "bad\\ud800id", "text": "A record with a lone \\udc80 surrogate in its text, about '
            'lighthouses on the northern coast.", "location": "x:1"}'
        ),
        Expect("read", counter="surrogates_replaced", check=repaired),
    ),
    Attack(
        "c4-lone-surrogate",
        "c4 released",
        c4_released_input,
        lambda t: _append_gz(
            os.path.join(t, "c4-train.00000-of-01024.json.gz"),
            json.dumps({"text": HARBOUR, "url": "https://example.org/x", "timestamp": "2019-04-20T00:00:00Z"}),
        ),
        Expect("read", counter="surrogates_replaced", check=has_text("harbour festival")),
    ),
    # files that cannot be read: one dead letter each, naming the file
    Attack(
        "empty-parquet",
        "ccnet",
        jsonl_input,
        write(lambda t: os.path.join(t, "docs", "empty.parquet"), b""),
        Expect("read", failed="docs/empty.parquet@0", error="Parquet file size is 0 bytes"),
    ),
    Attack(
        "truncated-parquet",
        "ccnet",
        jsonl_input,
        lambda t: _truncated_parquet(os.path.join(t, "docs", "cut.parquet")),
        Expect("read", failed="docs/cut.parquet@0", error="magic bytes"),
    ),
    Attack(
        "metadata-a-writer-cannot-encode",
        "ccnet",
        jsonl_input,
        lambda t: _datetime_parquet(os.path.join(t, "docs", "dt.parquet")),
        Expect("read", failed="docs/dt.parquet#rowgroup0:0", error="not JSON-serialisable"),
    ),
    # one record given twice (same id, same location): two records of the file, told apart by their place in
    # it (a mark is never shared by id); as copies of each other, every line of theirs is in two documents,
    # so line dedup removes both
    Attack(
        "duplicate-record",
        "ccnet",
        jsonl_input,
        add_jsonl(
            '{"id": "twin", "text": "Twin record about the migration of cranes over the valley.", "location": "t:1"}',
            '{"id": "twin", "text": "Twin record about the migration of cranes over the valley.", "location": "t:1"}',
        ),
        Expect("line_dedup", dropped="too_short", at="t:1", check=lacks_text("migration of cranes")),
    ),
    # compressed data damaged in one bz2 stream: only that stream's pages are lost
    Attack(
        "bz2-damaged-stream",
        "wikipedia",
        wiki_input,
        flip_bz2_stream,
        Expect(
            "parse",
            failed="enwiki-multistream.xml.bz2@bz2:",
            error="bz2 stream starting at byte 26778 is damaged",
            lost=lambda doc: "@bz2:26778+" in doc,
        ),
    ),  # that stream's pages, no other
    # a StackExchange site file that is not an archive: a dead letter naming the file, not the site
    Attack(
        "stackexchange-bad-7z",
        "stackexchange",
        se_input,
        write(lambda t: os.path.join(t, "se", "broken.python-faq.example.7z"), b"7z\xbc\xaf\x27\x1c" + b"\x00" * 64),
        Expect("parse", failed="broken.python-faq.example.7z"),
    ),
    # text in legacy code pages: decoded by evidence, or dropped, never kept as mojibake
    Attack(
        "book-shift-jis",
        "books",
        books_input,
        book_in("shift_jis", "ja_Jpan", "ja.txt"),
        Expect("read", check=decoded_as("ja.txt", "ja_Jpan", "cp932")),
    ),
    Attack(
        "book-cp1251",
        "books",
        books_input,
        book_in("cp1251", "ru_Cyrl", "ru.txt"),
        Expect("read", check=decoded_as("ru.txt", "ru_Cyrl", "cp1251")),
    ),
    Attack(
        "book-utf16-no-bom",
        "books",
        books_input,
        book_in("utf-16-le", "el_Grek", "el.txt"),
        Expect("read", check=decoded_as("el.txt", "el_Grek", "utf-16-le")),
    ),
    Attack(
        "book-binary",
        "books",
        books_input,
        write(lambda t: os.path.join(t, "books", "notes.txt"), gzip.compress(b"not text at all " * 500, mtime=0)),
        Expect("read", dropped="undecodable", at="books/notes.txt"),
    ),
    Attack(
        "page-mislabelled-utf8",
        "ccnet",
        lambda t: dict(warc_input(t), languages=["en", "ru"]),
        mislabelled_page,
        Expect("extract", check=has_text(RU_FIRST_LINE)),
    ),
    Attack(
        "page-undecodable",
        "ccnet",
        warc_input,
        undecodable_page,
        Expect("extract", dropped="undecodable", at="crawl/junk.warc.gz@"),
    ),
]


def _append_gz(path: str, line: str) -> None:
    data = gzip.decompress(open(path, "rb").read()) + line.encode("ascii") + b"\n"
    open(path, "wb").write(gzip.compress(data, mtime=0))


def _truncated_parquet(path: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["p1"], "text": ["A parquet document about trains."]}), path)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def _datetime_parquet(path: str) -> None:
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "id": ["q1"],
                "text": ["A document whose metadata holds a timestamp type."],
                "metadata": [{"when": datetime.datetime(2020, 1, 1)}],
            }
        ),
        path,
    )


def _documents(out: str) -> dict:
    return {d.to_json(): d for d in read_output(out)}


def _stats(out: str) -> dict:
    with open(os.path.join(out, "_meta/stats.json"), encoding="utf-8") as fh:
        return {s["step"]: s for s in json.load(fh)}


@pytest.mark.parametrize("row", ATTACKS, ids=[a.id for a in ATTACKS])
def test_attack(row: Attack, tmp_path):
    tmp = str(tmp_path)
    fields = row.clean(tmp)
    run_source(row.stage, tmp_path / "baseline", **fields)
    row.attack(tmp)
    # an attack may fail a whole file or more than 1% of a small sample: within a budget that allows it
    # (the default budget is tested in test_round3.py)
    run_source(row.stage, tmp_path / "attacked", max_failed_fraction=1.0, max_failed_files=10, **fields)
    base, out = str(tmp_path / "baseline"), str(tmp_path / "attacked")
    stats, exp = _stats(out), row.expect
    assert exp.step in stats
    if exp.failed is not None:
        letters = [f for f in read_failed(out) if exp.failed in f["location"] and f["step"] == exp.step]
        assert letters, f"no dead letter at {exp.failed!r}: {[f['location'] for f in read_failed(out)]}"
        assert exp.error in letters[0]["error"]
        assert stats[exp.step]["failed"] >= 1
    if exp.dropped is not None:
        records = read_dropped(out).get(exp.step, {}).get(exp.dropped, [])
        assert any(
            exp.at in r["location"] or exp.at in (r.get("document") or {}).get("location", "") for r in records
        ), f"no {exp.dropped} drop at {exp.at!r}: {records}"
        assert stats[exp.step]["dropped"][exp.dropped] >= 1
    if exp.counter is not None:
        assert stats[exp.step].get("counters", {}).get(exp.counter, 0) >= 1
    docs = _documents(out)
    if exp.check is not None:
        exp.check(list(docs.values()), out)
    missing = [k for k in _documents(base) if k not in docs and not (exp.lost and exp.lost(k))]
    assert not missing, f"{len(missing)} documents of the clean run changed or vanished, e.g. {missing[0][:300]}"
    for s in stats.values():  # the accounting still holds in every step
        assert s["read"] == s["kept"] + sum(s["dropped"].values()) + s["failed"]


def test_every_stage_has_a_row():
    from corpusmill.pipelines.registry import PROCESSORS

    assert set(PROCESSORS) <= {name.split()[0] for name in SOURCES}  # the registry is the one list
    assert {a.stage for a in ATTACKS} >= set(SOURCES) - {"c4 crawl"}  # C4's crawl path is the CCNet extractor


# -- refused before any work: exit 2 and one line ------------------------------------------------------
def _incomplete_output(tmp):
    out = os.path.join(tmp, "half")
    run_source("books", out)
    os.remove(os.path.join(out, "_SUCCESS"))  # what a killed run leaves
    return out


REFUSED = [
    (
        "half-written-output-as-input",
        lambda t: ["source", "books", "--input", _incomplete_output(t), "--output", os.path.join(t, "o")],
        "incomplete corpusmill output",
    ),
    (
        "output-inside-input",
        lambda t: [
            "source",
            "books",
            "--input",
            books_input(t)["input"][0],
            "--output",
            os.path.join(t, "books", "out"),
            "--overwrite",
        ],
        "lies inside the input",
    ),
    (
        "bigquery-dead-endpoint",
        lambda t: [
            "source",
            "github",
            "--from",
            "bigquery",
            "--bq-endpoint",
            "http://127.0.0.1:9",
            "--bq-anonymous",
            "--bq-project",
            "p",
            "--bq-timeout",
            "2",
            "--output",
            os.path.join(t, "bq"),
        ],
        "gave no answer",
    ),
]


@pytest.mark.parametrize("make_args,message", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused(make_args, message, tmp_path, capsys):
    args = make_args(str(tmp_path))
    capsys.readouterr()
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0], err


def test_a_killed_overwrite_leaves_the_old_output_whole(tmp_path, monkeypatch):
    """--overwrite builds beside the old output: a run that dies halfway leaves it as it was."""
    from helpers import tree_digest

    out = tmp_path / "books-out"
    run_source("books", out)
    before = tree_digest(str(out))
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "dies.py").write_text(
        "from corpusmill.filters.base import Filter\n"
        "class Dies(Filter):\n"
        "    name = 'dies'\n"
        "    def __call__(self, doc):\n"
        "        raise KeyboardInterrupt('killed')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "plug"))
    with pytest.raises(BaseException):
        run_source("books", out, overwrite=True, add_filter=["dies:Dies"])
    assert tree_digest(str(out)) == before  # the old output, whole
    run_source("books", out, overwrite=True, docs_per_shard=1)  # the next attempt replaces it
    assert os.path.isfile(out / "part-00001.jsonl.gz") and os.path.isfile(out / "_SUCCESS")
    assert not [n for n in os.listdir(tmp_path) if "corpusmill-" in n]  # no staging left beside it


def test_unreadable_directory_is_a_dead_letter(tmp_path):
    """A directory this user cannot read (mode 000) is counted, not skipped silently. Root reads every
    directory, so as root the stage runs without the two capabilities that allow it (setpriv)."""
    import subprocess
    import sys

    books = books_input(str(tmp_path))["input"][0]
    secret = os.path.join(books, "private")
    os.makedirs(secret)
    shutil.copy(os.path.join(DATA, "books", "shakespeare", "comedy_of_errors_gut.txt.gz"), secret)
    os.chmod(secret, 0)
    out = tmp_path / "out"
    os.chmod(tmp_path, 0o777)
    code = (
        "import corpusmill, sys; corpusmill.run_stage('books', input=[sys.argv[1]], output=sys.argv[2], "
        "max_failed_files=1)"
    )
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv (util-linux): every directory is readable")
        caps = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]
    try:
        proc = subprocess.run(
            prefix + [sys.executable, "-c", code, books, str(out)], capture_output=True, text=True, timeout=300
        )
    finally:
        os.chmod(secret, 0o755)
    assert proc.returncode == 0, proc.stderr[-2000:]
    letters = read_failed(str(out))
    assert [f["location"] for f in letters] == [secret] and "unreadable" in letters[0]["error"]
    assert _stats(str(out))["read"]["failed"] == 1
