"""The Wikipedia source on a real enwiki dump slice (gensim's test sample, see tests/data/PROVENANCE.md)."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import re

import pytest
from helpers import ANY_FAILURES, tree_digest

from corpusmill.cli import main as cli_main
from corpusmill.core.document import Document
from corpusmill.core.files import read_failed, read_output
from corpusmill.filters.wikitext import (
    BOILERPLATE_SECTIONS,
    ParseWikiPage,
    WikitextToText,
    hardened_parser,
    wikitext_to_text,
)
from corpusmill.io.mediawiki import read_chunk, read_site_info, scan_dump
from corpusmill.pipelines.wikipedia import WikipediaConfig, run_wikipedia

DATA = os.path.join(os.path.dirname(__file__), "data", "wikipedia")
DUMP = os.path.join(DATA, "enwiki-sample-multistream.xml.bz2")


@pytest.fixture(scope="module")
def raw_xml() -> bytes:
    return bz2.open(DUMP).read()


@pytest.fixture(scope="module")
def truth(raw_xml):
    """What the dump holds, counted with plain regexes (independently of the reader)."""
    pages = re.findall(rb"<page>.*?</page>", raw_xml, flags=re.S)
    redirects = [p for p in pages if b"<redirect" in p]
    articles = [p for p in pages if b"<ns>0</ns>" in p and b"<redirect" not in p]
    titles = sorted(re.search(rb"<title>(.*?)</title>", p).group(1).decode() for p in articles)
    return {
        "pages": len(pages),
        "redirects": len(redirects),
        "articles": len(articles),
        "titles": titles,
        "other_ns": len(pages) - len(redirects) - len(articles),
    }


def _payloads(path, split):
    return [r.payload for ref in scan_dump(path, split) for r in read_chunk(ref)]


def _run(inputs, out, beam_args=(), **kw):
    stats = run_wikipedia(
        WikipediaConfig(input=inputs, output=out, dropped_sample=5, **{**ANY_FAILURES, **kw}), beam_args
    )
    return {s["step"]: s for s in stats}


def test_real_dump_articles_text_and_metadata(tmp_path, truth):
    out = str(tmp_path / "out")
    stats = _run([DUMP], out, split_mb=0.03)  # several chunks of bz2 streams
    assert stats["parse"]["read"] == truth["pages"]
    assert stats["parse"]["failed"] == 0
    assert (
        stats["parse"]["dropped"].get("redirect", 0) + stats["parse"]["dropped"].get("namespace", 0)
        == truth["redirects"] + truth["other_ns"]
    )
    assert stats["parse"]["kept"] == truth["articles"]
    docs = read_output(out)
    assert sorted(d.metadata["title"] for d in docs) == truth["titles"]
    assert os.listdir(out).count("en") == 1
    for doc in docs:
        assert doc.source == "wikipedia" and doc.metadata["language"] == "en"
        assert doc.url == "https://en.wikipedia.org/wiki/" + doc.metadata["title"].replace(" ", "_")
        for markup in ("{{", "}}", "[[", "]]", "<ref", "</ref", "{|", "<!--", "[[Category:", "thumb|"):
            assert markup not in doc.text, (doc.metadata["title"], markup)
        assert not re.search(r"^(References|External links|See also|Further reading)$", doc.text, flags=re.M)
        assert len(doc.text) > 0


def test_headings_kept_links_become_anchor_text(raw_xml):
    # Pick real pages whose wikitext has headings, piped links and a boilerplate section.
    parse, text = ParseWikiPage(), WikitextToText()
    checked = 0
    for ref in scan_dump(DUMP, 1 << 30):
        for rec in read_chunk(ref):
            verdict = parse(rec)
            if not verdict.kept:
                continue
            wikitext = verdict.doc.text
            heads = [h.strip() for h in re.findall(r"^==+\s*([^=\n]+?)\s*==+\s*$", wikitext, flags=re.M)]
            prose = re.sub(r"<ref[^>]*/>|<ref.*?</ref>|<!--.*?-->", "", wikitext, flags=re.S)
            while re.search(r"\{\{[^{}]*\}\}", prose):
                prose = re.sub(r"\{\{[^{}]*\}\}", "", prose)
            prose = "\n".join(line for line in prose.split("\n") if line[:1].isalpha())  # paragraphs only
            piped = re.findall(r"\[\[([^\[\]|:]+)\|([^\[\]|']+)\]\]", prose)
            if not heads or not piped or not any(h in ("References", "External links", "See also") for h in heads):
                continue
            out = text(verdict.doc).doc.text
            first_content_head = next(
                (h for h in heads if h not in ("References", "External links", "See also", "Notes", "Further reading")),
                None,
            )
            if first_content_head is None:
                continue
            assert first_content_head in out.split("\n")
            target, anchor = piped[0]
            assert anchor.replace("''", "").strip() in out
            checked += 1
    assert checked >= 3


def test_chunks_cover_every_page_once_bz2_plain_and_utf16(tmp_path, raw_xml, truth):
    whole = _payloads(DUMP, 1 << 40)
    assert len(whole) == truth["pages"] and len(set(whole)) == len(whole)
    assert _payloads(DUMP, 1) == whole  # one chunk per bz2 stream
    plain = tmp_path / "dump.xml"
    plain.write_bytes(raw_xml)
    for split in (997, 4096, 50_000):
        assert _payloads(str(plain), split) == whole
    gz = tmp_path / "dump.xml.gz"
    gz.write_bytes(gzip.compress(raw_xml))
    assert _payloads(str(gz), 1000) == whole
    # UTF-16 dumps exist: the declared encoding is honoured, byte ranges still split at <page>.
    text = raw_xml.decode("utf-8")
    assert text.startswith("<mediawiki")
    u16 = tmp_path / "dump16.xml"
    u16.write_bytes(('<?xml version="1.0" encoding="UTF-16"?>\n' + text).encode("utf-16"))
    pages16 = _payloads(str(u16), 3001)
    assert [p.decode("utf-16-le") for p in pages16] == [p.decode("utf-8") for p in whole]
    parse = ParseWikiPage()
    ref16 = next(scan_dump(str(u16), 1 << 40))
    titles = [parse(r).doc.metadata["title"] for r in read_chunk(ref16) if parse(r).kept]
    assert sorted(titles) == truth["titles"]


def test_wikitext_rules_local_namespaces_and_languages():
    wt = (
        "'''Berlin''' ist die [[Hauptstadt|Hauptstadt]] von [[Deutschland]].{{Infobox|x=1}}<ref>Quelle</ref>\n"
        "[[Datei:Berlin.jpg|mini|Ein Bild [[Spree|mit Link]]]]\n"
        "== Geschichte ==\nText <!-- Kommentar --> zur [[Geschichte Berlins#Mittelalter|Geschichte]].\n"
        "{| class=wikitable\n|-\n| Zelle || 42\n|}\n"
        "== Einzelnachweise ==\n<references />\n== Weblinks ==\n* [https://berlin.de Offizielle Seite]\n"
        "[[Kategorie:Hauptstadt]]\n[[en:Berlin]]\n[[fr:Berlin]]\n"
    )
    out = wikitext_to_text(wt, no_text_namespaces=("datei", "kategorie"))
    assert out.split("\n")[0] == "Berlin ist die Hauptstadt von Deutschland."
    assert "Geschichte" in out.split("\n") and "Text zur Geschichte." in out
    for gone in (
        "Infobox",
        "Quelle",
        "Bild",
        "mit Link",
        "Kommentar",
        "Zelle",
        "42",
        "Einzelnachweise",
        "Weblinks",
        "Offizielle",
        "Kategorie",
        "en:",
        "fr:",
    ):
        assert gone not in out, gone
    # Without the dump's local namespace names the file caption would leak: they come from <siteinfo>.
    assert "Bild" in wikitext_to_text(wt)
    ru = wikitext_to_text("Текст.\n== См. также ==\n* [[Другое]]\n== Примечания ==\n{{примечания}}\n")
    assert ru == "Текст."


def test_boilerplate_section_names_are_those_of_the_page_language():
    assert set(BOILERPLATE_SECTIONS) == set("bg ca cs da de en es fr hr hu it nl pl pt ro ru sl sr sv uk".split())
    step = WikitextToText()

    def text(wikitext, lang):
        return step(Document("d", wikitext, "wikipedia", metadata={"language": lang})).doc.text

    # "Literatura" is a bibliography in Czech (dropped) but a section on literature in Portuguese (kept).
    pt = (
        "O Brasil tem muitos escritores.\n== Literatura ==\nMachado de Assis escreveu romances.\n"
        "== Referências ==\n* Fonte\n"
    )
    kept = text(pt, "pt")
    assert "Literatura" in kept.split("\n") and "Machado de Assis escreveu romances." in kept
    assert "Fonte" not in kept and "Referências" not in kept
    cs = "Praha je město.\n== Literatura ==\n* Kniha o Praze\n"
    assert text(cs, "cs") == "Praha je město."
    # A language outside the 20: every listed name counts.
    assert text(pt, "xx") == "O Brasil tem muitos escritores."


def test_language_comes_from_xml_lang_else_the_dbname(tmp_path):
    dump = tmp_path / "frwiki.xml"
    dump.write_text(
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/"><siteinfo><dbname>frwiki</dbname>'
        "<base>https://fr.wikipedia.org/wiki/Accueil</base></siteinfo>\n"
        + _page(1, "Paris", "Paris est une ville.")
        + "</mediawiki>\n",
        encoding="utf-8",
    )
    site = read_site_info(str(dump), "xml")
    assert site.language == "fr" and site.dbname == "frwiki"
    assert read_site_info(DUMP, "bz2").language == "en"


def _site_header(extra=""):
    return (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" xml:lang="de">'
        + extra
        + "<siteinfo><sitename>Wikipedia</sitename><dbname>dewiki</dbname>"
        "<base>https://de.wikipedia.org/wiki/Wikipedia:Hauptseite</base></siteinfo>\n"
    )


def _page(pid, title, text):
    return (
        f"<page><title>{title}</title><ns>0</ns><id>{pid}</id><revision><timestamp>2022-07-01T00:00:00Z"
        f"</timestamp><text>{text}</text></revision></page>\n"
    )


def test_bad_inputs_are_counted_and_the_run_goes_on(tmp_path, raw_xml):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-PASSWORD")
    good = tmp_path / "good.xml"
    good.write_text(
        _site_header()
        + _page(1, "Gut", "Ein guter Artikel.")
        + _page(2, "Entität", "Text &xxe; hier")
        + _page(3, "Kaputt", "ohne Ende").replace("</page>", "")
        + _page(4, "Danach", "Noch ein Artikel.")
        + "</mediawiki>\n",
        encoding="utf-8",
    )
    xxe = tmp_path / "xxe.xml"
    xxe.write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE mediawiki [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
        + _site_header()
        + _page(1, "X", "&xxe;")
        + "</mediawiki>\n"
    )
    lol = "".join(f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">' for i in range(1, 10))
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE mediawiki [<!ENTITY lol0 "lol">{lol}]>\n'
        + _site_header()
        + _page(1, "L", "&lol9;")
        + "</mediawiki>\n"
    )
    truncated = tmp_path / "truncated.xml.bz2"
    data = open(DUMP, "rb").read()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    truncated_gz = tmp_path / "truncated.xml.gz"
    packed = gzip.compress(raw_xml)
    truncated_gz.write_bytes(packed[: len(packed) // 2])
    not_xml = tmp_path / "garbage.xml"
    not_xml.write_bytes(b"\x00\x01 this is not a dump")
    out = str(tmp_path / "out")
    stats = _run([str(good), str(xxe), str(bomb), str(truncated), str(truncated_gz), str(not_xml)], out)
    parse = stats["parse"]
    failed = read_failed(out)
    by_file = {}
    for f in failed:
        by_file.setdefault(os.path.basename(f["location"].split("@")[0]), []).append(f["error"])
    assert parse["failed"] == len(failed)
    assert any("&xxe;" in e for e in by_file["good.xml"])  # the undeclared entity in one page
    assert any("no </page>" in e for e in by_file["good.xml"])  # the unclosed page
    assert any("DTD" in e for e in by_file["xxe.xml"]) and any("DTD" in e for e in by_file["bomb.xml"])
    assert any("truncated" in e or "ends early" in e for e in by_file["truncated.xml.bz2"])
    assert any("gzip stream ends early" in e for e in by_file["truncated.xml.gz"])
    assert any("siteinfo" in e for e in by_file["garbage.xml"])
    docs = read_output(out)
    titles = {d.metadata["title"] for d in docs}
    assert {"Gut", "Danach"} <= titles and "Entität" not in titles
    assert {d.metadata["language"] for d in docs if d.metadata["title"] in ("Gut", "Danach")} == {"de"}
    # the articles of a truncated bz2 / gzip before the damage were read, the ones after it were lost
    articles = len(re.findall(rb"<ns>0</ns>\s*<id>\d+</id>\s*<revision>", raw_xml))
    for cut in (truncated, truncated_gz):
        assert 0 < sum(1 for d in docs if d.location.startswith(f"{cut}@")) < articles, cut
    everything = b"".join(open(os.path.join(r, f), "rb").read() for r, _, fs in os.walk(out) for f in fs)
    assert b"TOP-SECRET" not in everything and b"TOP-SECRET" not in json.dumps(read_failed(out)).encode()
    # The parser itself never resolves entities, even when handed a DTD directly.
    from lxml import etree

    root = etree.fromstring(xxe.read_bytes(), hardened_parser())
    assert "TOP-SECRET" not in etree.tostring(root, encoding="unicode")


def test_cli_options_reach_the_stage(tmp_path, truth, capsys):
    out = tmp_path / "cli"
    assert (
        cli_main(
            ["source", "wikipedia", "--input", DUMP, "--output", str(out), "--namespaces", "0,4", "--split-mb", "0.03"]
        )
        == 0
    )
    parse = {s["step"]: s for s in json.loads((out / "_meta/stats.json").read_text())}["parse"]
    # namespace 4 is kept too, so its redirect page is dropped as a redirect, not for its namespace
    assert parse["dropped"] == {"redirect": truth["redirects"]} and parse["kept"] == truth["articles"]
    assert (
        cli_main(["source", "wikipedia", "--input", DUMP, "--output", str(tmp_path / "x"), "--namespaces", "main"]) == 2
    )
    assert "--namespaces: expected a whole number, got 'main'" in capsys.readouterr().err


@pytest.mark.slow
def test_multiprocess_runner_gives_identical_bytes(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    run_wikipedia(WikipediaConfig(input=[DUMP], output=a, split_mb=0.03))
    run_wikipedia(
        WikipediaConfig(input=[DUMP], output=b, split_mb=0.03),
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    )
    assert tree_digest(a) == tree_digest(b)


def test_a_dump_without_siteinfo_is_read_by_its_wikimedia_file_name(tmp_path):
    """A hand-cut slice of a dump (pages, no <siteinfo>): the wiki comes from the name Wikimedia gives its
    files; its articles are those of the full dump. A name that does not say the wiki is refused, naming the fix."""
    import bz2

    raw = b"".join(bz2.open(DUMP).read().split(b"</siteinfo>", 1)[1:])
    raw = b'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">' + raw
    assert b"<siteinfo>" not in raw and b"<page>" in raw
    cut = tmp_path / "enwiki-20240101-pages-articles.xml"
    cut.write_bytes(raw)
    full = run_wikipedia(WikipediaConfig(input=[DUMP], output=str(tmp_path / "full")))
    again = run_wikipedia(WikipediaConfig(input=[str(cut)], output=str(tmp_path / "cut")))
    docs = {d.id: d for d in read_output(tmp_path / "cut")}
    assert again[-1]["kept"] == full[-1]["kept"] > 0
    assert [(d.text, d.url) for d in sorted(docs.values(), key=lambda d: d.id)] == [
        (d.text, d.url) for d in sorted(read_output(tmp_path / "full"), key=lambda d: d.id)
    ]
    assert {d.metadata.get("language") for d in docs.values()} <= {"en"}
    odd = tmp_path / "slice.xml"
    odd.write_bytes(raw)
    stats = run_wikipedia(WikipediaConfig(input=[str(odd)], output=str(tmp_path / "odd"), **ANY_FAILURES))
    (failure,) = read_failed(tmp_path / "odd")  # one dead letter naming the file and the fix; the run goes on
    assert sum(s["failed"] for s in stats) == 1 and "slice.xml" in failure["location"]
    assert "enwiki-YYYYMMDD-pages-articles" in failure["error"]


def test_no_heading_is_left_without_text_under_it(tmp_path):
    """A section that was only a table (or a gallery, or templates) leaves no bare heading, nor a skeleton
    of empty sub-headings (issue 16). Checked on every article of the real dump against its wikitext."""
    parse, text = ParseWikiPage(), WikitextToText()
    removed, checked = 0, 0
    for ref in scan_dump(DUMP, 1 << 30):
        for rec in read_chunk(ref):
            verdict = parse(rec)
            if not verdict.kept:
                continue
            raw = verdict.doc.text
            heads = {h.strip(): len(eq) for eq, h in re.findall(r"^(==+)\s*([^=\n]+?)\s*==+\s*$", raw, flags=re.M)}
            result = text(verdict.doc)
            removed += (result.counts or {}).get("bare_headings_removed", 0)
            lines = result.doc.text.split("\n")
            # a heading line: one of the page's heading titles, alone after a blank line
            marks = [
                (i, heads[line]) for i, line in enumerate(lines) if line in heads and (i == 0 or lines[i - 1] == "")
            ]
            for n, (i, level) in enumerate(marks):
                end = next((j for j, lv in marks[n + 1 :] if lv <= level), len(lines))
                inside = {j for j, _ in marks}
                assert any(lines[j].strip() and j not in inside for j in range(i + 1, end)), (
                    verdict.doc.metadata["title"],
                    lines[i],
                )
                checked += 1
    assert checked > 150 and removed >= 3
    # e.g. Politics of Angola's "Political parties and elections" held only the election result tables
    out = str(tmp_path / "out")
    stats = _run([DUMP], out)
    assert stats["wikitext"]["counters"]["bare_headings_removed"] == removed
    angola = next(d for d in read_output(out) if d.metadata["title"] == "Politics of Angola")
    assert "Political parties and elections" not in angola.text.split("\n") and "Judicial branch" in angola.text


def test_no_html_entity_is_left_in_the_text():
    """An entity in a link's target reaches the text as written (the full dump's Animation article:
    ``[[35&nbsp;mm film]]``, 3 such in its 106 articles; bench/wikipedia_side_by_side.py): it becomes the
    character it names, counted as ``entities_decoded``. And none is left in any article of the dump."""
    sentence = (
        "The animated piece is output to one of several delivery media, including traditional "
        "[[35&nbsp;mm film]] and newer media with [[digital video]]. The [[Kruskal&ndash;Wallis test]]"
    )
    counts = {}
    out = wikitext_to_text(sentence, counts=counts)
    assert "35\u00a0mm film" in out and "Kruskal\u2013Wallis test" in out and counts["entities_decoded"] == 2
    parse, text = ParseWikiPage(), WikitextToText()
    for ref in scan_dump(DUMP, 1 << 30):
        for rec in read_chunk(ref):
            verdict = parse(rec)
            if verdict.kept:
                result = text(verdict.doc)
                assert not re.search(r"&(?:[a-zA-Z]+|#\d+);", result.doc.text), verdict.doc.metadata["title"]
