"""The generic filter glue: routing, Beam Metrics per reason, dead letters, dropped samples."""

import gzip
import json
import os

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from helpers import DATA

from corpusmill.core.document import Document
from corpusmill.core.files import read_dropped, read_failed
from corpusmill.engine.options import beam_options
from corpusmill.engine.run import Run
from corpusmill.engine.step import build_stats, check_accounting
from corpusmill.filters.base import Filter, drop, keep


class ByScript(Filter):
    """Keeps Latin-script texts, drops the others by script, raises on Greek (to test dead letters)."""

    name = "by_script"

    def __call__(self, doc):
        first = next(ch for ch in doc.text if ch.isalpha())
        if "\u0370" <= first <= "\u03ff":
            raise ValueError("Greek is not handled")
        if first.isascii() or "\u00c0" <= first <= "\u024f":
            return keep(doc.annotate(script="Latn"))
        return drop("cyrillic" if "\u0400" <= first <= "\u04ff" else "other_script")


def udhr_docs():
    rows = [json.loads(l) for l in open(os.path.join(DATA, "udhr.jsonl"), encoding="utf-8")]
    return [
        Document(f"udhr-{r['lang']}", r["text"], "udhr", location=f"udhr.jsonl:{i + 1}") for i, r in enumerate(rows)
    ]


class ByScriptInBatches(ByScript):
    """The same verdicts through call_batch (whose one call fails when a Greek text is in the batch)."""

    batch_size = 5
    batches = 0

    def call_batch(self, elements):
        type(self).batches += 1
        return [self(e) for e in elements]


def run_filter(out_dir, write_dropped=False, sample=100, filt=None):
    docs = udhr_docs()
    p = beam.Pipeline(options=beam_options([]))
    run = Run(p, str(out_dir), write_dropped=write_dropped, dropped_sample=sample)
    kept = run.step(p | beam.Create(docs), "by_script", filt or ByScript())
    run.write(kept)
    run.finish()
    result = p.run()
    result.wait_until_finish()
    return docs, result


def counters(result):
    found = result.metrics().query(MetricsFilter().with_namespace("corpusmill.by_script"))["counters"]
    return {c.key.metric.name: c.committed for c in found}


def test_routing_metrics_and_stats_agree(tmp_path):
    docs, result = run_filter(tmp_path)
    expected = {"kept": 0, "failed": 0}
    for doc in docs:
        try:
            verdict = ByScript()(doc)
        except ValueError:
            expected["failed"] += 1
            continue
        key = "kept" if verdict.kept else f"dropped.{verdict.reason}"
        expected[key] = expected.get(key, 0) + 1
    assert expected["failed"] == 1 and expected["dropped.cyrillic"] >= 8
    found = counters(result)
    assert found.pop("microseconds") > 0  # the time in the filter (the provenance's seconds per step)
    assert found == expected
    stats = json.load(open(tmp_path / "_meta/stats.json"))
    assert check_accounting(stats) == []
    step = stats[0]
    assert step["read"] == len(docs) and step["kept"] == expected["kept"]
    assert step["dropped"] == {k[len("dropped.") :]: v for k, v in expected.items() if k.startswith("dropped.")}
    assert step["bytes_read"] == sum(d.nbytes for d in docs)
    failed = read_failed(str(tmp_path))
    assert failed[0]["location"] == "udhr.jsonl:" + str(1 + [d.id for d in docs].index("udhr-el"))
    assert "Greek is not handled" in failed[0]["error"] and failed[0]["doc_id"] == "udhr-el"


def test_dropped_sample_is_capped_and_deterministic(tmp_path):
    run_filter(tmp_path / "a", sample=3)
    run_filter(tmp_path / "b", sample=3)
    a = gzip.open(tmp_path / "a" / "_dropped" / "by_script" / "cyrillic.jsonl.gz").read()
    b = gzip.open(tmp_path / "b" / "_dropped" / "by_script" / "cyrillic.jsonl.gz").read()
    assert a == b and len(a.splitlines()) == 3


def test_write_dropped_keeps_every_dropped_document(tmp_path):
    docs, result = run_filter(tmp_path, write_dropped=True, sample=3)
    records = read_dropped(str(tmp_path))["by_script"]["cyrillic"]
    assert len(records) == counters(result)["dropped.cyrillic"]
    assert all(r["document"]["text"] for r in records)
    assert "cyrillic-00000.jsonl.gz" in os.listdir(tmp_path / "_dropped" / "by_script")  # sharded file names


def test_build_stats_orders_steps_and_flags_broken_accounting():
    rows = [(("b", "kept", ""), (2, 20, 18)), (("a", "dropped", "x"), (1, 5, 0)), (("a", "kept", ""), (2, 9, 9))]
    stats = build_stats(rows, ["a", "b"])
    assert [s["step"] for s in stats] == ["a", "b"]
    assert stats[0] == {
        "step": "a",
        "read": 3,
        "kept": 2,
        "dropped": {"x": 1},
        "failed": 0,
        "bytes_read": 14,
        "bytes_kept": 9,
    }
    stats[1]["read"] = 3
    assert check_accounting(stats) == ["step b: read 3 != kept 2 + dropped 0 + failed 0"]
    # a filter's extra totals become "counters"; they are not documents and do not touch the identity
    rows.append((("a", "counter", "lines_stripped"), (41, 0, 0)))
    stats = build_stats(rows, ["a", "b"])
    assert stats[0]["counters"] == {"lines_stripped": 41} and stats[0]["read"] == 3
    assert "counters" not in stats[1] and check_accounting(stats) == []


LOADS = []


class CountsLoads(Filter):
    """Records every setup() (a model load) in this process."""

    name = "counts_loads"

    def setup(self):
        import gc

        LOADS.append(1)
        gc.collect()  # a loaded model nobody holds would be freed here, and loaded again

    def __call__(self, doc):
        return keep(doc)


def test_a_filter_is_loaded_once_per_worker_process_across_threads(tmp_path):
    LOADS.clear()
    docs = udhr_docs() * 20
    docs = [Document(f"{d.id}-{i}", d.text) for i, d in enumerate(docs)]
    p = beam.Pipeline(options=beam_options(["--direct_running_mode=multi_threading", "--direct_num_workers=4"]))
    run = Run(p, str(tmp_path))
    kept = run.step(p | beam.Create(docs, reshuffle=True) | beam.Reshuffle(), "counts_loads", CountsLoads())
    run.write(kept)
    run.finish()
    p.run().wait_until_finish()
    assert json.load(open(tmp_path / "_meta/stats.json"))[0]["kept"] == len(docs)
    assert len(LOADS) == 1


def test_documents_that_share_an_id_never_get_each_others_marks():
    """Two inputs with the same id (issue 13): the span marks of one must not reach the other."""
    from corpusmill.engine.line_dedup import MarkDuplicates, by_value

    def occurrences(doc):  # index marks, as C4's sentence spans: line i of a document
        for i, line in enumerate(doc.text.split("\n")):
            yield line, (doc.id, i)

    docs = [
        Document("dup", "shared\nonly in a", location="a.jsonl:1"),
        Document("dup", "only in b\nmine too", location="b.jsonl:1"),
        Document("c", "x\nshared", location="c.jsonl:1"),
    ]
    with beam.Pipeline(options=beam_options([])) as p:
        marked = (
            p
            | beam.Create(docs)
            | MarkDuplicates(occurrences, keep=by_value)
            | beam.Map(lambda item: (item[0].location, sorted(item[1])))
        )
        from apache_beam.testing.util import assert_that, equal_to

        # "shared" is line 0 of a (marked) and line 1 of c (kept: id "c" is the smallest); b, which shares
        # a's id, gets nothing (keyed by id alone it got a's mark 0 and lost its own unique line)
        assert_that(marked, equal_to([("a.jsonl:1", [0]), ("b.jsonl:1", []), ("c.jsonl:1", [])]))


def test_a_batch_filter_gives_the_same_outputs_and_accounting(tmp_path):
    """Filter.batch_size: the glue hands up to that many elements to call_batch; a batch that raises is
    redone one element at a time, so only the bad element is a dead letter (issue 14)."""
    from helpers import tree_digest

    run_filter(tmp_path / "one")
    ByScriptInBatches.batches = 0
    run_filter(tmp_path / "batches", filt=ByScriptInBatches())
    assert ByScriptInBatches.batches >= len(udhr_docs()) // 5
    assert tree_digest(str(tmp_path / "one")) == tree_digest(str(tmp_path / "batches"))
    assert (
        [f["location"] for f in read_failed(str(tmp_path / "batches"))]
        == [f["location"] for f in read_failed(str(tmp_path / "one"))]
        != []
    )


def test_run_filters_applies_a_chain_outside_beam_as_the_steps_would(tmp_path):
    from corpusmill.filters.base import run_filters
    from corpusmill.filters.lid import LanguageId
    from corpusmill.filters.normalize import Normalize

    lid = LanguageId(languages=["en"])
    lid.setup()
    chain = [Normalize(), lid]
    verdicts = {d.id: run_filters(chain, d) for d in udhr_docs()}
    kept = sorted(i for i, v in verdicts.items() if v.kept)
    assert kept == ["udhr-en"]  # English only: every other language is the lid step's drop
    assert verdicts["udhr-en"].doc.metadata["language"] == "en"  # the annotations of the whole chain
    assert {v.reason for i, v in verdicts.items() if i != "udhr-en"} <= {"language_not_kept", "low_lang_score"}
    # the same chain as Beam steps keeps the same documents
    out = str(tmp_path / "o")
    with beam.Pipeline(options=beam_options([])) as p:
        run = Run(p, out)
        docs = p | beam.Create(udhr_docs())
        for f in chain:
            docs = run.step(docs, f.name, f)
        run.write(docs)
        run.finish()
    assert build_stats_from(out)["lid"]["kept"] == len(kept)


def build_stats_from(out):
    with open(os.path.join(out, "_meta/stats.json"), encoding="utf-8") as fh:
        return {row["step"]: row for row in json.load(fh)}


def test_a_filter_naming_a_score_without_bins_is_refused_when_the_pipeline_is_built(tmp_path):
    """A score the profile has no bins for would fail on the first document; it fails at once, naming it."""
    import pytest

    from corpusmill.core.errors import CorpusmillError

    class DigitShare(ByScript):
        name = "digit_share"
        scores = ("digit_share",)

    with pytest.raises(
        CorpusmillError,
        match=r"'digit_share' \(.*DigitShare\) names score\(s\) \['digit_share'\] "
        r"with no bins; expected one of \[.*'language_score'",
    ):
        run_filter(tmp_path, filt=DigitShare())
