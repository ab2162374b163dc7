"""StackExchange source on a Posts.xml dump built from the real Python FAQ (our XML wrapper, real
question/answer HTML; tests/data/stackexchange), in the dump's layouts: plain, .bz2 and .7z."""

from __future__ import annotations

import bz2
import collections
import html
import os
import re
import shutil
import time

import py7zr
import pytest
from helpers import ANY_FAILURES, tree_digest
from lxml import etree
from source_outputs import failed_records, step_stats

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import read_output
from corpusmill.engine.step import check_accounting
from corpusmill.filters.stackexchange_html import html_to_text
from corpusmill.io.posts import iter_7z_member, select_posts_files
from corpusmill.pipelines.stackexchange import StackExchangeConfig, run_stackexchange

DUMP = os.path.join(os.path.dirname(__file__), "data", "stackexchange")


def _site_xml():
    """{site: Posts.xml bytes}, read with the standard modules (not the code under test)."""
    out = {}
    for entry in sorted(os.listdir(DUMP)):
        path = os.path.join(DUMP, entry)
        if entry.endswith(".7z"):
            with py7zr.SevenZipFile(path) as archive:
                target = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"se-{os.getpid()}")
                archive.extract(path=target, targets=["Posts.xml"])
            with open(os.path.join(target, "Posts.xml"), "rb") as fh:
                out[entry[:-3]] = fh.read()
            shutil.rmtree(target)
        elif os.path.isdir(path):
            for name in os.listdir(path):
                with open(os.path.join(path, name), "rb") as fh:
                    data = fh.read()
                out[entry] = bz2.decompress(data) if name.endswith(".bz2") else data
    return out


def _rows(xml):
    return [dict(el.attrib) for el in etree.fromstring(xml).iter("row")]


def test_html_to_text_keeps_code_blocks_and_lists_of_real_answers():
    rows = _rows(_site_xml()["programming.python-faq.example"])
    # every <pre> block of the real posts appears verbatim (tags removed, entities decoded) between fences
    blocks = 0
    for r in rows:
        text = html_to_text(r["Body"])
        for raw_code in re.findall(r"<pre[^>]*>(.*?)</pre>", r["Body"], re.S):
            code = html.unescape(re.sub(r"<[^>]+>", "", raw_code)).strip("\n")
            assert "```\n" + "\n".join(line.rstrip() for line in code.split("\n")) + "\n```" in text, r["Id"]
            blocks += 1
    assert blocks >= 10
    lists = next(r for r in rows if "<ul" in r["Body"] and r["PostTypeId"] == "2")
    items = [line for line in html_to_text(lists["Body"]).split("\n") if line.startswith("- ")]
    assert len(items) == lists["Body"].count("<li")
    # indentation inside <pre> survives exactly
    indented = next(line for r in rows for line in html_to_text(r["Body"]).split("\n") if line.startswith("    "))
    assert indented.strip()
    # broken HTML does not raise and keeps its text
    assert (
        html_to_text("<p>unclosed <b>bold <ul><li>one<li>two</ul><pre>code\n  x = 1")
        == "unclosed bold\n\n- one\n- two\n\n```\ncode\n  x = 1\n```"
    )


@pytest.fixture(scope="module")
def dump_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("se") / "out")
    stats = run_stackexchange(StackExchangeConfig(input=[DUMP], output=out, write_dropped=True, top_sites=3))
    return out, stats


def test_top_sites_by_post_count(dump_run):
    out, stats = dump_run
    assert check_accounting(stats) == []
    counts = {site: sum(r["PostTypeId"] in ("1", "2") for r in _rows(xml)) for site, xml in _site_xml().items()}
    expected = sorted(counts, key=lambda s: (-counts[s], s))[:3]
    docs = read_output(out)
    assert sorted({d.metadata["site"] for d in docs}) == sorted(expected)
    assert {d.metadata["site"]: d.metadata["site_rank"] for d in docs} == {s: i + 1 for i, s in enumerate(expected)}
    assert step_stats(stats, "parse")["read"] == sum(len(_rows(x)) for x in _site_xml().values())
    assert step_stats(stats, "top_sites")["dropped"]["site_not_in_top"] == sum(
        c for s, c in counts.items() if s not in expected
    )
    # all three layouts were read: .bz2 (programming), .7z (design), plain (the others)
    assert "programming.python-faq.example" in expected and "design.python-faq.example" in counts


def test_answers_sorted_by_numeric_score_and_text_format(dump_run):
    out, _ = dump_run
    docs = read_output(out)
    rows = {site: _rows(xml) for site, xml in _site_xml().items()}
    seen_ten_before_nine = False
    for d in docs:
        site_rows = rows[d.metadata["site"]]
        qid = d.metadata["question_id"]
        answers = [r for r in site_rows if r.get("ParentId") == str(qid)]
        expected = sorted(answers, key=lambda r: (-int(r["Score"]), int(r["Id"])))
        assert d.metadata["answer_ids"] == [int(r["Id"]) for r in expected]
        assert d.metadata["answer_scores"] == sorted(d.metadata["answer_scores"], reverse=True)
        question = next(r for r in site_rows if r["Id"] == str(qid))
        assert d.text.startswith(f"Q: {question['Title']}\n")
        assert d.text.count("\n\nA: ") == len(answers)
        assert d.url == f"https://{d.metadata['site']}/questions/{qid}"
        scores = d.metadata["answer_scores"]
        if 10 in scores and 9 in scores:
            seen_ten_before_nine = scores.index(10) < scores.index(9)
            positions = [d.text.index(html_to_text(r["Body"])[:60]) for r in expected]
            assert positions == sorted(positions)
    assert seen_ten_before_nine


def test_hostile_and_broken_xml_is_refused_row_by_row(tmp_path):
    good = _site_xml()["gui.python-faq.example"].decode("utf-8").split("\n")
    header, rows = good[:2], [line for line in good if line.strip().startswith("<row")]
    hostile = (
        header[:1]
        + [
            '<!DOCTYPE posts [',
            '  <!ENTITY xxe SYSTEM "file:///etc/passwd">',
            '  <!ENTITY lol "lol">',
            '  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">',
            '  <!ENTITY lol9 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">',
            ']>',
            "<posts>",
            '  <row Id="901" PostTypeId="1" Score="1" Title="XXE" Body="&xxe;" />',
            '  <row Id="902" PostTypeId="2" ParentId="901" Score="1" Body="&lol9;" />',
            '  <row Id="903" PostTypeId="2" ParentId="1" Score="1" Body="&lt;p&gt;no parent id" ',
            '  <row Id="904" PostTypeId="2" Score="3" Body="&lt;p&gt;orphan answer&lt;/p&gt;" />',
            '  <row Id="905" PostTypeId="2" ParentId="1" Score="x" Body="bad score" />',
            '  <row Id="906" PostTypeId="2" ParentId="1" Score="4" Body="&lt;p&gt;broken &lt;b&gt;html&lt;ul&gt;&lt;li&gt;a" />',
        ]
        + rows
        + ["</posts>"]
    )
    site = tmp_path / "dump" / "hostile.example"  # the output goes beside the dump, never inside it
    site.mkdir(parents=True)
    (site / "Posts.xml").write_text("\n".join(hostile) + "\n", encoding="utf-8")
    out = str(tmp_path / "out")
    start = time.monotonic()
    stats = run_stackexchange(
        StackExchangeConfig(input=[str(tmp_path / "dump")], output=out, write_dropped=True, **ANY_FAILURES)
    )
    assert time.monotonic() - start < 60  # no entity expansion
    parse = step_stats(stats, "parse")
    failures = {f["location"].rsplit("@", 1)[-1]: f["error"] for f in failed_records(out)}
    assert parse["failed"] == 5 == len(failures)
    errors = "\n".join(failures.values())
    assert "DOCTYPE" in errors and "Entity 'xxe' not defined" in errors and "Entity 'lol9' not defined" in errors
    assert "Score='x' is not an integer" in errors and "row is not closed" in errors
    others = sum('PostTypeId="1"' not in r and 'PostTypeId="2"' not in r for r in rows)
    assert parse["dropped"] == {"missing_parent_id": 1, "post_type_other": others}
    docs = read_output(out)
    text = "\n".join(d.text for d in docs)
    assert "root:" not in text and "lollol" not in text
    assert len(docs) == sum('PostTypeId="1"' in r for r in rows)  # every real question survived
    q1 = next(d for d in docs if d.metadata["question_id"] == 1)
    assert "broken html\n\n- a" in q1.text  # the broken-HTML answer is kept with its text


def test_plain_file_split_in_small_ranges_reads_every_row_once(tmp_path):
    xml = _site_xml()["library.python-faq.example"]
    lines = xml.decode("utf-8").split("\n")
    # a row spread over two lines, as a pretty-printer would write it
    i = next(k for k, line in enumerate(lines) if 'PostTypeId="2"' in line)
    lines[i] = lines[i].replace(' Body=', '\n     Body=', 1)
    site = tmp_path / "lib.example"
    site.mkdir()
    (site / "Posts.xml").write_text("\n".join(lines), encoding="utf-8")
    outs = []
    for split_mb in (64.0, 0.004):  # one range, and ranges of about 4 KB
        out = str(tmp_path / f"out{split_mb}")
        stats = run_stackexchange(StackExchangeConfig(input=[str(site)], output=out, split_mb=split_mb))
        assert step_stats(stats, "parse")["read"] == len(_rows(xml)) and step_stats(stats, "parse")["failed"] == 0
        outs.append(out)
    assert tree_digest(outs[1]) == tree_digest(outs[0])


def test_7z_member_is_streamed_in_bounded_chunks(tmp_path):
    row = (
        '  <row Id="{}" PostTypeId="2" ParentId="1" Score="1" Body="&lt;p&gt;'
        + "answer text " * 20
        + '&lt;/p&gt;" />\n'
    )
    data = (
        "<?xml version='1.0'?>\n<posts>\n" + "".join(row.format(i) for i in range(2, 90000)) + "</posts>\n"
    ).encode()
    path = tmp_path / "big.example.7z"
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writestr(data, "Posts.xml")
    sizes = [len(c) for c in iter_7z_member(str(path))]
    assert sum(sizes) == len(data) and len(sizes) > 2 and max(sizes) <= 8 << 20
    stream = iter_7z_member(str(path))
    next(stream)
    stream.close()  # stopping early stops the extraction thread


def test_truncated_bz2_keeps_the_rows_before_the_damage(tmp_path):
    xml = _site_xml()["programming.python-faq.example"]
    blob = bz2.compress(xml, 1)  # 100 kB blocks: the blocks before the cut are readable
    site = tmp_path / "dump" / "cut.example"  # the output goes beside the dump, never inside it
    site.mkdir(parents=True)
    (site / "Posts.xml.bz2").write_bytes(blob[: len(blob) * 2 // 3])
    out = str(tmp_path / "out")
    stats = run_stackexchange(StackExchangeConfig(input=[str(tmp_path / "dump")], output=out, **ANY_FAILURES))
    parse = step_stats(stats, "parse")
    assert 0 < parse["kept"] < len(_rows(xml)) and parse["failed"] >= 1
    assert any("unreadable" in f["error"] or "cut off" in f["error"] for f in failed_records(out))


def test_bad_inputs_are_explained(tmp_path):
    with pytest.raises(CorpusmillError, match="no Posts.xml"):
        select_posts_files([str(tmp_path / "Users.xml")])
    with pytest.raises(CorpusmillError, match="given twice"):
        select_posts_files(["/a/x.example/Posts.xml", "/b/x.example.7z"])
    with pytest.raises(CorpusmillError, match="Posts.xml, Posts.xml.bz2 or a .7z"):
        select_posts_files(["/a/x.example/Posts.xml.gz"])
    assert select_posts_files(["/d/stackoverflow.com-Posts.7z", "/d/math.se.com.7z", "/d/s/Posts.xml.bz2"]) == [
        ("/d/stackoverflow.com-Posts.7z", "stackoverflow.com", "7z"),
        ("/d/math.se.com.7z", "math.se.com", "7z"),
        ("/d/s/Posts.xml.bz2", "s", "bz2"),
    ]


def test_multiprocess_runner_and_redpajama_format(tmp_path):
    out = str(tmp_path / "mp")
    stats = run_stackexchange(
        StackExchangeConfig(input=[DUMP], output=out, top_sites=2, text_format="redpajama", min_answers=2),
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    )
    assert check_accounting(stats) == []
    docs = read_output(out)
    assert docs and all(len(d.metadata["answer_ids"]) >= 2 for d in docs)
    assert all(re.match(r"Q: .+\nA: ", d.text, re.S) and "\n\nA: " not in d.text for d in docs)
    assert collections.Counter(d.metadata["site_rank"] for d in docs).keys() <= {1, 2}


def test_cli_options_reach_the_stage(tmp_path, capsys):
    import json

    from corpusmill.cli import main as cli_main

    sites = ["gui.python-faq.example", "library.python-faq.example"]
    xml = _site_xml()
    answers = collections.Counter((s, r["ParentId"]) for s in sites for r in _rows(xml[s]) if r["PostTypeId"] == "2")
    questions = [(s, r["Id"]) for s in sites for r in _rows(xml[s]) if r["PostTypeId"] == "1"]
    few = sum(answers[q] < 2 for q in questions)
    assert 0 < few < len(questions)
    out = tmp_path / "cli"
    assert (
        cli_main(
            [
                "source",
                "stackexchange",
                "--input",
                DUMP,
                "--output",
                str(out),
                "--sites",
                ",".join(sites),
                "--text-format",
                "redpajama",
                "--min-answers",
                "2",
                "--split-mb",
                "0.01",
            ]
        )
        == 0
    )
    docs = read_output(str(out))
    assert sorted({d.metadata["site"] for d in docs}) == sites and len(docs) == len(questions) - few
    assert all(re.match(r"Q: .+\nA: .+\nA: ", d.text, re.S) and "\n\nA: " not in d.text for d in docs)
    stats = json.loads((out / "_meta/stats.json").read_text())
    assert step_stats(stats, "format")["dropped"] == {"too_few_answers": few}
    assert (
        cli_main(["source", "stackexchange", "--input", DUMP, "--output", str(tmp_path / "x"), "--top-sites", "0"]) == 2
    )
    assert "--top-sites: expected a value at least 1, got 0" in capsys.readouterr().err


def test_a_dump_with_a_bom_and_crlf_line_ends_reads_like_a_plain_one(tmp_path):
    """Real Posts.xml files start with a UTF-8 BOM and end lines with CRLF (issue 16): no dead letter, and
    the same documents as the LF file, in one range and in many, plain and bz2."""
    xml = _site_xml()["library.python-faq.example"]
    docs = {}
    for name, data in (("lf", xml), ("bom-crlf", b"\xef\xbb\xbf" + xml.replace(b"\n", b"\r\n"))):
        for kind in ("plain", "bz2"):
            site = tmp_path / name / kind / "lib.example"
            site.mkdir(parents=True)
            if kind == "plain":
                (site / "Posts.xml").write_bytes(data)
            else:
                (site / "Posts.xml.bz2").write_bytes(bz2.compress(data))
            for split_mb in (64.0, 0.004):
                out = str(tmp_path / f"out-{name}-{kind}-{split_mb}")
                stats = run_stackexchange(StackExchangeConfig(input=[str(site)], output=out, split_mb=split_mb))
                assert step_stats(stats, "parse")["failed"] == 0 and not failed_records(out), (name, kind)
                assert step_stats(stats, "parse")["read"] == len(_rows(xml))
                docs[(name, kind, split_mb)] = sorted((d.id, d.text) for d in read_output(out))
    assert len({tuple(v) for v in docs.values()}) == 1


def test_the_editors_placeholder_alt_text_is_not_kept():
    body = (
        '<p>The window looks like this:</p><p><img src="https://i.sstatic.net/x.png" '
        'alt="enter image description here"></p><p>and the icon <img src="i.png" alt="a red square"> too.</p>'
    )
    text = html_to_text(body)
    assert "enter image description" not in text and "a red square" in text and "window looks like" in text


def test_a_compressed_site_is_unpacked_into_chunks_read_at_once_with_the_same_rows(tmp_path):
    """Issue 16: a .7z or .bz2 site is not parsed by one worker: one streaming pass writes plain chunks
    (cut before a <row line, each knowing its first line number), read at the same time. Every row, with
    its location, is what reading the file whole gives; so are the stage's outputs."""
    from corpusmill.io.posts import read_posts_range, split_posts_file

    data = os.path.join(os.path.dirname(__file__), "data", "stackexchange")
    for path, kind in (
        (os.path.join(data, "design.python-faq.example.7z"), "7z"),
        (os.path.join(data, "programming.python-faq.example", "Posts.xml.bz2"), "bz2"),
    ):
        item = (path, "site", kind)
        whole = [r for rng in split_posts_file(item) for r in read_posts_range(rng)]
        ranges = list(split_posts_file(item, split_bytes=3000, unpack_dir=str(tmp_path / kind)))
        assert len(ranges) > 5 and {r.kind for r in ranges} == {"chunk"}
        chunked = [r for rng in ranges for r in read_posts_range(rng)]
        assert chunked == whole and len(whole) > 20 and not any(r.error for r in whole)
        assert whole[0].location.startswith(f"{path}!Posts.xml:" if kind == "7z" else f"{path}:")
    # the stage: small chunks (many tasks) and one chunk give the same bytes, and no chunk is left behind
    outs = []
    for mb in (0.003, 64):
        out = tmp_path / f"out-{mb}"
        run_stackexchange(StackExchangeConfig(input=[data], output=str(out), split_mb=mb))
        assert not (out / "_unpacked").exists()
        outs.append(tree_digest(str(out)))
    assert outs[0] == outs[1]
