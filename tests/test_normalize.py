from corpusmill.core.document import Document
from corpusmill.dedup.lines import RemoveDuplicateLines, remove_lines, repeated_occurrences
from corpusmill.filters.normalize import (
    Normalize,
    line_hash,
    normalize_for_dedup,
    normalize_for_dedup_ccnet,
    normalize_text,
)


def test_normalize_text_nfc_whitespace_and_control_characters():
    decomposed = "Cafe\u0301  au\tlait\u200b\r\n\r\n   \x07second   line  \n\n"
    assert normalize_text(decomposed) == "Café au lait\nsecond line"


def test_normalize_step_drops_empty_documents():
    verdict = Normalize()(Document("a", " \n\t\u200b\n"))
    assert verdict.reason == "empty"
    assert Normalize()(Document("b", "ok")).kept


def test_ccnet_dedup_normalization_is_cc_nets():
    # cc_net folds case and digits and removes only its Unicode punctuation and control characters
    assert normalize_for_dedup_ccnet("  Copyright © 2023, Example Inc. ") == "copyright © 0000, example inc."
    assert normalize_for_dedup_ccnet("«Page 3 of 7» —\x07") == "page 0 of 0 "
    assert line_hash("Page 3 of 7!") == line_hash("page 4 of 9!")
    assert line_hash("Page 3 of 7!") != line_hash("page 4 of 9")  # ASCII punctuation counts
    # a line whose normalized form is empty is hashed like any other (cc_net hashes "")
    assert line_hash("«") == line_hash("—")
    assert line_hash("«") != line_hash("}")


def test_wide_dedup_normalization_folds_punctuation_and_the_space_left():
    assert normalize_for_dedup("  Copyright © 2023, Example Inc. ") == "copyright © 0000 example inc"
    assert normalize_for_dedup("- x - -") == normalize_for_dedup("- x - - - -") == "x"
    assert normalize_for_dedup("…!!!") == ""
    assert line_hash("Page 3 of 7!", "wide") == line_hash("page 4 of 9", "wide")


def test_repeated_occurrences_is_streamed_and_needs_two_distinct_documents():
    assert list(repeated_occurrences(iter([("a", 1)]), lambda v: v[0])) == []
    assert list(repeated_occurrences(iter([("a", 1), ("a", 1)]), lambda v: v[0])) == []
    assert list(repeated_occurrences(iter([("a", 1), ("b", 1), ("c", 1)]), lambda v: v[0])) == [
        ("a", 1),
        ("b", 1),
        ("c", 1),
    ]

    def endless():  # a line in a million documents: values are consumed one by one, never held
        yield "first"
        for i in range(1_000_000):
            yield f"doc-{i}"

    out = repeated_occurrences(endless())
    assert next(out) == "first" and next(out) == "doc-0"


def test_remove_lines_keeps_the_first_copy_inside_a_document():
    text = "nav\nbody one\nrepeat\nbody two\nrepeat\nnav"
    assert remove_lines(text, frozenset()) == "nav\nbody one\nrepeat\nbody two"
    assert remove_lines(text, frozenset({line_hash("nav")})) == "body one\nrepeat\nbody two"


def test_remove_lines_and_too_short():
    doc = Document("a", "nav\n" + "x" * 40 + "\nfooter")
    gone = frozenset({line_hash("nav"), line_hash("footer")})
    assert remove_lines(doc.text, gone) == "x" * 40
    step = RemoveDuplicateLines(min_length=30)
    kept = step((doc, gone))
    assert kept.kept and kept.doc.text == "x" * 40
    assert kept.doc.metadata["original_nlines"] == 3 and kept.doc.metadata["nlines"] == 1
    assert RemoveDuplicateLines(min_length=50)((doc, gone)).reason == "too_short"
    everything = frozenset({line_hash(x) for x in doc.text.split("\n")})
    assert RemoveDuplicateLines(min_length=0)((doc, everything)).reason == "too_short"  # nothing left
