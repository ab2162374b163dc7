"""The HTML report, checked as a person would see it: rendered in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
from helpers import CHROMIUM, chromium, warc  # noqa: F401
from lxml import html as lxml_html
from warc_faults import with_broken_http_record

from corpusmill.cli import main as cli_main
from corpusmill.pipelines.ccnet import CCNetConfig, run_ccnet
from corpusmill.report.make import make_report


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    broken = str(root / "broken.warc.gz")
    with_broken_http_record(warc("pydocs.warc.gz"), broken)
    run_ccnet(CCNetConfig(input=[broken, warc("iana.warc.gz")], output=str(root / "cc"), docs_per_shard=5))
    return root


def test_report_in_a_browser_shows_the_numbers_of_stats_json(run_dir, tmp_path):
    path, _ = make_report(str(run_dir), quiet=True)
    page = open(path, encoding="utf-8").read()
    # self-contained: nothing to fetch
    assert not re.search(r'(src|href)="(https?:)?//', page)
    proc = chromium(["--dump-dom", f"file://{path}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [l for l in proc.stderr.splitlines() if ":CONSOLE" in l]
    assert console == []
    dom = lxml_html.fromstring(proc.stdout)
    stats = json.load(open(run_dir / "cc" / "_meta/stats.json"))
    for entry in stats:
        for field in ("read", "kept", "failed"):
            cell = dom.xpath(f'//td[@data-stage="cc"][@data-step="{entry["step"]}"][@data-field="{field}"]')
            assert len(cell) == 1 and int(cell[0].text_content()) == entry[field], (entry["step"], field)
        for reason, n in entry["dropped"].items():
            span = dom.xpath(f'//span[@data-stage="cc"][@data-step="{entry["step"]}"][@data-reason="{reason}"]')
            assert span and span[0].text_content() == f"{reason}: {n}"
        check = dom.xpath(f'//span[@data-check="cc/{entry["step"]}"]')
        assert check[0].get("class") == "pass"
    assert dom.xpath('//span[@id="accounting"]')[0].text_content() == "pass"
    # the dead letter and the dropped samples are there for a person to read
    assert "broken HTTP header" in dom.text_content()
    assert dom.xpath("//details/summary[contains(., 'line_dedup / too_short')]")
    # a few written documents per group, drawn by hash from all of them
    profile = json.load(open(run_dir / "cc" / "_meta/profile.json"))
    for group, n in profile["output"]["groups"].items():
        summary = dom.xpath(f'//summary[@data-sample-group="{group}"]')[0]
        assert summary.text_content().startswith(f"{group}: {min(5, n)} written documents")
        assert len(summary.getparent().xpath(".//div[@class='sample kept']")) == min(5, n)
    # the stage table counts pages, not the WARC's request and revisit records
    extract = stats[0]
    bookkeeping = sum(
        n for r, n in extract["dropped"].items() if r in ("warc_request", "warc_revisit", "warc_warcinfo")
    )
    assert bookkeeping > 100
    summary = {c.get("data-field"): int(c.text_content()) for c in dom.xpath('//td[@data-summary="cc"]')}
    assert summary["read"] == extract["read"] - bookkeeping and "(a WARC record, not a page)" in dom.text_content()
    # the lines line dedup removed from the most documents, with their counts
    repeated = json.load(open(run_dir / "cc" / "_meta/repeated_lines.json"))["lines"]
    assert int(dom.xpath('//td[@data-repeated="0"]')[0].text_content()) == repeated[0]["documents"] > 1
    # line dedup's dropped documents are shown as they came, with the lines it removed struck through
    assert dom.xpath("//details[summary[contains(., 'line_dedup / too_short')]]//del[@class='removed']")
    assert len(dom.xpath("//svg")) >= 4  # funnel, groups, language score, lengths
    # the document counts per language match the files
    en = dom.xpath('//td[@data-stage="cc"][@data-group="en"]')
    assert int(en[0].text_content()) == stats[-1]["kept"]  # every kept page of these crawls is English
    shot = tmp_path / "report.png"
    proc = chromium([f"--screenshot={shot}", "--window-size=1280,2000", f"file://{path}"], tmp_path)
    assert proc.returncode == 0 and shot.stat().st_size > 50_000


def test_broken_accounting_is_shown_in_red(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    stats = json.load(open(copy / "cc" / "_meta/stats.json"))
    stats[1]["read"] += 3  # three documents vanished between extract and normalize
    json.dump(stats, open(copy / "cc" / "_meta/stats.json", "w"))
    path, data = make_report(str(copy), quiet=True)
    dom = lxml_html.fromstring(open(path, encoding="utf-8").read())
    check = dom.xpath(f'//span[@data-check="cc/{stats[1]["step"]}"]')[0]
    assert check.get("class") == "fail"
    assert dom.xpath('//span[@id="accounting"]')[0].text_content() == "FAIL"


def test_report_command_prints_a_summary(run_dir, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert cli_main(["report", str(run_dir), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "accounting ok" in printed and "dead letters" in printed and out.exists()
    assert cli_main(["report", str(tmp_path / "nope")]) == 2


def test_the_report_shows_what_each_filter_removed_by_language_and_its_threshold(tmp_path):
    """On the UDHR in 72 languages with --languages en,fr: the lid step's drops by language, the kept
    and dropped score distributions with the threshold, exact group counts and the provenance."""
    from helpers import DATA

    from corpusmill.core.document import Document

    src = tmp_path / "udhr.jsonl"
    with open(src, "w", encoding="utf-8") as fh:
        for line in open(os.path.join(DATA, "udhr.jsonl"), encoding="utf-8"):
            row = json.loads(line)
            fh.write(
                Document(f"udhr-{row['lang']}", row["text"], "udhr", location=row["gflanguages_id"]).to_json() + "\n"
            )
    run = tmp_path / "run"
    run_ccnet(CCNetConfig(input=[str(src)], output=str(run / "cc"), min_length=0, languages=["en", "fr"]))
    path, _ = make_report(str(run), quiet=True)
    proc = chromium(["--dump-dom", f"file://{path}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = lxml_html.fromstring(proc.stdout)
    profile = json.load(open(run / "cc" / "_meta/profile.json"))
    # every per-language count of every drop reason is in the page, in its own cell
    for step, entry in profile["steps"].items():
        for reason, per in entry["dropped"].items():
            for lang, n in per["languages"].items():
                if set(per["languages"]) == {"-"}:
                    continue
                cell = dom.xpath(f'//span[@data-step="{step}"][@data-reason="{reason}"][@data-language="{lang}"]')
                assert cell and cell[0].text_content() == f"{lang}: {n}", (step, reason, lang)
    assert len(profile["steps"]["lid"]["dropped"]["language_not_kept"]["languages"]) > 30
    # exact written counts per group and language
    for group, n in profile["output"]["groups"].items():
        assert int(dom.xpath(f'//td[@data-stage="cc"][@data-group="{group}"]')[0].text_content()) == n
    summary = {c.get("data-field"): int(c.text_content()) for c in dom.xpath('//td[@data-summary="cc"]')}
    stats = json.load(open(run / "cc" / "_meta/stats.json"))
    assert summary == {"read": stats[0]["read"], "written": sum(profile["output"]["groups"].values())}
    # the threshold is stated and drawn on the lid step's plot (a dashed line labelled 0.5)
    assert "thresholds: language_score = 0.5" in dom.text_content()
    lid_plot = [
        svg for svg in dom.xpath("//svg") if "lid: language_score" in lxml_html.tostring(svg, encoding="unicode")
    ]
    assert lid_plot and "0.5" in lxml_html.tostring(lid_plot[0], encoding="unicode")
    # how the output was made: the lid model's sha256, the effective config, seconds per step
    prov = json.load(open(run / "cc" / "_provenance.json"))
    lid = next(s for s in prov["steps"] if s["step"] == "lid")
    assert lid["models"][0]["sha256"][:12] in dom.text_content()
    assert '"en", "fr"' in dom.text_content()  # the languages option, from the effective configuration
    shot = tmp_path / "report.png"
    proc = chromium([f"--screenshot={shot}", "--window-size=1280,4000", f"file://{path}"], tmp_path)
    assert proc.returncode == 0 and shot.stat().st_size > 50_000


def test_report_diff_names_what_differs_between_two_runs(tmp_path, capsys):
    """Two runs of the same stage with another threshold and language list: --diff shows exactly that."""
    shutil.copy(warc("pydocs.warc.gz"), tmp_path / "pydocs.warc.gz")
    src = str(tmp_path / "pydocs.warc.gz")
    run_ccnet(CCNetConfig(input=[src], output=str(tmp_path / "a" / "cc"), lang_threshold=0.5))
    run_ccnet(CCNetConfig(input=[src], output=str(tmp_path / "b" / "cc"), lang_threshold=0.9, min_length=1000))
    assert cli_main(["report", str(tmp_path / "a"), "--diff", str(tmp_path / "b")]) == 0
    printed = capsys.readouterr().out
    assert "config lang_threshold: 0.5 -> 0.9" in printed and "config min_length: 300 -> 1000" in printed
    assert 'lid thresholds: {"language_score": 0.5} -> {"language_score": 0.9}' in printed
    assert "config input" not in printed and "config output" not in printed  # where, not how
    dom = lxml_html.fromstring(open(tmp_path / "a" / "report.html", encoding="utf-8").read())
    cells = {c.get("data-run"): c.text_content() for c in dom.xpath('//td[@data-diff="config min_length"]')}
    assert cells == {"this": "300", "other": "1000"}
    stats_a = json.load(open(tmp_path / "a" / "cc" / "_meta/stats.json"))
    stats_b = json.load(open(tmp_path / "b" / "cc" / "_meta/stats.json"))
    kept = [(a["kept"], b["kept"]) for a, b in zip(stats_a, stats_b) if a["step"] == "line_dedup"][0]
    assert kept[0] > kept[1] and f"line_dedup kept: {kept[0]} -> {kept[1]}" in printed
    assert cli_main(["report", str(tmp_path / "a"), "--diff", str(tmp_path / "nothing")]) == 2
    # issue 29: the other run's stage under another name is matched by its kind (the command that made it)
    shutil.move(str(tmp_path / "b" / "cc"), str(tmp_path / "b" / "crawl"))
    assert cli_main(["report", str(tmp_path / "a"), "--diff", str(tmp_path / "b")]) == 0
    assert "config min_length: 300 -> 1000" in capsys.readouterr().out
    dom = lxml_html.fromstring(open(tmp_path / "a" / "report.html", encoding="utf-8").read())
    assert "matched by kind: its crawl" in dom.text_content()


def test_the_report_shows_code_rule_measures_and_what_a_dropped_copy_duplicates(tmp_path):
    """A GitHub run: each code rule's measure against its threshold, and the dropped copy of a file
    naming the file that was kept (issue 15)."""
    from corpusmill.core.files import read_dropped, read_output
    from corpusmill.pipelines.github import GitHubConfig, run_github

    repos = os.path.join(os.path.dirname(__file__), "data", "github", "repos")
    run = tmp_path / "run"
    run_github(GitHubConfig(output=str(run / "gh"), mode="local", input=[repos]))
    path, _ = make_report(str(run), quiet=True)
    proc = chromium(["--dump-dom", f"file://{path}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = lxml_html.fromstring(proc.stdout)
    text = dom.text_content()
    for rule, limit in (
        ("max_line_length", "1000"),
        ("mean_line_length", "100.0"),
        ("alnum_share", "0.25"),
        ("alpha_per_token", "1.5"),
    ):
        assert f"thresholds: {rule} = {limit}" in text
        plot = [
            svg
            for svg in dom.xpath("//svg")
            if f"{rule}: {rule}, kept and dropped" in lxml_html.tostring(svg, encoding="unicode")
        ]
        assert plot, rule
    kept = {d.id: d for d in read_output(str(run / "gh"))}
    dups = read_dropped(str(run / "gh"))["exact_dedup"]["duplicate_content"]
    assert dups
    for r in dups:
        original = kept[r["document"]["metadata"]["duplicate_of"]]
        assert original.text == r["document"]["text"]
        assert f"duplicate_of={original.id}" in text and f"duplicate_of_location={original.location}" in text
