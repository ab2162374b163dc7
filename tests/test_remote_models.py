"""Models on a remote file system (gs:// in production) are copied to local disk where they are used."""

import os
import shutil

import pytest
from helpers import warc

from corpusmill.core.files import read_output
from corpusmill.filters.lid import default_lid_model
from corpusmill.pipelines.ccnet import CCNetConfig, run_ccnet


def test_localize_copies_files_and_directories_once(remote_root, tmp_path):
    from corpusmill.io.files import localize

    (remote_root / "models" / "lm" / "en").mkdir(parents=True)
    (remote_root / "models" / "lm" / "en" / "a.bin").write_bytes(b"x" * 100)
    (remote_root / "models" / "lm" / "cutoffs.csv").write_text("lang,p0\n")
    assert localize("/already/local") == "/already/local"
    local_dir = localize("cmtest://models/lm")
    assert open(os.path.join(local_dir, "en", "a.bin"), "rb").read() == b"x" * 100
    assert os.path.basename(local_dir) == "lm" and str(tmp_path / "cache") in local_dir
    local_file = localize("cmtest://models/lm/cutoffs.csv")
    assert open(local_file).read() == "lang,p0\n"
    (remote_root / "models" / "lm" / "cutoffs.csv").write_text("changed")
    assert open(localize("cmtest://models/lm/cutoffs.csv")).read() == "lang,p0\n"  # cached once
    with pytest.raises(Exception, match="matches no file"):
        localize("cmtest://models/none")


def test_stage_reads_the_lid_model_from_a_remote_path(remote_root, tmp_path):
    shutil.copy(default_lid_model(), remote_root / "lid.176.ftz")
    out = tmp_path / "out"
    stats = run_ccnet(CCNetConfig(input=[warc("pydocs.warc.gz")], output=str(out), lid_model="cmtest://lid.176.ftz"))
    lid = next(s for s in stats if s["step"] == "lid")
    assert lid["failed"] == 0 and lid["kept"] > 20
    assert {d.metadata["language"] for d in read_output(out)} == {"en"}
    assert os.path.exists(tmp_path / "cache")


def test_stage_reads_quality_models_from_a_remote_directory(remote_root, tmp_path):
    from helpers import DATA

    from corpusmill.pipelines.quality import train_demo_models

    models = train_demo_models(
        os.path.join(DATA, "quality", "wiki_en.jsonl.gz"),
        [os.path.join(DATA, "quality", "lowq_en.jsonl.gz")],
        str(tmp_path / "models"),
        vocab_size=1000,
        log=lambda *_: None,
    )
    shutil.copytree(models["lm_dir"], remote_root / "lm")
    shutil.copy(models["classifier"], remote_root / "wiki.bin")
    remote = dict(lm_dir="cmtest://lm", classifier="cmtest://wiki.bin")
    if os.path.dirname(models["cutoffs"]) != models["lm_dir"]:
        shutil.copy(models["cutoffs"], remote_root / "cutoffs.csv")
        remote["cutoffs"] = "cmtest://cutoffs.csv"
    local = run_ccnet(
        CCNetConfig(
            input=[warc("pydocs.warc.gz")],
            output=str(tmp_path / "local"),
            lm_dir=models["lm_dir"],
            cutoffs=models["cutoffs"],
            classifier=models["classifier"],
        )
    )
    stats = run_ccnet(CCNetConfig(input=[warc("pydocs.warc.gz")], output=str(tmp_path / "remote"), **remote))
    assert [s["step"] for s in stats][-6:-3] == ["perplexity", "bucket", "wiki_classifier"]
    assert stats == local  # the same models, wherever they are read from
