"""The CCNet stage end to end on real crawls, on every runner that works here."""

from __future__ import annotations

import collections
import gzip
import json
import os

import pytest
from helpers import ANY_FAILURES, DATA, tree_digest, warc
from warc_faults import truncated, with_broken_http_record

from corpusmill.cli import main as cli_main
from corpusmill.core.document import Document
from corpusmill.core.files import list_output_files, read_failed, read_output
from corpusmill.engine.step import check_accounting
from corpusmill.filters.normalize import Normalize, line_hash
from corpusmill.io.warc import ExtractWarcRecord, scan_records
from corpusmill.pipelines.ccnet import CCNetConfig, run_ccnet

CRAWLS = [warc("iana.warc.gz"), warc("pydocs.warc.gz")]
# Small shards, so documents that share lines land in different shards and bundles.
SMALL = dict(docs_per_shard=4)


def run(out, inputs=CRAWLS, beam_args=(), **kw):
    cfg = CCNetConfig(input=list(inputs), output=str(out), **{**SMALL, **kw})
    return run_ccnet(cfg, list(beam_args))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    out = tmp_path_factory.mktemp("ccnet") / "out"
    stats = run(out)
    return out, stats


def extracted_docs(paths):
    """What the extract + normalize steps give, computed without Beam (for the dedup assertions)."""
    extract, normalize = ExtractWarcRecord(), Normalize()
    docs = []
    for path in paths:
        for ref in scan_records(path):
            verdict = extract(ref)
            if verdict.kept:
                verdict = normalize(verdict.doc)
                if verdict.kept:
                    docs.append(verdict.doc)
    return docs


def test_accounting_every_step_and_between_steps(baseline):
    out, stats = baseline
    assert [s["step"] for s in stats] == [
        "extract",
        "normalize",
        "line_dedup",
        "lid",
        "collect",
        "url_dedup",
        "content_dedup",
    ]
    assert check_accounting(stats) == []
    by = {s["step"]: s for s in stats}
    total_records = sum(1 for p in CRAWLS for _ in scan_records(p))
    assert by["extract"]["read"] == total_records
    assert by["normalize"]["read"] == by["extract"]["kept"]
    assert by["line_dedup"]["read"] == by["normalize"]["kept"]
    assert by["lid"]["read"] == by["line_dedup"]["kept"]
    assert by["collect"]["read"] == by["lid"]["kept"]  # every shard's documents, read back once
    assert by["url_dedup"]["read"] == by["collect"]["kept"]
    docs = read_output(out)
    assert len(docs) == by["content_dedup"]["kept"] > 20
    assert sum(d.nbytes for d in docs) == by["content_dedup"]["bytes_kept"] == by["lid"]["bytes_kept"]
    # stats.json on disk is what run_ccnet returned
    assert json.load(open(out / "_meta/stats.json")) == stats


def test_lines_repeated_across_pages_are_gone_everywhere(baseline):
    out, stats = baseline
    before = extracted_docs(CRAWLS)
    pages_with = collections.defaultdict(set)
    for doc in before:
        for line in doc.text.split("\n"):
            h = line_hash(line)
            if h is not None:
                pages_with[h].add(doc.id)
    repeated = {h for h, ids in pages_with.items() if len(ids) > 1}
    assert len(repeated) > 50  # "Footnotes", "See also", shared code lines, the recrawled page, ...
    docs = read_output(out)
    files = list_output_files(out)
    assert len(files) > 5  # the documents were written by many shards
    for doc in docs:
        for line in doc.text.split("\n"):
            assert line_hash(line) not in repeated, (doc.url, line)
    # the recrawled copy of a page is wholly duplicate: both copies lose every line
    assert not any("faq/general.html" in d.url for d in docs)
    assert stats[2]["dropped"]["too_short"] >= 2


def test_output_layout_and_fields(baseline):
    out, _ = baseline
    langs = sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert "en" in langs
    doc = read_output(out)[0]
    assert doc.metadata["language"] == "en" and doc.metadata["language_score"] >= 0.5
    for key in ("original_nlines", "original_length", "nlines", "length", "charset"):
        assert key in doc.metadata
    assert doc.url.startswith("http") and doc.timestamp and "@" in doc.location
    # a deterministic sample of dropped documents per reason, for the report
    sample = out / "_dropped" / "line_dedup" / "too_short.jsonl.gz"
    records = [json.loads(l) for l in gzip.open(sample, "rt")]
    assert records and all(r["reason"] == "too_short" and r["document"]["text"] is not None for r in records)
    assert (out / "_SUCCESS").exists()


def test_two_runs_give_byte_identical_output(baseline, tmp_path):
    out, _ = baseline
    run(tmp_path / "again")
    assert tree_digest(tmp_path / "again") == tree_digest(out)


@pytest.mark.parametrize("dropped", [False, True])
def test_one_unit_in_one_pipeline_gives_the_bytes_of_the_two_pipeline_run(baseline, tmp_path, monkeypatch, dropped):
    from corpusmill.pipelines import ccnet_units

    out, _ = baseline
    kw = dict(write_dropped=True, num_shards=2) if dropped else {}
    fused = out if not dropped else tmp_path / "fused"
    if dropped:
        run(fused, **kw)
    assert not (fused / "_shards" / "unit-00000").exists()  # nothing written to shards and read back
    monkeypatch.setattr(ccnet_units, "FUSE_SINGLE_UNIT", False)
    run(tmp_path / "two", **kw)
    assert (tmp_path / "two" / "_shards" / "unit-00000").is_dir()

    def outputs(root):
        return {
            k: v
            for k, v in tree_digest(root).items()
            if not k.startswith("_shards") and k not in ("_meta/stats.json", "_SUCCESS")
        }

    def stats(root):  # collect reads JSON records from the shards, or the documents themselves: bytes_read differs
        rows = json.loads((root / "_meta/stats.json").read_text())
        for row in rows:
            if row["step"] == "collect":
                assert row["bytes_read"] >= row["bytes_kept"]
                row.pop("bytes_read")
        return rows

    assert outputs(tmp_path / "two") == outputs(fused)
    assert stats(tmp_path / "two") == stats(fused)


def test_keep_first_leaves_one_copy_of_each_repeated_line(tmp_path):
    run(tmp_path / "first", inputs=[warc("pydocs.warc.gz")], dedup_keep="first", min_length=0)
    docs = read_output(tmp_path / "first")
    seen = collections.Counter(line_hash(l) for d in docs for l in d.text.split("\n"))
    seen.pop(None, None)
    assert max(seen.values()) == 1
    # the recrawled page survives once (its copy with the smaller id keeps its lines)
    assert sum(1 for d in docs if "faq/general.html" in d.url) == 1


def test_corrupt_records_go_to_the_dead_letter_output_and_the_rest_is_processed(tmp_path):
    broken = str(tmp_path / "broken.warc.gz")
    cut = str(tmp_path / "cut.warc.gz")
    offset = with_broken_http_record(warc("pydocs.warc.gz"), broken)
    truncated(warc("iana.warc.gz"), cut)
    stats = run(tmp_path / "out", inputs=[broken, cut], **ANY_FAILURES)
    assert check_accounting(stats) == []
    assert stats[0]["failed"] == 2
    failures = read_failed(str(tmp_path / "out"))
    locations = {f["location"] for f in failures}
    assert f"{broken}@{offset}" in locations
    assert any(loc.startswith(cut + "@") for loc in locations)
    assert all(f["step"] == "extract" and f["error"] for f in failures)
    assert any("broken HTTP header" in f["error"] for f in failures)
    # everything else in both files was still read: as many pages as the files give record by record
    extract = ExtractWarcRecord()
    readable = sum(
        1
        for p in (broken, cut)
        for ref in scan_records(p)
        if not ref.error and ref.uri != "http://broken.example/" and extract(ref).kept
    )
    assert stats[0]["kept"] == readable > 30


def test_language_routing_and_accuracy_on_udhr(tmp_path):
    rows = [json.loads(l) for l in open(os.path.join(DATA, "udhr.jsonl"), encoding="utf-8")]
    path = tmp_path / "udhr.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            doc = Document(f"udhr-{row['lang']}", row["text"], "udhr", location=row["gflanguages_id"])
            fh.write(doc.to_json() + "\n")
    # threshold 0: measure the top-1 label of every text (the threshold is tested below)
    stats = run(tmp_path / "out", inputs=[str(path)], min_length=0, lang_threshold=0.0)
    assert check_accounting(stats) == [] and stats[0]["step"] == "read"
    predicted = {}
    for lang_dir in (tmp_path / "out").iterdir():
        if lang_dir.is_dir() and not lang_dir.name.startswith("_"):
            for doc in read_output(lang_dir):
                assert doc.metadata["language"] == lang_dir.name
                predicted[doc.id] = lang_dir.name
    correct = {r["lang"]: predicted.get(f"udhr-{r['lang']}") == r["lang"] for r in rows}
    accuracy = sum(correct.values()) / len(correct)
    assert accuracy >= 0.9, {k: v for k, v in correct.items() if not v}
    # every language of LLaMA's Wikipedia set is identified correctly
    llama_wiki = "bg ca cs da de en es fr hr hu it nl pl pt ro ru sl sr sv uk".split()
    assert all(correct[lang] for lang in llama_wiki if lang in correct), [
        l for l in llama_wiki if not correct.get(l, True)
    ]
    assert sum(lang in correct for lang in llama_wiki) >= 18


def test_languages_option_and_threshold(tmp_path):
    stats = run(tmp_path / "en", inputs=[warc("pydocs.warc.gz")], languages=["de"])
    by = {s["step"]: s for s in stats}
    assert by["lid"]["kept"] == 0 and by["lid"]["dropped"]["language_not_kept"] > 10
    stats = run(tmp_path / "strict", inputs=[warc("pydocs.warc.gz")], lang_threshold=0.99)
    by = {s["step"]: s for s in stats}
    assert by["lid"]["dropped"]["low_lang_score"] > 0


def test_parquet_output_holds_the_same_documents(baseline, tmp_path):
    out, _ = baseline
    run(tmp_path / "pq", format="parquet")
    files = list_output_files(tmp_path / "pq")
    assert files and all(f.endswith(".parquet") for f in files)
    by_id = {d.id: d for d in read_output(out)}
    assert {d.id: d for d in read_output(tmp_path / "pq")} == by_id


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_documents_in_and_out(baseline, tmp_path, fmt):
    """A corpusmill output (JSONL.gz or Parquet) is a valid input: every document is read back."""
    out, _ = baseline
    source = out / "en"
    if fmt == "parquet":
        run(tmp_path / "pq", format="parquet")
        source = tmp_path / "pq" / "en"
    stats = run(tmp_path / "again", inputs=[str(source)], dedup_keep="none")
    assert stats[0]["step"] == "read" and stats[0]["failed"] == 0
    assert stats[0]["read"] == stats[0]["kept"] == len(read_output(out / "en"))
    assert {d.id for d in read_output(tmp_path / "again")} <= {d.id for d in read_output(out / "en")}


def test_bad_jsonl_lines_are_dead_letters(tmp_path):
    path = tmp_path / "docs.jsonl"
    good = Document("d1", "A perfectly ordinary English sentence about the weather in spring. " * 6)
    path.write_bytes(good.to_json().encode() + b"\n{not json\n" + b'{"id": "x", "text": "\xff\xfe"}\n')
    stats = run(tmp_path / "out", inputs=[str(path)], min_length=0, **ANY_FAILURES)
    assert stats[0]["read"] == 3 and stats[0]["kept"] == 1 and stats[0]["failed"] == 2
    failures = read_failed(str(tmp_path / "out"))
    assert {f["location"].rsplit("@", 1)[1] for f in failures} == {
        str(len(good.to_json()) + 1),
        str(len(good.to_json()) + 1 + 10),
    }
    assert any("not UTF-8" in f["error"] for f in failures)


def test_multithreaded_runner_gives_the_same_bytes(baseline, tmp_path):
    """Several bundles in one process at once, as on a Dataflow worker: no handle is shared (issue 13)."""
    out, _ = baseline
    for i in range(2):
        run(tmp_path / f"mt{i}", beam_args=["--direct_running_mode=multi_threading", "--direct_num_workers=4"])
        assert tree_digest(tmp_path / f"mt{i}") == tree_digest(out)


@pytest.mark.slow
def test_multiprocess_direct_runner_gives_the_same_bytes(baseline, tmp_path):
    out, _ = baseline
    run(tmp_path / "mp", beam_args=["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert tree_digest(tmp_path / "mp") == tree_digest(out)


@pytest.mark.slow
def test_portable_runner_gives_the_same_bytes(baseline, tmp_path, portable_job_service):
    out, _ = baseline
    run(tmp_path / "portable", beam_args=portable_job_service)
    assert tree_digest(tmp_path / "portable") == tree_digest(out)


# -- the command line -----------------------------------------------------------------------------
def test_cli_runs_and_prints_the_table(tmp_path, capsys):
    code = cli_main(
        [
            "ccnet",
            "--input",
            warc("pydocs.warc.gz"),
            "--output",
            str(tmp_path / "o"),
            "--languages",
            "en",
            "--docs-per-shard",
            "100",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "line_dedup" in printed and "too_short=" in printed


def test_cli_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        cli_main(["ccnet", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--input",
        "--output",
        "--format",
        "--min-length",
        "--dedup-keep",
        "--lid-model",
        "--lang-threshold",
        "--languages",
        "--write-dropped",
        "--docs-per-shard",
        "--max-page-bytes",
        "--overwrite",
        "Beam",
        "--task-rank",
        "--one-job",
        "--parallel-units",
    ):
        assert option in text
    # the steps, from the stage's one list, in both orders
    flat = " ".join(text.split())
    assert "steps: extract, read, normalize, line_dedup, lid, [pii]," in flat
    assert (
        "With --dedup-order llama3: extract, read, normalize, collect, url_dedup, content_dedup, [fuzzy_dedup]" in flat
    )


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert cli_main(["ccnet", "--input", str(tmp_path / "nothing*.warc.gz"), "--output", str(tmp_path / "o")]) == 2
    assert "matches no files" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    assert cli_main(["ccnet", "--input", warc("pydocs.warc.gz"), "--output", str(tmp_path / "busy")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    bad_model = tmp_path / "lid.bin"
    bad_model.write_bytes(b"not a model")
    assert (
        cli_main(
            [
                "ccnet",
                "--input",
                warc("pydocs.warc.gz"),
                "--output",
                str(tmp_path / "o2"),
                "--lid-model",
                str(bad_model),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "cannot load fastText model" in err and str(bad_model) in err
    assert not (tmp_path / "o2").exists()  # failed before any work
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    assert cli_main(["ccnet", "--input", str(text_file), "--output", str(tmp_path / "o3")]) == 2
    assert "unknown file type" in capsys.readouterr().err


# -- extraction options (issue 14) --------------------------------------------------------------------
def _extracted(out):
    return {d.url: d.text for d in read_output(out)}


def test_extractors_and_fast_extraction_change_the_text_and_keep_the_pages(baseline, tmp_path):
    out, stats = baseline
    base = _extracted(out)
    extract = next(s for s in stats if s["step"] == "extract")
    for kw in ({"fast_extraction": True}, {"extractor": "resiliparse"}):
        other_stats = run(tmp_path / next(iter(kw)), **kw)
        other = _extracted(tmp_path / next(iter(kw)))
        assert other != base, f"{kw}: the same text as the default run"
        changed = [u for u in base if u in other and other[u] != base[u]]
        assert changed, kw
        # the same records reach extraction, and each extractor keeps most pages
        assert next(s for s in other_stats if s["step"] == "extract")["read"] == extract["read"]
        assert len(set(other) & set(base)) >= 0.9 * len(base), kw


def test_a_page_over_the_markup_cap_is_dropped_too_complex_the_same_way_every_time(tmp_path):
    import statistics

    from warcio.archiveiterator import ArchiveIterator

    from corpusmill.filters.html import decode_html, markup_size

    sizes = []
    with open(warc("pydocs.warc.gz"), "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type == "response" and "html" in (rec.http_headers.get_header("Content-Type") or ""):
                sizes.append(markup_size(decode_html(rec.content_stream().read(), None)[0] or ""))
    cap = int(statistics.median(sizes))
    over = sum(s > cap for s in sizes)
    for name in ("a", "b"):
        stats = run(tmp_path / name, inputs=[warc("pydocs.warc.gz")], max_page_tags=cap)
        assert next(s for s in stats if s["step"] == "extract")["dropped"]["too_complex"] == over
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")


def test_the_most_repeated_lines_are_counted_exactly_with_their_text(baseline):
    """repeated_lines.json against a count over what extract + normalize give, without Beam."""
    out, _ = baseline
    listed = json.loads((out / "_meta/repeated_lines.json").read_text())["lines"]
    per_doc = collections.Counter()
    for doc in extracted_docs(CRAWLS):
        per_doc.update({line_hash(line) for line in doc.text.split("\n")})
    repeated = {h: n for h, n in per_doc.items() if n > 1}
    assert len(listed) == min(100, len(repeated))
    for entry in listed:
        assert entry["documents"] == repeated[entry["hash"]]  # the exact number of documents
        assert line_hash(entry["text"]) == entry["hash"]  # the text of that very line
    # nothing left out is more repeated than what is listed
    assert max(n for h, n in repeated.items() if h not in {e["hash"] for e in listed}) <= listed[-1]["documents"]
    assert [e["documents"] for e in listed] == sorted((e["documents"] for e in listed), reverse=True)
    assert "_meta/repeated_lines.json" in (out / "_SUCCESS").read_text()


def test_each_line_is_normalized_and_hashed_once(tmp_path, monkeypatch):
    """The first pass hashes each document's lines once and keeps the hashes with it; line dedup removes
    lines by them (the old stage hashed every line about 2.4 times)."""
    import corpusmill.dedup.lines as lines_module
    import corpusmill.filters.normalize as normalize_module

    calls = []
    real = normalize_module.line_hashes

    def counted(text, normalize="ccnet"):
        calls.append(text)
        return real(text, normalize)

    monkeypatch.setattr(normalize_module, "line_hashes", counted)
    monkeypatch.setattr(lines_module, "line_hashes", counted)
    stats = {s["step"]: s for s in run(tmp_path / "out", inputs=[warc("pydocs.warc.gz")])}
    assert stats["line_dedup"]["read"] > 20
    assert len(calls) == stats["normalize"]["kept"]  # once per document that reaches line dedup


def test_steps_lists_the_steps_the_options_run(capsys, tmp_path):
    """`corpusmill ccnet --steps`: the real list, in the order the options give, a user's filter in place."""
    from corpusmill.cli.main import main as cli_main

    assert cli_main(["ccnet", "--steps", "--input", warc("iana.warc.gz")]) == 0
    names = [line.split()[1] for line in capsys.readouterr().out.splitlines()]
    assert names == ["extract", "normalize", "line_dedup", "lid", "collect", "url_dedup", "content_dedup"]
    assert (
        cli_main(
            [
                "ccnet",
                "--steps",
                "--input",
                warc("iana.warc.gz"),
                "--dedup-order",
                "llama3",
                "--fuzzy-dedup",
                "--add-filter",
                "corpusmill.filters.c4:WordCount",
                "--after",
                "url_dedup",
            ]
        )
        == 0
    )
    names = [line.split()[1] for line in capsys.readouterr().out.splitlines()]
    assert names[:7] == ["extract", "normalize", "collect", "url_dedup", "word_count", "content_dedup", "fuzzy_dedup"]
    assert not (tmp_path / "-").exists()
