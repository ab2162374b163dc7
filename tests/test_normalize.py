from corpusmill.core.document import Document
from corpusmill.dedup.lines import RemoveDuplicateLines, lines_to_remove, remove_lines
from corpusmill.filters.normalize import (
    Normalize,
    line_hash,
    normalize_for_dedup,
    normalize_text,
)


def test_normalize_text_nfc_whitespace_and_control_characters():
    decomposed = "Cafe\u0301  au\tlait\u200b\r\n\r\n   \x07second   line  \n\n"
    assert normalize_text(decomposed) == "Café au lait\nsecond line"


def test_normalize_step_drops_empty_documents():
    verdict = Normalize()(Document("a", " \n\t\u200b\n"))
    assert verdict.reason == "empty"
    assert Normalize()(Document("b", "ok")).kept


def test_dedup_normalization_folds_case_digits_and_punctuation():
    assert normalize_for_dedup("  Copyright © 2023, Example Inc. ") == "copyright © 0000 example inc"
    assert line_hash("Page 3 of 7!") == line_hash("page 4 of 9")
    assert line_hash("Page 3 of 7") != line_hash("Chapter 3 of 7")
    assert line_hash("…!!!") is None  # nothing left to compare


def test_keep_modes():
    occ = [("doc-b", 3), ("doc-a", 7), ("doc-c", 0)]
    assert sorted(lines_to_remove(occ, "none")) == sorted(occ)
    assert sorted(lines_to_remove(occ, "first")) == [("doc-b", 3), ("doc-c", 0)]
    assert lines_to_remove([("doc-a", 1)], "none") == []


def test_remove_lines_and_too_short():
    doc = Document("a", "nav\n" + "x" * 40 + "\nfooter")
    assert remove_lines(doc.text, {0, 2}) == "x" * 40
    step = RemoveDuplicateLines(min_length=30)
    kept = step((doc, frozenset({0, 2})))
    assert kept.kept and kept.doc.text == "x" * 40
    assert kept.doc.metadata["original_nlines"] == 3 and kept.doc.metadata["nlines"] == 1
    assert RemoveDuplicateLines(min_length=50)((doc, frozenset({0, 2}))).reason == "too_short"
