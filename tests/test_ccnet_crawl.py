"""The CCNet stage on a Common Crawl layout: snapshots over HTTP with faults, cc_net's dedup rule and
scope, one copy of a page across dumps, shards that resume after a kill."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest
from crawl_server import CrawlServer, make_snapshot, real_pages
from helpers import ANY_FAILURES, tree_digest

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import read_failed, read_output
from corpusmill.engine.step import check_accounting
from corpusmill.filters.normalize import normalize_text
from corpusmill.pipelines import ccnet_units
from corpusmill.pipelines.ccnet import CCNetConfig, run_ccnet

DUMPS = ("CC-MAIN-2019-09", "CC-MAIN-2019-13")


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    """Two snapshots of the same 30-odd real pages; the second differs only in a version string."""
    root = str(tmp_path_factory.mktemp("commoncrawl"))
    pages = real_pages()
    make_snapshot(root, DUMPS[0], pages, "2019-02-20T10:00:00Z")
    make_snapshot(root, DUMPS[1], pages, "2019-03-25T10:00:00Z", edit=lambda t: t.replace("3.11", "3.12"))
    return root, pages


def run(out, **kw):
    kw.setdefault("docs_per_shard", 5)
    kw.setdefault("min_length", 100)
    return {s["step"]: s for s in run_ccnet(CCNetConfig(output=str(out), **kw))}


def wet_glob(root, dump):
    return os.path.join(root, "crawl-data", dump, "segments", "*", "wet", "*.warc.wet.gz")


def test_a_snapshot_over_http_survives_503s_and_cut_downloads(crawl, tmp_path, monkeypatch):
    root, _ = crawl
    monkeypatch.setattr("corpusmill.io.http.BACKOFF_S", 0.01)
    with CrawlServer(root) as server:
        clean = run(tmp_path / "clean", dump=[DUMPS[0]], base_url=server.url)
        assert clean["extract"]["failed"] == 0 and clean["extract"]["kept"] > 25
        listing = f"/crawl-data/{DUMPS[0]}/wet.paths.gz"
        files = sorted({p for (_m, p) in server.requests if p.endswith(".warc.wet.gz")})
        assert len(files) == 3
        server.fail_once.update({listing: 503, files[0]: 503, files[1]: 500})
        server.cut_once.update({files[1], files[2]})
        faulty = run(tmp_path / "faulty", dump=[DUMPS[0]], base_url=server.url)
        assert not server.fail_once and not server.cut_once  # every fault was hit
    assert faulty == clean
    assert tree_digest(tmp_path / "faulty") == tree_digest(tmp_path / "clean")


def test_a_missing_file_is_one_dead_letter_naming_its_url(crawl, tmp_path):
    root, _ = crawl
    listing = tmp_path / "some.paths"
    listed = [f"crawl-data/{DUMPS[0]}/missing.warc.wet.gz"] + [
        os.path.relpath(os.path.join(dp, f), root)
        for dp, _, fs in os.walk(os.path.join(root, "crawl-data", DUMPS[0]))
        for f in fs
        if f.endswith(".warc.wet.gz")
    ]
    listing.write_text("\n".join(sorted(listed)) + "\n")
    with CrawlServer(root) as server:
        stats = run(tmp_path / "out", input_list=[str(listing)], base_url=server.url, **ANY_FAILURES)
    assert stats["extract"]["failed"] == 1 and check_accounting(list(stats.values())) == []
    (failure,) = read_failed(str(tmp_path / "out"))
    assert failure["location"] == f"{server.url}crawl-data/{DUMPS[0]}/missing.warc.wet.gz@0"
    assert "404" in failure["error"]
    assert stats["extract"]["kept"] > 25  # the three real files were read


def test_a_listing_or_dump_that_cannot_be_used_is_refused_before_any_work(crawl, tmp_path):
    root, _ = crawl
    with pytest.raises(CorpusmillError, match="CC-MAIN-2019-09"):
        run(tmp_path / "o", dump=["2019-09"])
    with pytest.raises(CorpusmillError, match="--input-list"):
        run(tmp_path / "o", input=[os.path.join(root, "crawl-data", DUMPS[0], "wet.paths.gz")])
    with pytest.raises(CorpusmillError, match="more shards than input files"):
        run(tmp_path / "o", dump=[DUMPS[0]], base_url=root + "/", num_shards=4)
    with pytest.raises(CorpusmillError, match="needs input"):
        run(tmp_path / "o")
    relative = tmp_path / "relative.paths"  # no --base-url: never resolved against Common Crawl silently
    relative.write_text(f"crawl-data/{DUMPS[0]}/x.warc.wet.gz\n")
    with pytest.raises(CorpusmillError, match="pass --base-url"):
        run(tmp_path / "o", input_list=[str(relative)])
    with CrawlServer(root) as server, pytest.raises(CorpusmillError, match=r"listing .*CC-MAIN-2020-05.*404"):
        run(tmp_path / "o", dump=["CC-MAIN-2020-05"], base_url=server.url)
    assert not (tmp_path / "o" / "_shards").exists()


# -- cc_net's line dedup: the rule, and its scope ------------------------------------------------
def ccnet_reference(texts):
    """cc_net's dedup (HashesCollector then DuplicatesRemover, collect=False) written out plainly, on
    one scope: a line hash seen in two documents is removed from all; inside a document the first copy
    of a line stays. Returns the texts that remain (None for a document left empty)."""
    import re

    punct = "，。、„”“«»１」「《》´∶：？！（）；–—．～’…━〈〉【】％►"
    control = "".join(map(chr, list(range(0, 32)) + list(range(127, 160))))
    remove = re.compile("[" + re.escape(punct + control) + "]")

    def h(line):
        line = line.strip()
        norm = remove.sub("", re.sub(r"\d", "0", line.lower())) if line else line
        return hashlib.sha1(norm.encode()).digest()[:8]

    value = {}  # cc_net's FlatHashSet: 0 when first added, 1 once seen in another document's add
    for text in texts:
        hashes = [h(line) for line in text.split("\n")]
        contains = [x in value for x in hashes]
        for x, c in zip(hashes, contains):
            value[x] = c  # vectorized add: the document's own repeats do not count
    out = []
    for text in texts:
        lines, seen, kept = text.split("\n"), set(), []
        for line in lines:
            x = h(line)
            if x not in seen and not value[x]:
                kept.append(line)
            seen.add(x)
        out.append("\n".join(kept) if kept else None)
    return out


def test_line_dedup_keeps_what_cc_nets_algorithm_keeps(crawl, tmp_path):
    root, pages = crawl
    stats = run(tmp_path / "out", input=[wet_glob(root, DUMPS[0])], min_length=1, lang_threshold=0.0, doc_dedup=False)
    by_url = {p["url"]: normalize_text(p["text"]) for p in pages}
    expected = dict(zip(by_url, ccnet_reference(list(by_url.values()))))
    got = {d.url: d.text for d in read_output(tmp_path / "out")}
    assert got == {url: text for url, text in expected.items() if text}  # document by document, exactly
    kept, total = sum(map(len, got.values())), sum(map(len, by_url.values()))
    assert 0.3 * total < kept < 0.98 * total  # lines were removed, and most text stayed
    # the same texts in a second dump with a changed version string: digits fold to 0, so across dumps
    # (--dedup-scope run) every line of the recrawl is a duplicate and both copies go
    wide = run(
        tmp_path / "wide",
        input=[wet_glob(root, d) for d in DUMPS],
        dedup_scope="run",
        min_length=1,
        lang_threshold=0.0,
        doc_dedup=False,
    )
    assert wide["line_dedup"]["kept"] < stats["line_dedup"]["kept"] // 4


def test_recrawled_pages_survive_per_snapshot_dedup_and_come_out_once(crawl, tmp_path):
    root, pages = crawl
    inputs = [wet_glob(root, d) for d in DUMPS]
    one = run(tmp_path / "one", input=[inputs[0]], num_shards=3)
    both = run(tmp_path / "both", input=inputs, num_shards=6, dedup_group_size=3)
    # per-snapshot scope: each dump keeps what it keeps alone
    assert both["line_dedup"]["kept"] == 2 * one["line_dedup"]["kept"]
    # one copy per page: the newer crawl wins, each loss counted as duplicate_url
    assert both["url_dedup"]["dropped"]["duplicate_url"] == one["url_dedup"]["kept"]
    docs = read_output(tmp_path / "both")
    assert len(docs) == len(read_output(tmp_path / "one")) and len({d.url for d in docs}) == len(docs)
    assert {d.metadata["dump"] for d in docs} == {DUMPS[1]}
    assert all("3.11" not in d.text for d in docs)
    # run-wide dedup, as before: the recrawl deletes both copies of almost every page
    wide = run(tmp_path / "wide", input=inputs, num_shards=6, dedup_scope="run")
    assert wide["line_dedup"]["kept"] < one["line_dedup"]["kept"] // 2


# -- shards and resume ---------------------------------------------------------------------------
class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def sharded(crawl, tmp_path_factory):
    root, _ = crawl
    inputs = [wet_glob(root, d) for d in DUMPS]
    out = tmp_path_factory.mktemp("sharded") / "out"
    kw = dict(input=inputs, num_shards=6, dedup_group_size=2)
    stats = run(out, **kw)
    return out, kw, stats


@pytest.mark.parametrize("where", ["second unit", "a shard marker", "final pass"])
def test_a_killed_run_resumes_only_the_unfinished_shards_and_gives_the_same_bytes(
    sharded, tmp_path, monkeypatch, where
):
    out, kw, stats = sharded
    real_pipeline, real_mark = ccnet_units._run_pipeline, ccnet_units.ShardState.mark
    calls = []

    def pipeline(cfg, beam_args, out_dir, build, extra=(), **kw):
        calls.append(os.path.basename(out_dir))
        if where == "second unit" and len(calls) == 2 or where == "final pass" and "unit" not in calls[-1]:
            real_pipeline(cfg, beam_args, out_dir, build, extra, **kw)  # the work is done, the process dies after
            raise Killed
        real_pipeline(cfg, beam_args, out_dir, build, extra, **kw)

    def mark(self, shard, unit, files, pieces=()):
        if where == "a shard marker" and shard == 3:
            raise Killed
        real_mark(self, shard, unit, files, pieces)

    monkeypatch.setattr(ccnet_units, "_run_pipeline", pipeline)
    monkeypatch.setattr(ccnet_units.ShardState, "mark", mark)
    with pytest.raises(Killed):
        run(tmp_path / "out", **kw)
    assert not (tmp_path / "out" / "_SUCCESS").exists()
    monkeypatch.setattr(
        ccnet_units, "_run_pipeline", lambda *a, **kw: (calls.append(os.path.basename(a[2])), real_pipeline(*a, **kw))
    )
    monkeypatch.setattr(ccnet_units.ShardState, "mark", real_mark)
    calls.clear()
    again = run(tmp_path / "out", **kw)
    expected_units = {
        "second unit": ["unit-00001", "unit-00002"],
        "a shard marker": ["unit-00001", "unit-00002"],
        "final pass": [],
    }[where]
    assert calls == expected_units + ["out"]
    assert again == stats
    assert tree_digest(tmp_path / "out") == tree_digest(out)


def test_a_complete_run_is_not_redone_and_another_plan_is_refused(sharded, tmp_path):
    out, kw, stats = sharded
    assert run(out, **kw) == stats
    with pytest.raises(CorpusmillError, match="other inputs or options"):
        run(out, **{**kw, "min_length": 10})


@pytest.mark.slow
def test_sigkill_then_the_same_command_finishes_byte_identically(sharded, tmp_path):
    out, kw, _ = sharded
    argv = [
        sys.executable,
        "-m",
        "corpusmill.cli.main",
        "ccnet",
        "--input",
        *kw["input"],
        "--num-shards",
        "6",
        "--dedup-group-size",
        "2",
        "--docs-per-shard",
        "5",
        "--min-length",
        "100",
        "--output",
        str(tmp_path / "o"),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = tmp_path / "o" / "_shards" / "shard-00001.json"
    deadline = time.time() + 300
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert subprocess.run(argv, capture_output=True).returncode == 0
    assert tree_digest(tmp_path / "o") == tree_digest(out)


def _argv(kw, out):
    return [
        sys.executable,
        "-m",
        "corpusmill.cli.main",
        "ccnet",
        "--input",
        *kw["input"],
        "--num-shards",
        "6",
        "--dedup-group-size",
        "2",
        "--docs-per-shard",
        "5",
        "--min-length",
        "100",
        "--output",
        str(out),
    ]


def test_two_task_ranks_at_once_then_the_finishing_command_give_the_bytes_of_one_run(sharded, tmp_path):
    """Two processes share the output (as N machines would: a SLURM array, a Kubernetes indexed Job), each
    running its units (unit % 2 == rank); the same command without a rank runs the final pass."""
    out, kw, stats = sharded
    env = dict(os.environ, CORPUSMILL_PROGRESS="0")
    ranks = [
        subprocess.Popen(
            _argv(kw, tmp_path / "o") + ["--task-count", "2", "--task-rank", str(r)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    results = [proc.communicate(timeout=600) for proc in ranks]
    assert [proc.returncode for proc in ranks] == [0, 0], results
    assert "units" not in results[0][0] and "task 0 of 2: 2 units done" in results[0][1]
    assert "task 1 of 2: 1 unit done" in results[1][1]
    assert not (tmp_path / "o" / "_SUCCESS").exists()
    assert sorted(p.name for p in (tmp_path / "o" / "_shards").glob("shard-*.json")) == [
        f"shard-{s:05d}.json" for s in range(6)
    ]
    done = subprocess.run(_argv(kw, tmp_path / "o"), env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "6 shards: 6 done, 0 pending (0 of 3 units to run)" in done.stderr
    assert tree_digest(tmp_path / "o") == tree_digest(out)


def test_parallel_units_give_the_bytes_of_one_run(sharded, tmp_path):
    out, kw, stats = sharded
    assert run(tmp_path / "o", **kw, parallel_units=2) == stats
    assert tree_digest(tmp_path / "o") == tree_digest(out)


def test_task_options_are_checked(sharded, tmp_path):
    _out, kw, _stats = sharded
    with pytest.raises(CorpusmillError, match="ranks run from 0 to --task-count - 1"):
        run(tmp_path / "o", **kw, task_count=2, task_rank=2)
    with pytest.raises(CorpusmillError, match="without --task-rank"):
        run(tmp_path / "o", **kw, task_count=2)
    with pytest.raises(CorpusmillError, match="--task-rank with --overwrite"):
        run(tmp_path / "o", **kw, task_count=2, task_rank=0, overwrite=True)


def test_the_five_dump_llama_manifest_builds_its_ccnet_config(tmp_path):
    from corpusmill.mixers.manifest import load_manifest
    from corpusmill.pipelines.recipe import processor_config

    path = os.path.join(os.path.dirname(__file__), "..", "manifests", "llama1_cc_5dumps.yaml")
    manifest = load_manifest(path)
    (spec,) = manifest.sources
    stage, cfg = processor_config(spec, str(tmp_path / "cc"), path)
    assert stage.name == "ccnet" and len(cfg.dump) == 5 and cfg.input == []
    assert cfg.num_shards == 8000 and cfg.dedup_scope == "group" and cfg.classifier == ["en=../models/wiki_en.bin"]
