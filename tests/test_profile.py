"""profile.json and _provenance.json: exact counts and distributions from the pipeline, and how a run was made.

Checked against what the output files and dropped records themselves say, on real multilingual text
(the UDHR in 72 languages) and real crawls, so the report never needs to read documents.
"""

from __future__ import annotations

import collections
import gzip
import json
import os

import pytest
from helpers import DATA, warc

from corpusmill.core.document import Document
from corpusmill.core.files import read_output, read_provenance
from corpusmill.core.profile import BINS, bin_of, edges, profile_rows
from corpusmill.core.stats import check_accounting
from corpusmill.filters.lid import default_lid_model
from corpusmill.pipelines.ccnet import CCNetConfig, run_ccnet


@pytest.fixture(scope="module")
def udhr_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("udhr")
    path = root / "udhr.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for line in open(os.path.join(DATA, "udhr.jsonl"), encoding="utf-8"):
            row = json.loads(line)
            source = "udhr-latin" if row["gflanguages_id"].endswith("_Latn") else "udhr-other"
            fh.write(
                Document(f"udhr-{row['lang']}", row["text"], source, location=row["gflanguages_id"]).to_json() + "\n"
            )
    out = root / "out"
    # every dropped document written, so the profile can be checked against each of them
    stats = run_ccnet(
        CCNetConfig(input=[str(path)], output=str(out), min_length=0, languages=["en", "fr", "de"], write_dropped=True)
    )
    return out, stats, json.loads((out / "_meta/profile.json").read_text())


def dropped_records(out):
    records = []
    for dirpath, _dirs, files in os.walk(out / "_dropped"):
        for name in files:
            with gzip.open(os.path.join(dirpath, name), "rt", encoding="utf-8") as fh:
                records += [json.loads(line) for line in fh if line.strip()]
    return records


def test_the_written_counts_are_exact_per_group_language_and_source(udhr_run):
    out, _stats, profile = udhr_run
    docs = {g: read_output(out / g) for g in profile["output"]["groups"]}
    assert set(profile["output"]["groups"]) == {p.name for p in out.iterdir() if p.is_dir() and p.name[0] != "_"}
    assert {g: len(d) for g, d in docs.items()} == profile["output"]["groups"]
    every = [d for ds in docs.values() for d in ds]
    assert profile["output"]["languages"] == dict(collections.Counter(d.metadata["language"] for d in every))
    assert profile["output"]["sources"] == dict(sorted(collections.Counter(d.source for d in every).items()))
    assert profile["output"]["characters"] == {g: sum(len(d.text) for d in ds) for g, ds in docs.items()}
    # the histograms hold every written document, in the bin its score falls in
    hist = profile["output"]["histograms"]["language_score"]
    expected = collections.defaultdict(lambda: [0] * BINS["language_score"][2])
    for d in every:
        expected[d.metadata["language"]][bin_of("language_score", d.metadata["language_score"])] += 1
    assert hist == dict(expected)


def test_every_drop_is_broken_down_by_language_and_source(udhr_run):
    out, stats, profile = udhr_run
    assert check_accounting(stats) == []
    by_step = {s["step"]: s for s in stats}
    records = dropped_records(out)
    for step, entry in profile["steps"].items():
        for reason, per in entry["dropped"].items():
            mine = [r for r in records if r["step"] == step and r["reason"] == reason]
            assert sum(per["languages"].values()) == sum(per["sources"].values()) == by_step[step]["dropped"][reason]
            langs = collections.Counter((r["document"] or {}).get("metadata", {}).get("language") or "-" for r in mine)
            assert per["languages"] == dict(sorted(langs.items()))
    lid = profile["steps"]["lid"]
    assert lid["thresholds"] == {"language_score": 0.5}
    gone = lid["dropped"]["language_not_kept"]["languages"]
    assert len(gone) > 30 and "en" not in gone and "ru" in gone  # the languages the run did not keep, by name
    assert set(lid["dropped"]["language_not_kept"]["sources"]) == {"udhr-latin", "udhr-other"}
    # kept and dropped language scores, on the fixed bins of [0, 1]
    hist = lid["histograms"]["language_score"]
    assert sum(map(sum, hist["kept"].values())) == by_step["lid"]["kept"]
    assert sum(map(sum, hist["dropped"].values())) == sum(by_step["lid"]["dropped"].values())
    assert profile["bins"]["language_score"] == edges("language_score")
    assert profile["bins"]["language_score"][0] == 0.0 and profile["bins"]["language_score"][-1] == 1.0


def test_profiles_add_up_when_read_back(udhr_run):
    _out, _stats, profile = udhr_run
    from corpusmill.core.profile import build_profile

    rows = collections.defaultdict(lambda: [0, 0, 0])
    for key, (n, a, b) in profile_rows(profile, with_output=True):
        acc = rows[key]
        acc[0] += n
        acc[1] += a
        acc[2] += b
    again = build_profile(
        [(k, tuple(v)) for k, v in rows.items()],
        list(profile["steps"]),
        {s: e["thresholds"] for s, e in profile["steps"].items()},
    )
    assert again == profile


def test_provenance_records_the_config_the_models_and_the_time_per_step(udhr_run):
    out, stats, _profile = udhr_run
    prov = read_provenance(str(out))
    from corpusmill import __version__

    assert prov["corpusmill"] == __version__ and prov["stage"] == "ccnet"
    assert prov["config"]["languages"] == ["en", "fr", "de"] and prov["config"]["lang_threshold"] == 0.5
    assert prov["config"]["dedup_group_size"] == 50  # defaults too: the effective configuration
    assert [s["step"] for s in prov["steps"]] == [s["step"] for s in stats]
    lid = next(s for s in prov["steps"] if s["step"] == "lid")
    assert lid["filter"] == "corpusmill.filters.lid.LanguageId" and lid["thresholds"] == {"language_score": 0.5}
    (model,) = lid["models"]
    import hashlib

    assert model["path"] == os.path.abspath(default_lid_model())
    assert model["sha256"] == hashlib.sha256(open(default_lid_model(), "rb").read()).hexdigest()
    assert lid["seconds"] > 0 and prov["wall_seconds"] > 0 and prov["started"] <= prov["finished"]
    # not part of the output's bytes: _SUCCESS does not list it
    assert "_provenance.json" not in (out / "_SUCCESS").read_text()


def test_a_sharded_ccnet_run_adds_its_units_into_one_profile_and_provenance(tmp_path):
    inputs = [warc("pydocs.warc.gz"), warc("iana.warc.gz")]
    out = tmp_path / "o"
    stats = run_ccnet(CCNetConfig(input=inputs, output=str(out), num_shards=2, dedup_group_size=1))
    profile = json.loads((out / "_meta/profile.json").read_text())
    by_step = {s["step"]: s for s in stats}
    for step, entry in profile["steps"].items():
        for reason, per in entry["dropped"].items():
            assert sum(per["languages"].values()) == by_step[step]["dropped"][reason], (step, reason)
    assert sum(profile["output"]["groups"].values()) == by_step["content_dedup"]["kept"]
    prov = read_provenance(str(out))
    assert [u["unit"] for u in prov["units"]] == ["unit-00000", "unit-00001"]
    extract = next(s for s in prov["steps"] if s["step"] == "extract")
    assert extract["filter"] == "corpusmill.io.warc.ExtractWarcRecord" and extract["seconds"] > 0
