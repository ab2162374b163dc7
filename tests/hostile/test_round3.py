"""Hostile round 3 (issue 26): paths taken from data, code in checkpoints, outputs that delete what they
read, racing writers, hostile HTTP mirrors and runs that lose everything. One test (or row) per defect;
docs/reliability.md lists them. Every attack is built here, at test time, from the bundled real samples.
"""

from __future__ import annotations

import bz2
import os

import pytest
from sources import DATA, run_source

from corpusmill.cli.main import main as cli_main
from corpusmill.core.files import read_failed, read_output


def _one_line_exit(capsys, args, code=2):
    capsys.readouterr()
    assert cli_main(args) == code
    text = capsys.readouterr().err
    err = [line for line in text.strip().splitlines() if line.startswith("corpusmill ")]  # (ccnet: status lines)
    assert len(err) == 1 and "Traceback" not in text, text
    return err[0]


# -- 1. names taken from data never become paths ------------------------------------------------------
def _dump_with_language(path: str, lang: str) -> None:
    """The bundled real dump, its header's ``xml:lang`` replaced (a plain .xml with Wikimedia's name)."""
    text = bz2.decompress(open(os.path.join(DATA, "wikipedia", "enwiki-sample-multistream.xml.bz2"), "rb").read())
    with open(path, "wb") as fh:
        fh.write(text.replace(b'xml:lang="en"', f'xml:lang="{lang}"'.encode(), 1))


@pytest.mark.parametrize("lang", ["../../escaped", "/ABS"])
def test_a_dump_language_never_becomes_a_path(lang, tmp_path):
    lang = lang.replace("/ABS", str(tmp_path / "abs"))
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    _dump_with_language(str(dumps / "xxwiki-20240101-pages-articles.xml"), lang)
    baseline = tmp_path / "baseline"
    run_source("wikipedia", baseline)
    out = tmp_path / "run" / "out"
    run_source(
        "wikipedia",
        out,
        input=[os.path.join(DATA, "wikipedia", "enwiki-sample-multistream.xml.bz2"), str(dumps)],
        max_failed_files=1,
    )
    # nothing written beside or above the output
    assert set(os.listdir(tmp_path)) == {"dumps", "baseline", "run"} and os.listdir(tmp_path / "run") == ["out"]
    # the hostile dump is one dead letter naming its file and the value; every other article is written
    letters = read_failed(str(out))
    assert len(letters) == 1 and "xxwiki-20240101" in letters[0]["location"], letters
    assert "cannot name an output folder" in letters[0]["error"] and repr(lang) in letters[0]["error"]
    assert sorted(d.to_json() for d in read_output(str(out))) == sorted(d.to_json() for d in read_output(str(baseline)))
    assert sorted(os.listdir(out / "en")) == sorted(os.listdir(baseline / "en"))


def test_a_site_name_that_is_not_a_name_is_refused(tmp_path, capsys):
    se = tmp_path / ".hidden"
    se.mkdir()
    (se / "Posts.xml").write_bytes(
        open(os.path.join(DATA, "stackexchange", "general.python-faq.example", "Posts.xml"), "rb").read()
    )
    line = _one_line_exit(
        capsys, ["source", "stackexchange", "--input", str(se / "Posts.xml"), "--output", str(tmp_path / "out")]
    )
    assert "'.hidden' cannot name an output folder" in line
    assert not (tmp_path / "out").exists()


# -- 2. a checkpoint holds no code ----------------------------------------------------------------------
class _Planted:
    """What an attacker pickles into a checkpoint: unpickling it would create ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real 4-step training run on shards of real text, checkpointed at steps 2 and 4."""
    pytest.importorskip("torch")
    import dataclasses

    from corpusmill.train.configs import load_config
    from corpusmill.train.loop import train
    from corpusmill.train.sample import build_sample_shards

    root = tmp_path_factory.mktemp("trained")
    shards = str(root / "shards")
    build_sample_shards(shards, seq_len=64, vocab_size=1024, rows_per_shard=256, max_chars=60_000)
    model, tr = load_config("tiny")
    tr = dataclasses.replace(tr, steps=4, ckpt_every=2, eval_every=0, log_every=1000, micro_batch=4)
    train(model, tr, shards, str(root / "run"), stream=None)
    return root, shards, model, tr


def test_resume_runs_no_code_planted_in_a_checkpoint(trained, tmp_path):
    import shutil

    import torch

    from corpusmill.core.errors import CorpusmillError
    from corpusmill.train.loop import train

    root, shards, model, tr = trained
    run = str(tmp_path / "run")
    shutil.copytree(root / "run", run)
    shutil.rmtree(os.path.join(run, "checkpoints", "step_00000004"))
    with open(os.path.join(run, "checkpoints", "latest"), "w") as fh:
        fh.write("step_00000002")
    rng = os.path.join(run, "checkpoints", "step_00000002", "rng", "rank_00000.pt")
    clean = open(rng, "rb").read()
    marker = str(tmp_path / "PLANTED_CODE_RAN")
    torch.save({"torch": torch.get_rng_state(), "numpy": _Planted(marker), "python": None}, rng)
    with pytest.raises(CorpusmillError, match="not a corpusmill random-number state"):
        train(model, tr, shards, run, resume=True, stream=None)
    assert not os.path.exists(marker)
    open(rng, "wb").write(clean)  # the real state (tensors and lists) loads with weights_only=True
    train(model, tr, shards, run, resume=True, stream=None)
    assert os.path.isdir(os.path.join(run, "checkpoints", "step_00000004"))


def test_a_sharded_checkpoint_metadata_is_checked_before_it_is_unpickled(tmp_path):
    """torch.distributed.checkpoint unpickles its .metadata: corpusmill reads it first with only the
    classes such a file holds."""
    import pickle
    import warnings

    torch = pytest.importorskip("torch")
    import torch.distributed.checkpoint as dcp

    from corpusmill.core.errors import CorpusmillError
    from corpusmill.train.checkpoint import DCP_DIR, check_dcp_metadata

    model = torch.nn.Linear(4, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "assuming the intent is to save in a single process"
        dcp.save({"model": model.state_dict()}, checkpoint_id=str(tmp_path / DCP_DIR))
    check_dcp_metadata(str(tmp_path))  # a real one passes
    marker = str(tmp_path / "PLANTED_CODE_RAN")
    (tmp_path / DCP_DIR / ".metadata").write_bytes(pickle.dumps(_Planted(marker)))
    with pytest.raises(CorpusmillError, match=r"io.open is not part of a checkpoint's metadata"):
        check_dcp_metadata(str(tmp_path))
    assert not os.path.exists(marker)


def test_no_pickle_is_loaded_unchecked():
    """Every torch.load in the package passes weights_only=True; nothing calls pickle.load or
    np.load(allow_pickle=True)."""
    import re

    package = os.path.join(os.path.dirname(os.path.dirname(DATA)), "corpusmill")
    found = []
    for folder, _dirs, names in os.walk(os.path.normpath(package)):
        for name in names:
            if name.endswith(".py"):
                text = open(os.path.join(folder, name), encoding="utf-8").read()
                for m in re.finditer(r"torch\.load\(", text):
                    depth, end = 1, m.end()
                    while depth:  # the call's closing parenthesis
                        depth += {"(": 1, ")": -1}.get(text[end], 0)
                        end += 1
                    call = text[m.start() : end]
                    found.append(call)
                    assert "weights_only=True" in call, f"{name}: {call}"
                assert not re.search(r"pickle\.loads?\(|allow_pickle=True|weights_only=False", text), name
                assert "pickle.Unpickler" not in text or name == "checkpoint.py", name  # the one checked reader
    assert found


# -- 3. an export never deletes what it exports ---------------------------------------------------------
def test_export_refuses_to_replace_its_own_run(trained, tmp_path, capsys):
    from helpers import tree_digest

    root, _shards, _model, _tr = trained
    run = root / "run"
    before = tree_digest(str(root))
    line = _one_line_exit(capsys, ["export", str(run), "--to", "hf", "--output", str(run), "--overwrite"])
    assert "is the checkpoint or tokenizer being exported" in line
    line = _one_line_exit(capsys, ["export", str(run), "--to", "meta", "--output", str(root), "--overwrite"])
    assert "contains the checkpoint or tokenizer being exported" in line
    assert tree_digest(str(root)) == before  # the run and its siblings whole
    # a folder corpusmill did not write is never replaced
    mine = tmp_path / "Documents"
    mine.mkdir()
    (mine / "thesis.txt").write_text("four years of work\n")
    line = _one_line_exit(capsys, ["export", str(run), "--to", "hf", "--output", str(mine), "--overwrite"])
    assert "thesis.txt, not a corpusmill output" in line and (mine / "thesis.txt").exists()
    # an earlier export is replaced whole, built beside it
    out = tmp_path / "hf"
    assert cli_main(["export", str(run), "--to", "hf", "--output", str(out)]) == 0
    first = tree_digest(str(out))
    assert cli_main(["export", str(run), "--to", "hf", "--output", str(out), "--overwrite"]) == 0
    assert tree_digest(str(out)) == first and sorted(os.listdir(tmp_path)) == ["Documents", "hf"]


# -- 4. one writer per output ----------------------------------------------------------------------------
def _books_argv(out, *more):
    return ["source", "books", "--input", os.path.join(DATA, "books", "milton"), "--output", str(out), *more]


def test_a_second_writer_is_refused_naming_the_first(tmp_path, capsys):
    import json
    import socket
    import subprocess
    import sys

    from corpusmill.core.outputs import beside

    out = tmp_path / "books"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:  # a live writer on this host holds the lock
        with open(beside(str(out), "lock"), "w") as fh:
            json.dump({"pid": holder.pid, "host": socket.gethostname(), "since": "now"}, fh)
        line = _one_line_exit(capsys, _books_argv(out, "--overwrite"))
        assert f"is being written by pid {holder.pid} on {socket.gethostname()}" in line
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    # its process gone (a kill -9), the lock is stale: the next run takes it over
    assert cli_main(_books_argv(out)) == 0
    assert not os.path.exists(beside(str(out), "lock"))


def test_two_overwrite_runs_at_once_never_damage_each_other(tmp_path):
    """Both start together: one writes, the other is refused (exit 2) or runs after it; the output is one
    complete run's, every part there, and no staging is left."""
    import subprocess
    import sys

    from corpusmill.core.files import check_complete

    out = tmp_path / "books"
    assert cli_main(_books_argv(out)) == 0
    parts = sorted(os.listdir(out))
    env = dict(os.environ, CORPUSMILL_PROGRESS="0")
    argv = [sys.executable, "-m", "corpusmill", *_books_argv(out, "--overwrite")]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)
    ]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    if codes == [0, 2]:
        refused = next(err for code, err in results if code == 2)
        assert "is being written by pid" in refused and len(refused.strip().splitlines()) == 1, refused
    check_complete(str(out))
    assert sorted(os.listdir(out)) == parts  # _samples/, _dropped/ ... all there
    assert sorted(os.listdir(tmp_path)) == ["books"]  # no staging, no lock left


# -- 10. --overwrite replaces only what corpusmill wrote -----------------------------------------------------
def test_overwrite_never_deletes_a_folder_corpusmill_did_not_write(tmp_path, capsys):
    from helpers import tree_digest

    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    (home / "Documents" / "thesis.txt").write_text("four years of work\n")
    (home / ".bashrc").write_text("export PATH=$HOME/bin:$PATH\n")
    before = tree_digest(str(home))
    for argv in (
        [
            "ccnet",
            "--input",
            os.path.join(DATA, "warc", "iana.warc.gz"),
            "--languages",
            "en",
            "--output",
            str(home),
            "--overwrite",
        ],
        _books_argv(home, "--overwrite"),
    ):
        line = _one_line_exit(capsys, argv)
        assert ".bashrc, Documents, not a corpusmill output" in line, line
    assert tree_digest(str(home)) == before


# -- 12. --overwrite reruns; a changed input or model is a different run -------------------------------------
def test_ccnet_overwrite_reruns_and_a_changed_input_is_named(tmp_path, capsys):
    import shutil
    import time

    crawl = tmp_path / "crawl"
    crawl.mkdir()
    shutil.copy(os.path.join(DATA, "warc", "iana.warc.gz"), crawl / "iana.warc.gz")
    out = tmp_path / "cc"
    argv = ["ccnet", "--input", str(crawl), "--languages", "en", "--output", str(out)]
    assert cli_main(argv) == 0
    stamp = os.path.getmtime(out / "_SUCCESS")
    capsys.readouterr()
    assert cli_main(argv) == 0 and "nothing to do" in capsys.readouterr().err  # a plain rerun: complete
    time.sleep(0.01)
    assert cli_main(argv + ["--overwrite"]) == 0 and "nothing to do" not in capsys.readouterr().err
    assert os.path.getmtime(out / "_SUCCESS") > stamp  # run again
    os.utime(crawl / "iana.warc.gz", ns=(1, 1))  # the same path, another file (as a re-download leaves it)
    line = _one_line_exit(capsys, argv)
    assert "iana.warc.gz changed (size:mtime" in line and "--overwrite" in line, line


# -- 8. a YAML alias bomb ------------------------------------------------------------------------------------
def _alias_bomb(levels: int) -> str:
    """A "billion laughs": each level a list of nine aliases of the one before (9 ** levels strings)."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", ["manifest", "config", "train-config"])
def test_a_yaml_alias_bomb_is_refused_at_once(where, tmp_path, capsys):
    import time

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_alias_bomb(9))
    argv = {
        "manifest": ["run", str(bomb)],
        "config": ["source", "books", "--config", str(bomb), "--output", str(tmp_path / "o")],
        "train-config": ["train", "--config", str(bomb), "--data", str(tmp_path), "--output", str(tmp_path / "t")],
    }
    start = time.monotonic()
    line = _one_line_exit(capsys, argv[where])
    assert time.monotonic() - start < 20
    assert "line 2: a YAML alias (*a0)" in line and "bomb.yaml" in line, line


# -- 13. a path where an import path belongs -------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["../../x:X", "/etc/passwd:X", "mypkg.filters:../X"])
def test_add_filter_with_a_path_is_one_line(spec, tmp_path, capsys):
    line = _one_line_exit(capsys, _books_argv(tmp_path / "o", "--add-filter", spec))
    assert "with a dotted module name" in line
    assert not (tmp_path / "o").exists()  # refused before the output is made


# -- 11. a full disk ----------------------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path):
    """A 48 KiB tmpfs (needs mount rights: root with CAP_SYS_ADMIN; skipped elsewhere)."""
    import subprocess

    where = tmp_path / "disk"
    where.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(where)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("cannot mount a small tmpfs here (not root, or no CAP_SYS_ADMIN)")
    yield where
    subprocess.run(["umount", str(where)], check=False)


def test_a_full_disk_is_one_line_and_leaves_nothing_behind(tiny_disk, capsys, monkeypatch):
    monkeypatch.setenv("CORPUSMILL_PROGRESS", "0")
    out = tiny_disk / "books"
    capsys.readouterr()
    assert cli_main(_books_argv(out)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left on the device" in err[0], err
    assert os.listdir(tiny_disk) == []  # the partial output removed: the disk is free again


# -- 5. hostile HTTP mirrors -------------------------------------------------------------------------------
@pytest.fixture
def plain_mirror(tmp_path):
    """``python -m http.server`` over the bundled WARCs: the most common ad-hoc mirror; it ignores Range."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            os.path.join(DATA, "warc"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    proc.kill()
    proc.wait()


def test_a_mirror_that_ignores_range_gives_the_local_bytes(plain_mirror, tmp_path):
    from corpusmill.io import http
    from corpusmill.io.warc import scan_records

    local = os.path.join(DATA, "warc", "pydocs.warc.gz")
    url = f"{plain_mirror}/pydocs.warc.gz"
    data = open(local, "rb").read()
    refs = [r for r in scan_records(local) if r.length][5:12]
    http.NO_RANGE.discard(url)
    for ref in refs:  # each record by its range: the first one streams from byte 0, the rest from one copy
        assert http.fetch_range(url, ref.offset, ref.offset + ref.length) == data[ref.offset : ref.offset + ref.length]
    assert url in http.NO_RANGE
    with http.open_http(url) as fh:  # a seek on the stream reads and discards up to the offset
        fh.seek(refs[3].offset)
        assert fh.read(1000) == data[refs[3].offset : refs[3].offset + 1000]
    # the whole stage over the mirror: the documents of the local file
    run_source("ccnet", tmp_path / "local", input=[local])
    run_source("ccnet", tmp_path / "http", input=[url])
    assert sorted(d.text for d in read_output(str(tmp_path / "http"))) == sorted(
        d.text for d in read_output(str(tmp_path / "local"))
    )


class _Hostile:
    """A loopback server answering every GET with ``handler(request)``."""

    def __init__(self, handler):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                handler(self)

            def do_HEAD(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/f.warc.gz"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fast_retries(monkeypatch):
    from corpusmill.io import http

    monkeypatch.setattr(http, "RETRIES", 2)
    monkeypatch.setattr(http, "BACKOFF_S", 0.01)
    monkeypatch.setattr(http, "SPEED_LIMIT", 1000.0)
    monkeypatch.setattr(http, "SPEED_TIME", 1.0)


def test_a_206_of_another_range_is_never_used(fast_retries):
    from corpusmill.io import http

    def wrong_range(req):  # always the file's first bytes, whatever was asked
        body = b"X" * 100
        req.send_response(206)
        req.send_header("Content-Range", "bytes 0-99/100000")
        req.send_header("Content-Length", "100")
        req.end_headers()
        req.wfile.write(body)

    server = _Hostile(wrong_range)
    try:
        with pytest.raises(OSError, match=r"gave up after 2 retries.*the server answered Content-Range 'bytes 0-99"):
            http.fetch_range(server.url, 5000, 5100)
    finally:
        server.close()


def test_a_stalled_transfer_ends(fast_retries):
    import time

    from corpusmill.io import http

    def trickle(req):  # a byte every 0.1 s: never silent long enough for a socket timeout
        req.send_response(200)
        req.send_header("Content-Length", "100000")
        req.end_headers()
        try:
            for _ in range(600):
                req.wfile.write(b"x")
                req.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    server = _Hostile(trickle)
    start = time.monotonic()
    try:
        with pytest.raises(OSError, match="transfer slower than 1000 bytes/s"):
            http.fetch_range(server.url, 0, 100000)
    finally:
        server.close()
    assert time.monotonic() - start < 30


@pytest.mark.parametrize(
    "entry,message",
    [
        ("/etc/passwd", "is a local path in a remote listing"),
        ("../../secret.warc.gz", "climbs out of --base-url"),
        ("http://elsewhere.example/x.warc.gz", "is on another host"),
    ],
)
def test_a_listing_names_only_files_of_its_origin(entry, message):
    from corpusmill.core.errors import CorpusmillError
    from corpusmill.io.commoncrawl import resolve

    base = "http://127.0.0.1:9/mirror"
    assert resolve("crawl-data/x.warc.gz", base, base + "/wet.paths.gz") == base + "/crawl-data/x.warc.gz"
    with pytest.raises(CorpusmillError, match=message):
        resolve(entry, base, base + "/wet.paths.gz")


# -- 6. a run that lost (almost) everything does not exit 0 ---------------------------------------------------
def test_a_run_whose_every_input_failed_exits_3_and_run_refuses_it(plain_mirror, tmp_path, capsys, monkeypatch):
    import json

    import yaml

    from corpusmill.io import http

    monkeypatch.setattr(http, "RETRIES", 1)
    monkeypatch.setenv("CORPUSMILL_PROGRESS", "0")
    out = tmp_path / "cc"
    missing = [f"{plain_mirror}/missing-{i}.warc.gz" for i in range(3)]  # three listed 404s
    line = _one_line_exit(capsys, ["ccnet", "--input", *missing, "--languages", "en", "--output", str(out)], code=3)
    assert "3 of 3 records failed: 3 input files failed whole, over --max-failed-files 0" in line, line
    assert "HTTP 404" in line
    record = json.loads((out / "_SUCCESS").read_text())  # written, dead letters included, marked over budget
    assert record["over_failure_budget"]["failed"] == 3 and len(read_failed(str(out))) == 3
    # one missing file of four is over the budget too (a whole input file failing), unless allowed
    local = os.path.join(DATA, "warc", "pydocs.warc.gz")
    mixed = ["ccnet", "--input", local, missing[0], "--languages", "en", "--output", str(tmp_path / "mixed")]
    assert "1 input files failed whole" in _one_line_exit(capsys, mixed, code=3)
    assert cli_main(mixed + ["--overwrite", "--max-failed-files", "1"]) == 0
    # corpusmill run refuses an output over budget as a source, unless the manifest allows it
    manifest = {
        "name": "m",
        "output": str(tmp_path / "run"),
        "seq_len": 64,
        "tokenizer": {"vocab_size": 300, "sample_chars": 50_000},
        "sources": {"cc": {"epochs": 1.0, "documents": str(out)}},
    }
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(manifest))
    line = _one_line_exit(capsys, ["run", str(path)], code=3)
    assert "sources.cc.documents" in line and "over its failure budget" in line and "allow_failed: true" in line
    manifest["sources"]["cc"]["allow_failed"] = True
    path.write_text(yaml.safe_dump(manifest))
    capsys.readouterr()
    cli_main(["run", str(path)])  # goes on (to find the source empty: it has no documents)
    assert "failure budget" not in capsys.readouterr().err


# -- 7. Ctrl-C and a scheduler's kill ------------------------------------------------------------------------
def _descendants(pid: int) -> list:
    """Every process below ``pid`` now (/proc: each thread's children, recursively)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            threads = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except OSError:
                kids = []
            found += kids
            todo += kids
    return found


def _alive(pids) -> list:
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.append(pid)
        except OSError:
            pass
    return out


@pytest.mark.parametrize("sig,workers", [("SIGINT", "2"), ("SIGTERM", "1")])
def test_an_interrupt_is_one_line_exit_130_and_no_process_left(sig, workers, tmp_path):
    """The signal goes to the whole process group, as a terminal's Ctrl-C does; the same command then
    resumes to completion."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "cc"
    argv = [
        sys.executable,
        "-m",
        "corpusmill",
        "ccnet",
        "--input",
        os.path.join(DATA, "warc", "pydocs.warc.gz"),
        os.path.join(DATA, "warc", "iana.warc.gz"),
        "--num-shards",
        "2",
        "--languages",
        "en",
        "--workers",
        workers,
        "--output",
        str(out),
    ]
    env = dict(os.environ, CORPUSMILL_PROGRESS="0")
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    deadline = time.time() + 120
    while not (out / "_shards").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)  # into the pipeline
    while workers == "2" and not _descendants(proc.pid) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)  # Beam's SDK workers started
    children = _descendants(proc.pid)  # (in their own session), with the job's shells
    sent = time.monotonic()
    os.killpg(proc.pid, getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 10
    assert proc.returncode == 130, err
    assert (
        "Traceback" not in err
        and err.strip().splitlines()[-1] == "corpusmill ccnet: interrupted; rerun the same command to resume"
    ), err
    assert bool(children) == (workers == "2")  # 2 workers: Beam's SDK worker processes (1: in this process)
    assert _alive(children) == [], children  # every child ended
    assert subprocess.run(argv, env=env, capture_output=True).returncode == 0  # the same command resumes


def test_the_same_run_named_from_another_directory_is_the_same_run(tmp_path, capsys, monkeypatch):
    """Issue 29: a rerun from another directory, with the same paths spelled differently, was refused as
    "another run"; the plan stores canonical paths."""
    import shutil

    (tmp_path / "crawl").mkdir()
    shutil.copy(os.path.join(DATA, "warc", "iana.warc.gz"), tmp_path / "crawl" / "iana.warc.gz")
    monkeypatch.chdir(tmp_path)
    assert cli_main(["ccnet", "--input", "crawl", "--languages", "en", "--output", "cc"]) == 0
    monkeypatch.chdir(tmp_path / "crawl")
    capsys.readouterr()
    argv = ["ccnet", "--input", str(tmp_path / "crawl"), "--languages", "en", "--output", "../cc"]
    assert cli_main(argv) == 0 and "nothing to do" in capsys.readouterr().err
