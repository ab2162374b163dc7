import pickle

import pytest

from corpusmill.core.document import Document, make_id


def test_ids_are_stable_and_depend_on_source_and_location():
    a = make_id("cc", "crawl.warc.gz@1234")
    assert a == make_id("cc", "crawl.warc.gz@1234")
    assert a != make_id("cc", "crawl.warc.gz@1235")
    assert a != make_id("c4", "crawl.warc.gz@1234")
    assert a.startswith("cc-")


def test_json_round_trip_and_pickle():
    doc = Document(
        make_id("cc", "x@1"),
        "Grüße\nzweite Zeile",
        "cc",
        "http://example.org/",
        "2024-01-01T00:00:00Z",
        "x@1",
        {"language": "de", "language_score": 0.98},
    )
    line = doc.to_json()
    assert "\n" not in line
    assert Document.from_json(line) == doc
    assert pickle.loads(pickle.dumps(doc)) == doc
    # one JSON form: equal documents give equal bytes
    assert Document.from_json(line).to_json() == line


def test_annotate_does_not_change_the_original():
    doc = Document("a", "text", metadata={"x": 1})
    new = doc.annotate(language="en")
    assert doc.metadata == {"x": 1}
    assert new.metadata == {"x": 1, "language": "en"}


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"text": "no id"}', "missing field(s) id"),
        ('{"id": "a", "text": 3}', "'text' must be a string"),
        ('not json', "not valid JSON"),
        ('[1, 2]', "expected a JSON object"),
    ],
)
def test_bad_records_name_the_record(line, message):
    with pytest.raises(ValueError) as err:
        Document.from_json(line, where="docs.jsonl:7")
    assert "docs.jsonl:7" in str(err.value) and message in str(err.value)
