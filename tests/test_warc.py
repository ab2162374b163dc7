"""Reading real WARC/ARC files record by record, including damaged ones."""

import collections
import gzip
import io

from helpers import warc
from warc_faults import (
    truncated,
    with_broken_http_record,
    with_corrupt_member,
)
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from corpusmill.filters.html import decode_html, detect_charset
from corpusmill.io.warc import ExtractWarcRecord, scan_records


def outcomes(path, max_bytes=5 << 20):
    extract = ExtractWarcRecord(max_bytes=max_bytes)
    result = collections.Counter()
    docs, errors = [], []
    for ref in scan_records(path):
        try:
            verdict = extract(ref)
        except Exception as exc:  # what the pipeline's dead-letter output receives
            result["failed"] += 1
            errors.append((ref.location, str(exc)))
            continue
        result[verdict.reason or "kept"] += 1
        if verdict.kept:
            docs.append(verdict.doc)
    return result, docs, errors


def test_real_crawl_every_record_has_an_outcome():
    # iana.warc.gz: a real 2014 crawl with requests, responses (HTML and not) and revisits
    types = collections.Counter(r.warc_type for r in scan_records(warc("iana.warc.gz")))
    result, docs, _ = outcomes(warc("iana.warc.gz"))
    assert sum(result.values()) == sum(types.values())
    assert result["warc_request"] == types["request"] and result["warc_revisit"] == types["revisit"]
    assert result["kept"] + result["not_html"] + result["http_status"] + result["no_main_text"] == types["response"]
    assert result["not_html"] > 0 and result["kept"] >= 10
    doc = next(d for d in docs if d.url == "http://www.iana.org/")
    assert doc.timestamp.startswith("2014-") and doc.metadata["warc_digest"].startswith("sha1:")
    assert "IANA manages the DNS Root Zone" in doc.text


def test_ids_come_from_warc_record_ids_and_are_stable():
    _, first, _ = outcomes(warc("pydocs.warc.gz"))
    _, second, _ = outcomes(warc("pydocs.warc.gz"))
    assert [d.id for d in first] == [d.id for d in second]
    assert len({d.id for d in first}) == len(first)


def test_charsets_header_meta_and_detection():
    result, docs, _ = outcomes(warc("pydocs.warc.gz"))
    by_url = {d.url: d for d in docs}
    cp1252 = by_url["https://docs.python.org/3.11/cp1252/appetite.html"]
    latin1 = by_url["https://docs.python.org/3.11/latin1/whatnow.html"]
    assert cp1252.metadata["charset"] == "cp1252" and latin1.metadata["charset"] == "iso8859-1"
    # the curly apostrophe exists in cp1252 and must come back as U+2019, not mojibake
    assert "’" in cp1252.text and "â€" not in cp1252.text
    assert "Python" in latin1.text
    body = "<p>Grüße aus Köln, schöne Straße</p>".encode("cp1252")
    assert detect_charset(body, None)[1] == "detected"
    assert decode_html(body, None)[0] == "<p>Grüße aus Köln, schöne Straße</p>"
    assert decode_html(b"<p>x</p>", "text/html; charset=no-such-charset")[1] == "utf-8"


def test_non_html_empty_and_error_pages_are_dropped_with_reasons():
    result, _, _ = outcomes(warc("pydocs.warc.gz"))
    assert result["not_html"] == 1  # the PNG image
    assert result["no_main_text"] == 1  # the empty page
    assert result["http_status"] == 1  # the 404
    assert result["warc_revisit"] == 1 and result["warc_warcinfo"] == 1


def test_edge_case_files_from_pywb_and_warcat():
    # ARC files, a response without status text, chunked content, non-UTF-8 header bytes
    for name in (
        "example.arc.gz",
        "bad.arc",
        "missing-status-text.warc",
        "bad_http_chunked_content.warc",
        "not_utf8_http_header.warc",
        "long_url.warc",
        "at.warc.gz",
        "dupes.warc.gz",
    ):
        result, _, errors = outcomes(warc(name))
        assert sum(result.values()) > 0, name
    result, docs, _ = outcomes(warc("example.arc.gz"))
    assert result["kept"] == 1 and "This domain is established to be used for illustrative examples" in docs[0].text


def test_non_chunked_gzip_is_one_dead_letter_with_the_fix():
    refs = list(scan_records(warc("example-bad.warc.gz.bad")))
    assert len(refs) == 1 and refs[0].error
    assert "warcio recompress" in refs[0].error and refs[0].offset == 0


def test_broken_http_header_fails_only_that_record(tmp_path):
    dst = str(tmp_path / "broken.warc.gz")
    offset = with_broken_http_record(warc("pydocs.warc.gz"), dst)
    good, good_docs, _ = outcomes(warc("pydocs.warc.gz"))
    result, docs, errors = outcomes(dst)
    assert result["failed"] == 1 and errors[0][0] == f"{dst}@{offset}"
    assert result["kept"] == good["kept"]


def test_truncated_gzip_keeps_everything_before_the_cut(tmp_path):
    dst = str(tmp_path / "truncated.warc.gz")
    truncated(warc("pydocs.warc.gz"), dst)
    result, docs, errors = outcomes(dst)
    assert result["failed"] == 1 and "unreadable WARC region" in errors[0][1]
    _, all_docs, _ = outcomes(warc("pydocs.warc.gz"))
    assert 10 <= len(docs) < len(all_docs)
    assert [d.text for d in docs] == [d.text for d in all_docs[: len(docs)]]


def test_corrupt_member_in_the_middle_resyncs_and_reads_the_rest(tmp_path):
    dst = str(tmp_path / "corrupt.warc.gz")
    bad_offset = with_corrupt_member(warc("pydocs.warc.gz"), dst)
    result, docs, errors = outcomes(dst)
    _, all_docs, _ = outcomes(warc("pydocs.warc.gz"))
    assert result["failed"] == 1 and errors[0][0] == f"{dst}@{bad_offset}"
    # only the damaged record is lost: every page after it is still read
    assert len(docs) == len(all_docs) - 1
    assert docs[-1].url == all_docs[-1].url


def test_a_50_mb_page_is_dropped_without_reading_it_into_memory(tmp_path):
    path = str(tmp_path / "huge.warc.gz")
    body = b"<html><body>" + b"<p>" + b"a" * (50 << 20) + b"</p></body></html>"
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(
            writer.create_warc_record("http://huge.example/", "response", payload=io.BytesIO(body), http_headers=http)
        )
    del body
    result, _, _ = outcomes(path)
    assert result == {"too_large": 1}


def test_wet_conversion_records(tmp_path):
    path = str(tmp_path / "sample.warc.wet.gz")
    text = "Ein echter Absatz über Sprache.\nA second line."
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        writer.write_record(
            writer.create_warc_record(
                "http://wet.example/",
                "conversion",
                payload=io.BytesIO(text.encode()),
                warc_headers_dict={"Content-Type": "text/plain"},
            )
        )
    result, docs, _ = outcomes(path)
    assert result == {"kept": 1} and docs[0].text == text


def test_broken_warc_header_is_one_dead_letter_and_the_next_record_is_read(tmp_path):
    # a well-formed gzip member whose content is not a WARC record, between two real records
    data = open(warc("pydocs.warc.gz"), "rb").read()
    refs = list(scan_records(warc("pydocs.warc.gz")))
    cut = refs[3].offset
    garbage = gzip.compress(b"WARC/9.9 what is this\r\nno-colon-here\r\n\r\nnot a record\r\n\r\n", mtime=0)
    dst = tmp_path / "bad-header.warc.gz"
    dst.write_bytes(data[:cut] + garbage + data[cut:])
    new_refs = list(scan_records(str(dst)))
    bad = [r for r in new_refs if r.error]
    assert len(bad) == 1 and bad[0].offset == cut and bad[0].length == len(garbage)
    assert len(new_refs) == len(refs) + 1
    assert [r.uri for r in new_refs if not r.error] == [r.uri for r in refs]
