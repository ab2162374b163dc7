"""Every stage builds a Dataflow job without a cloud account (``--dry_run=True``, the gcp extra).

Inputs and models live on a remote file system (``cmtest://``, a Beam file system plugin standing for
``gs://``; tests/remote_fs.py). For each stage the job graph is built and checked: the workers get
corpusmill (``--setup_file``), the pickled steps name the remote paths they read, and no step holds a
path of the launching machine (the test data, its temporary folders, the local model cache).
"""

from __future__ import annotations

import base64
import bz2
import os
import re
import shutil
import zlib

import pytest
from helpers import DATA, warc

pytest.importorskip("apache_beam.io.gcp.gcsfilesystem")
pytest.importorskip("google.cloud.storage")

from apache_beam.options.pipeline_options import SetupOptions  # noqa: E402
from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner  # noqa: E402

from corpusmill.pipelines.registry import load_stage  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATAFLOW = [
    "--runner=DataflowRunner",
    "--dry_run=True",
    "--project=corpusmill-test",
    "--region=us-central1",
    "--temp_location=gs://corpusmill-test/tmp",
    f"--setup_file={os.path.join(ROOT, 'setup.py')}",
]


class Built(Exception):
    def __init__(self, job):
        self.job = job


@pytest.fixture
def capture(monkeypatch):
    real = DataflowRunner.run_pipeline

    def run_pipeline(self, pipeline, options, *args, **kwargs):
        result = real(self, pipeline, options, *args, **kwargs)
        raise Built(result.job)  # the job is built; stop the stage here (nothing ran)

    monkeypatch.setattr(DataflowRunner, "run_pipeline", run_pipeline)


def build_job(stage_name, **fields):
    stage = load_stage(stage_name)
    with pytest.raises(Built) as built:
        stage.run(stage.config(**fields), list(DATAFLOW))
    return built.value.job


def pickled_strings(job) -> bytes:
    """The job's pipeline with every pickled payload (base64 of bz2 or zlib) opened, as one byte string."""
    raw = job.proto_pipeline.SerializeToString()
    opened = [raw]
    for blob in re.findall(rb"[A-Za-z0-9+/]{40,}={0,2}", raw):
        for unpack in (bz2.decompress, zlib.decompress):
            try:
                opened.append(unpack(base64.b64decode(blob)))
                break
            except Exception:  # noqa: BLE001 - not a pickled payload
                continue
    return b"\n".join(opened)


def check(job, remote_paths, local_roots):
    assert job.options.view_as(SetupOptions).setup_file.endswith("setup.py")
    payload = pickled_strings(job)
    for path in remote_paths:
        assert path.encode() in payload, path
    for root in local_roots:
        at = payload.find(root.encode())
        assert at < 0, (root, payload[max(0, at - 300) : at + 200].decode("latin-1"))


@pytest.fixture
def remote(remote_root):
    def put(src, name):
        dst = remote_root / name
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, dst)
        return f"cmtest://{name}"

    return put


def test_ccnet_job(capture, remote, tmp_path, monkeypatch):
    from corpusmill.pipelines.quality import train_demo_models

    models = train_demo_models(
        os.path.join(DATA, "quality", "wiki_en.jsonl.gz"),
        [os.path.join(DATA, "quality", "lowq_en.jsonl.gz")],
        str(tmp_path / "models"),
        vocab_size=1000,
        log=lambda *_: None,
    )
    lm = remote(models["lm_dir"], "lm")
    clf = remote(models["classifier"], "wiki.bin")
    crawl = remote(warc("pydocs.warc.gz"), "pydocs.warc.gz")
    job = build_job(
        "ccnet", input=[crawl], output="cmtest://out/cc", lm_dir=lm, classifier=[f"en={clf}"], languages=["en"]
    )
    check(job, [crawl, lm, clf], [DATA, str(tmp_path), "corpusmill-models"])


def test_ccnet_one_job_builds_every_unit_of_two_dumps_and_the_final_pass(capture, remote_root):
    """``--one-job``: a run of 2 dumps cut into 16 shards, units of 2 shards (4 per dump), is ONE Dataflow job
    with every unit's passes and the final pass, its keyed steps on key files in the bucket."""
    import io

    from warcio.warcwriter import WARCWriter

    names = []
    for dump in ("CC-MAIN-2019-09", "CC-MAIN-2019-13"):
        folder = remote_root / "crawl-data" / dump / "segments" / "1" / "wet"
        folder.mkdir(parents=True)
        for i in range(8):
            with open(folder / f"part-{i:02d}.warc.wet.gz", "wb") as fh:
                writer = WARCWriter(fh, gzip=True)
                writer.write_record(
                    writer.create_warc_record(
                        f"https://example.org/{dump}/{i}",
                        "conversion",
                        payload=io.BytesIO(b"A page of text.\n"),
                        warc_headers_dict={"Content-Type": "text/plain"},
                    )
                )
            names.append(f"cmtest://crawl-data/{dump}/segments/1/wet/part-{i:02d}.warc.wet.gz")
    job = build_job(
        "ccnet",
        input=["cmtest://crawl-data/*/segments/1/wet/*.wet.gz"],
        output="cmtest://out/cc",
        num_shards=16,
        dedup_group_size=2,
        one_job=True,
        fuzzy_dedup=True,
    )
    transforms = {t.unique_name for t in job.proto_pipeline.components.transforms.values()}
    streams = sorted(n for n in transforms if n.endswith("Stream") and "/" not in n)
    assert streams == sorted([f"Unit{u}Pass{k}Stream" for u in range(8) for k in (1, 2)] + ["FinalPass1Stream"])
    assert {"FinalPass1Docs", "Unit0Pass2Lines", "Unit7Pass2Lines"} <= transforms
    check(job, names[:1] + names[-1:] + ["cmtest://out/cc/_shards/unit-00007/pass-2"], [DATA])


SOURCE_JOBS = [
    ("c4", os.path.join(DATA, "c4", "recrawl.warc.gz"), "", {"mode": "crawl"}),
    ("wikipedia", os.path.join(DATA, "wikipedia", "enwiki-sample-multistream.xml.bz2"), "", {}),
    ("books", os.path.join(DATA, "books", "milton"), "/*.txt.gz", {}),
    ("arxiv", os.path.join(DATA, "arxiv", "papers"), "/*.tex.gz", {}),
    ("stackexchange", os.path.join(DATA, "stackexchange", "general.python-faq.example"), "/Posts.xml", {}),
]


def test_every_registered_source_builds_a_dataflow_job_here():
    """The registry is the one list: a new processor needs its row above (ccnet has its own tests; GitHub
    reads BigQuery or local repository trees, which a Dataflow job does not take)."""
    from corpusmill.pipelines.registry import PROCESSORS

    assert set(PROCESSORS) - {"ccnet", "github"} == {row[0] for row in SOURCE_JOBS}


@pytest.mark.parametrize("name, source, glob, fields", SOURCE_JOBS)
def test_source_jobs(capture, remote, tmp_path, name, source, glob, fields):
    path = remote(source, os.path.basename(source))
    job = build_job(name, input=[path + glob], output=f"cmtest://out/{name}", **fields)
    check(job, [path], [DATA, str(tmp_path)])


def test_a_dataflow_job_without_worker_packaging_is_refused(tmp_path, capsys):
    from corpusmill.cli import main as cli_main

    argv = [
        "ccnet",
        "--input",
        warc("pydocs.warc.gz"),
        "--output",
        str(tmp_path / "o"),
        *[a for a in DATAFLOW if not a.startswith("--setup_file")],
    ]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "--setup_file" in err and "--sdk_container_image" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_cutoffs_job(capture, remote, tmp_path):
    from corpusmill.pipelines.quality import train_demo_models

    models = train_demo_models(
        os.path.join(DATA, "quality", "wiki_en.jsonl.gz"),
        [os.path.join(DATA, "quality", "lowq_en.jsonl.gz")],
        str(tmp_path / "models"),
        vocab_size=1000,
        log=lambda *_: None,
    )
    lm = remote(models["lm_dir"], "lm")
    docs = remote(os.path.join(DATA, "quality", "lowq_en.jsonl.gz"), "lowq_en.jsonl.gz")
    job = build_job("cutoffs", input=[docs], lm_dir=lm, output="cmtest://out/cutoffs.csv", lang="en")
    check(job, [docs, lm], [DATA, str(tmp_path), "corpusmill-models"])
