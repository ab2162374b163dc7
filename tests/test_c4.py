"""C4 source: the builder's rules, URL and span dedup, bad words, released-C4 heuristics, on real pages
(Python docs as WARC / WET, tests/data/c4 and tests/data/warc; see PROVENANCE.md)."""

from __future__ import annotations

import collections
import gzip
import os

import pytest
from helpers import ANY_FAILURES, tree_digest
from source_outputs import dropped_records, failed_records
from warcio.archiveiterator import ArchiveIterator

from corpusmill.core.document import Document
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import list_output_files, read_output
from corpusmill.dedup.spans import span_hashes
from corpusmill.engine.step import check_accounting
from corpusmill.filters import c4 as rules
from corpusmill.pipelines.c4 import C4Config, run_c4

DATA = os.path.join(os.path.dirname(__file__), "data")
PYDOCS = os.path.join(DATA, "warc", "pydocs.warc.gz")
RECRAWL = os.path.join(DATA, "c4", "recrawl.warc.gz")
WET = os.path.join(DATA, "c4", "sample.wet.gz")
RELEASED = os.path.join(DATA, "c4", "c4-released-sample.json.gz")


def _records(path, types=("response", "conversion")):
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type in types:
                yield (
                    rec.rec_headers.get_header("WARC-Target-URI"),
                    rec.rec_headers.get_header("WARC-Date"),
                    rec.content_stream().read(),
                )


def _wet_text(url_suffix):
    for url, _date, body in _records(WET):
        if url.endswith(url_suffix):
            return body.decode("utf-8")
    raise AssertionError(url_suffix)


# -- the rules on real text --------------------------------------------------------------------------
def test_clean_page_keeps_only_sentence_lines_of_a_real_wet_page():
    text = _wet_text("howto/sorting.html")
    verdict = rules.CleanPage()(Document("d", text))
    assert verdict.kept
    kept = verdict.doc.text.split("\n")
    assert 0 < len(kept) < len([line for line in text.split("\n") if line.strip()])
    for line in kept:  # every surviving line obeys the builder's line rules
        assert rules.ends_in_terminal_punct(line) and len(line.split()) >= 5
        assert "javascript" not in line.lower() and "{" not in line
    # navigation lines of the real page (no end mark) were removed and counted
    assert verdict.doc.metadata["c4_lines_removed"]["no_endmark"] > 0


def test_clean_page_page_and_line_rules():
    real = _wet_text("library/textwrap.html")
    base = rules.CleanPage()(Document("d", real))
    assert base.kept
    lorem = real + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit."
    assert rules.CleanPage()(Document("d", lorem)).reason == "lorem_ipsum"
    brace = real + "\nThe value is written as {x} in the format string here."
    assert rules.CleanPage()(Document("d", brace)).reason == "curly_brace"
    # a brace on a line that fails the end-mark rule first does not drop the page (the builder's order)
    assert rules.CleanPage()(Document("d", real + "\nd = {1: 2}")).kept
    policy = real + "\nThis site uses cookies to improve your experience with us."
    cleaned = rules.CleanPage()(Document("d", policy))
    assert cleaned.kept and "uses cookies" not in cleaned.doc.text
    cited = rules.CleanPage()(
        Document("d", real + "\nThis claim is backed by a long citation list[1][citation needed].")
    )
    assert "This claim is backed by a long citation list." in cited.doc.text
    # as the builder: a marker after the end mark leaves a space at the end, so the line goes; the pattern
    # is lowercase only ("[Edit]" is text)
    cited = rules.CleanPage()(
        Document(
            "d",
            real + "\nEvery adult citizen has had the right to vote. [1]\n"
            "The section can be changed by anyone who signs in [Edit].",
        )
    )
    assert "right to vote" not in cited.doc.text and "signs in [Edit]." in cited.doc.text
    assert rules.CleanPage(max_page_chars=100)(Document("d", real)).reason == "too_long"
    assert rules.CleanPage()(Document("d", "One sentence only, with enough words.")).reason == "too_few_sentences"


def test_clean_page_line_rules_each_remove_their_line():
    real = _wet_text("library/textwrap.html")
    base = rules.CleanPage()(Document("d", real)).doc
    added = {
        "javascript": "Please enable JavaScript to see the comments on this page.",
        "no_endmark": "And the story goes on and on and on from here...",  # an ellipsis is no end mark
        "too_short": "Four words end here.",
        "too_long_word": "A line with a word of " + "x" * 1001 + " characters.",
    }
    for reason, line in added.items():
        verdict = rules.CleanPage()(Document("d", real + "\n" + line))
        assert verdict.kept and line not in verdict.doc.text, reason
        removed = verdict.doc.metadata["c4_lines_removed"]
        assert removed[reason] == base.metadata["c4_lines_removed"].get(reason, 0) + 1, reason
    # the thresholds are options
    assert (
        "Four words end here."
        in rules.CleanPage(min_words_per_line=4)(Document("d", real + "\nFour words end here.")).doc.text
    )


def test_released_heuristics_are_configurable_filters():
    text = "\n".join(f"Line number {i} ends with a full stop." for i in range(12)) + "\nno end mark"
    doc = Document("d", text)
    assert rules.TerminalPunctShare(0.5)(doc).kept
    assert rules.TerminalPunctShare(0.95)(doc).reason == "low_terminal_punct_share"
    words = len(text.split())
    assert rules.WordCount(words, words)(doc).kept
    assert rules.WordCount(words + 1)(doc).reason == "too_few_words"
    assert rules.WordCount(1, words - 1)(doc).reason == "too_many_words"
    assert rules.WordCount(1, 0)(doc).kept  # 0: no maximum
    assert rules.SentenceCount(12)(doc).kept and rules.SentenceCount(14)(doc).reason == "too_few_sentences"
    assert rules.SentenceCount(12)(doc).doc.metadata["sentences"] == 13


def test_badwords_list_is_configurable(tmp_path):
    custom = tmp_path / "words.txt"
    custom.write_text("# our list\n\nsorting\nkey function\n", encoding="utf-8")
    filt = rules.BadWords(str(custom))
    assert filt(Document("d", _wet_text("howto/sorting.html"))).reason == "badword"
    assert filt(Document("d", "A page about the KEY   function.")).kept  # a phrase matches as written
    assert filt(Document("d", "Use a key function here.")).reason == "badword"
    other = _wet_text("library/textwrap.html")
    assert "sorting" not in other.lower() and "key function" not in other.lower()
    assert filt(Document("d", other)).kept


def test_sentence_splitter_and_url_normalization():
    spans = rules.sentence_spans("Use e.g. the J. R. R. Tolkien books. Is it? Yes! Done at 3 p.m. today.")
    assert len(spans) == 4
    assert rules.normalize_url("https://www.Docs.python.org/3/a/?utm_source=x&id=3#top") == "docs.python.org/3/a?id=3"
    assert rules.normalize_url("http://docs.python.org/3/a/") == rules.normalize_url("https://docs.python.org/3/a")
    occ = [("b", -200.0), ("a", -100.0), ("c", -200.0)]
    assert min(occ, key=rules.newest_first) == ("b", -200.0)  # the newest is kept, a tie goes to the smaller id


def test_badwords_list_is_packaged_with_its_license_and_matches_on_word_boundaries():
    path = rules.default_badwords_path()
    folder = os.path.dirname(path)
    assert os.path.exists(os.path.join(folder, "LICENSE-CC-BY-4.0.txt"))
    words = rules.load_badwords(path)
    assert len(words) > 300
    filt = rules.BadWords()
    assert filt(Document("d", _wet_text("howto/sockets.html"))).reason == "badword"
    assert filt(Document("d", _wet_text("howto/sorting.html"))).kept
    some = sorted(w for w in words if w.isalpha() and len(w) > 4)[0]
    assert filt(Document("d", f"Text with {some.upper()}.")).reason == "badword"
    assert filt(Document("d", f"Text with x{some}y glued.")).kept  # not on a word boundary


# -- the crawl pipeline ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def crawl_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("c4") / "out")
    cfg = C4Config(input=[PYDOCS, RECRAWL, WET], output=out, mode="crawl", write_dropped=True)
    return out, run_c4(cfg)


def test_crawl_accounts_for_every_record(crawl_run):
    out, stats = crawl_run
    assert check_accounting(stats) == []
    steps = [s["step"] for s in stats]
    assert steps == ["extract", "url_dedup", "clean_page", "span_dedup", "lid", "badwords"]
    for a, b in zip(stats, stats[1:]):
        assert b["read"] == a["kept"]
    assert stats[-1]["kept"] == len(read_output(out)) > 0


def test_crawl_keeps_the_newest_page_per_normalized_url(crawl_run):
    out, _ = crawl_run
    pages = collections.defaultdict(list)
    for path in (PYDOCS, RECRAWL, WET):
        for url, date, _ in _records(path):
            pages[rules.normalize_url(url)].append((rules.timestamp_seconds(date), url))
    expected_losers = set()
    for versions in pages.values():
        if len(versions) > 1:
            newest = max(v[0] for v in versions)
            expected_losers |= {url for t, url in versions if t < newest}
    assert expected_losers  # the sample has re-crawls
    records = dropped_records(out, "url_dedup", "older_page_same_url")
    assert {r["document"]["url"] for r in records} == expected_losers
    # each older copy names the page kept for its URL (written, or dropped by a later step): a newer
    # crawl of the same normalized URL
    from corpusmill.core.files import read_dropped

    seen = {d.id: (d.url, d.timestamp, d.location) for d in read_output(out)}
    for step, reasons in read_dropped(out).items():
        if step != "url_dedup":
            seen.update(
                {
                    r["document"]["id"]: (r["document"]["url"], r["document"]["timestamp"], r["document"]["location"])
                    for rs in reasons.values()
                    for r in rs
                    if r.get("document")
                }
            )
    for r in records:
        url, timestamp, location = seen[r["document"]["metadata"]["duplicate_of"]]
        assert rules.normalize_url(url) == rules.normalize_url(r["document"]["url"])
        assert rules.timestamp_seconds(timestamp) > rules.timestamp_seconds(r["document"]["timestamp"])
        assert location == r["document"]["metadata"]["duplicate_of_location"]


def test_crawl_removes_repeated_three_sentence_spans_across_files(crawl_run):
    out, _ = crawl_run
    docs = read_output(out)
    seen = collections.Counter(h for d in docs for h in span_hashes(d.text, 3) if h is not None)
    assert seen and max(seen.values()) == 1  # no 3-sentence span occurs twice in the output
    # tutorial/classes.html is in pydocs.warc.gz and again from a mirror in recrawl.warc.gz
    lost = [r["document"]["url"] for r in dropped_records(out, "span_dedup", "too_few_sentences")]
    kept = [d.url for d in docs]
    copies = [u for u in lost + kept if u.endswith("tutorial/classes.html")]
    assert len(copies) == 2 and sum(u.endswith("tutorial/classes.html") for u in lost) == 1
    # the first occurrence by document id keeps the shared spans: the copy that lost them has the larger id
    lost_id = next(
        r["document"]["id"]
        for r in dropped_records(out, "span_dedup", "too_few_sentences")
        if r["document"]["url"].endswith("tutorial/classes.html")
    )
    kept_id = next(d.id for d in docs if d.url.endswith("tutorial/classes.html"))
    assert kept_id < lost_id


def test_crawl_output_obeys_c4_rules_and_drops_bad_words(crawl_run):
    out, _ = crawl_run
    for doc in read_output(out):
        assert doc.source == "c4" and doc.metadata["language"] == "en"
        for line in doc.text.split("\n"):
            assert rules.ends_in_terminal_punct(line) and len(line.split()) >= 5
    assert [r["document"]["url"] for r in dropped_records(out, "badwords", "badword")] == [
        "https://docs.python.org/3.11/howto/sockets.html"
    ]


def test_crawl_is_byte_identical_on_the_multiprocess_runner(crawl_run, tmp_path):
    out, _ = crawl_run
    out2 = str(tmp_path / "mp")
    cfg = C4Config(input=[PYDOCS, RECRAWL, WET], output=out2, mode="crawl", write_dropped=True)
    run_c4(cfg, ["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert list_output_files(out) and tree_digest(out2) == tree_digest(out)


# -- released C4 -------------------------------------------------------------------------------------
def test_released_c4_passes_through_as_released_by_default(tmp_path):
    """RedPajama used released C4 as it is: so does --from released, unless --heuristics (issue 16)."""
    import json

    out = str(tmp_path / "rel")
    stats = run_c4(C4Config(input=[RELEASED], output=out, mode="released"))
    assert [s["step"] for s in stats] == ["read"]
    with gzip.open(RELEASED, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    docs = read_output(out)
    assert sorted((d.url, d.text) for d in docs) == sorted((r["url"], r["text"]) for r in rows)


def test_released_heuristics_keep_and_drop_by_their_thresholds(tmp_path):
    out = str(tmp_path / "rel")
    stats = run_c4(C4Config(input=[RELEASED], output=out, mode="released", heuristics=True, write_dropped=True))
    assert check_accounting(stats) == []
    with gzip.open(RELEASED, "rt", encoding="utf-8") as fh:
        n = sum(1 for _ in fh)
    assert stats[0]["read"] == n
    docs = read_output(out)
    assert docs and all(d.url.startswith("https://docs.python.org/") and d.timestamp for d in docs)
    for d in docs:
        assert d.metadata["terminal_punct_share"] >= 0.5 and d.metadata["words"] >= 50
        assert d.metadata["sentences"] >= 3
    punct = dropped_records(out, "terminal_punct", "low_terminal_punct_share")
    assert punct and all(r["document"]["metadata"]["terminal_punct_share"] < 0.5 for r in punct)
    # the profile holds each heuristic's measure for kept and dropped pages (issue 15)
    from source_outputs import score_histogram

    from corpusmill.core.profile import bin_of

    for step, score, reason in (
        ("terminal_punct", "terminal_punct_share", "low_terminal_punct_share"),
        ("word_count", "words", "too_few_words"),
    ):
        expected = [0] * len(score_histogram(out, step, score, "kept"))
        for r in dropped_records(out, step, reason):
            expected[bin_of(score, r["document"]["metadata"][score])] += 1
        assert score_histogram(out, step, score, "dropped") == expected and sum(expected) > 0
    written = [0] * len(expected)
    later = [r["document"]["metadata"] for r in dropped_records(out, "sentence_count", "too_few_sentences")]
    for meta in [d.metadata for d in docs] + later:  # what word_count kept: written, or dropped after it
        written[bin_of("words", meta["words"])] += 1
    assert score_histogram(out, "sentence_count", "words", "kept") == []  # (not a score of that step)
    assert score_histogram(out, "word_count", "words", "kept") == written


def test_bad_input_is_explained(tmp_path):
    with pytest.raises(CorpusmillError, match="--from crawl reads WARC"):
        run_c4(C4Config(input=[RELEASED], output=str(tmp_path / "a"), mode="crawl"))
    with pytest.raises(CorpusmillError, match="bad-words list"):
        run_c4(
            C4Config(input=[PYDOCS], output=str(tmp_path / "b"), mode="crawl", badwords=str(tmp_path / "missing.txt"))
        )
    # a broken line in a released file is a dead letter naming the file and line; the others go on
    with gzip.open(RELEASED, "rt", encoding="utf-8") as fh:
        good = [next(fh) for _ in range(3)]
    bad = tmp_path / "c4-broken.json"
    bad.write_text(good[0] + '{"text": "cut off\n' + good[1] + '{"url": "no text"}\n' + good[2], encoding="utf-8")
    out = str(tmp_path / "c")
    stats = run_c4(C4Config(input=[str(bad)], output=out, mode="released", **ANY_FAILURES))
    assert stats[0]["read"] == 5 and stats[0]["failed"] == 2 and stats[0]["kept"] == 3
    failures = failed_records(out)
    assert all("c4-broken.json@" in f["location"] for f in failures)
    assert any("not valid JSON" in f["error"] for f in failures)


def test_cli_options_reach_the_stage(tmp_path, capsys):
    import json

    from corpusmill.cli import main as cli_main

    with gzip.open(RELEASED, "rt", encoding="utf-8") as fh:
        n = sum(1 for line in fh if line.strip())
    out = tmp_path / "cli"
    assert (
        cli_main(
            [
                "source",
                "c4",
                "--from",
                "released",
                "--input",
                RELEASED,
                "--output",
                str(out),
                "--heuristics",
                "--min-punct-share",
                "0",
                "--min-words",
                "0",
                "--max-words",
                "0",
                "--min-sentences",
                "0",
            ]
        )
        == 0
    )
    stats = json.loads((out / "_meta/stats.json").read_text())
    assert [s["step"] for s in stats] == ["read", "terminal_punct", "word_count", "sentence_count"]
    assert all(s["read"] == s["kept"] == n for s in stats)  # every threshold off: nothing dropped
    assert cli_main(["source", "c4", "--from", "crawl", "--input", RELEASED, "--output", str(tmp_path / "x")]) == 2
    assert "--from crawl reads WARC/WET files" in capsys.readouterr().err
    # a heuristic's threshold without --heuristics would do nothing: it is refused, naming the flag
    assert (
        cli_main(
            [
                "source",
                "c4",
                "--from",
                "released",
                "--input",
                RELEASED,
                "--output",
                str(tmp_path / "y"),
                "--min-words",
                "20",
            ]
        )
        == 2
    )
    assert "--min-words applies only with --heuristics" in capsys.readouterr().err
    assert (
        cli_main(
            [
                "source",
                "c4",
                "--from",
                "crawl",
                "--input",
                PYDOCS,
                "--output",
                str(tmp_path / "z"),
                "--lid-model",
                "/nonexistent.ftz",
            ]
        )
        == 2
    )
    assert "--lid-model is a fastText model: it needs --lid-with lid176" in capsys.readouterr().err


def test_clean_page_profiles_its_sentence_count_and_page_length(crawl_run):
    """Issue 15: C4's rule measures as kept-vs-dropped distributions, the thresholds beside them."""
    import json

    from source_outputs import score_histogram, step_stats

    from corpusmill.core.profile import bin_of

    out, stats = crawl_run
    s = step_stats(stats, "clean_page")
    assert s["dropped"].get("too_few_sentences", 0) > 0
    kept = score_histogram(out, "clean_page", "sentences", "kept")
    assert sum(kept) == s["kept"] and sum(kept[:3]) == 0  # every kept page has 3 sentences or more
    # each page clean_page dropped for too few sentences, judged again, lands in its bin
    expected = [0] * len(kept)
    for r in dropped_records(out, "clean_page", "too_few_sentences"):
        verdict = rules.CleanPage()(Document.from_dict(r["document"]))
        assert verdict.reason == "too_few_sentences"
        expected[bin_of("sentences", verdict.measures["sentences"])] += 1
    assert score_histogram(out, "clean_page", "sentences", "dropped") == expected
    # every page judged has its length counted, kept or dropped for any reason
    length = [
        a + b
        for a, b in zip(
            score_histogram(out, "clean_page", "page_chars", "kept"),
            score_histogram(out, "clean_page", "page_chars", "dropped"),
        )
    ]
    assert sum(length) == s["read"]
    with open(os.path.join(out, "_meta/profile.json"), encoding="utf-8") as fh:
        assert json.load(fh)["steps"]["clean_page"]["thresholds"] == {
            "page_chars": rules.MAX_PAGE_CHARS,
            "sentences": 3,
        }


def test_the_lid_step_is_the_builders_langdetect_by_default(crawl_run, tmp_path):
    """C4 kept what langdetect called English at >= 0.99 (issue 16: lid.176 at 0.9 dropped real English)."""
    import json

    from source_outputs import step_stats

    out, stats = crawl_run
    prov = json.load(open(os.path.join(out, "_provenance.json")))
    lid = next(s for s in prov["steps"] if s["step"] == "lid")
    assert lid["filter"].endswith("LangdetectId") and lid["thresholds"] == {"language_score": 0.99}
    assert prov["config"]["lang_threshold"] == 0.99 and prov["config"]["lid_with"] == "langdetect"
    for d in read_output(out):
        assert d.metadata["language"] == "en" and d.metadata["language_score"] >= 0.99
    # seeded: the same page always gets the same probability
    from corpusmill.filters.lid import LangdetectId

    page = _wet_text("howto/sorting.html")
    assert len({LangdetectId().predict(page) for _ in range(3)}) == 1
    # --lid-with lid176: fastText at 0.65, the threshold that kept the builder's pages (docs/sources.md)
    other = str(tmp_path / "ft")
    ft = run_c4(C4Config(input=[PYDOCS, RECRAWL, WET], output=other, mode="crawl", lid_with="lid176"))
    assert step_stats(ft, "lid")["read"] == step_stats(stats, "lid")["read"]
    prov = json.load(open(os.path.join(other, "_provenance.json")))
    assert next(s for s in prov["steps"] if s["step"] == "lid")["thresholds"] == {"language_score": 0.65}
