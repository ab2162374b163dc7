"""docs/extending.md, run exactly: a user's 10-line filter inside the CCNet stage, a user's source as a
manifest processor, and the Python API; plus the layout rules the brief sets (no Beam outside engine/,
io/, pipelines/; nothing imports upward)."""

from __future__ import annotations

import ast
import json
import os
import pathlib

import pytest

import corpusmill
from corpusmill.cli import main as cli_main
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import read_output

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WARC = os.path.join(HERE, "data", "warc", "pydocs.warc.gz")
BOOKS = os.path.join(HERE, "data", "books", "milton")


@pytest.fixture(autouse=True)
def example_package(monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(ROOT, "docs", "examples"))


def _stats(out):
    return {s["step"]: s for s in json.loads((out / "_meta/stats.json").read_text())}


def test_a_users_filter_runs_inside_the_ccnet_stage(tmp_path):
    out = tmp_path / "cc"
    assert (
        cli_main(
            [
                "ccnet",
                "--input",
                WARC,
                "--output",
                str(out),
                "--min-length",
                "0",
                "--add-filter",
                "mypkg.filters:MaxDigitShare",
                "--after",
                "lid",
            ]
        )
        == 0
    )
    stats = _stats(out)
    assert list(stats) == [
        "extract",
        "normalize",
        "line_dedup",
        "lid",
        "max_digit_share",
        "collect",
        "url_dedup",
        "content_dedup",
    ]
    step = stats["max_digit_share"]
    assert step["read"] == stats["lid"]["kept"]
    assert step["read"] == step["kept"] + sum(step["dropped"].values()) + step["failed"]
    # the filter really ran: what it kept has at most 20% digits, and the same pages without it differ
    from mypkg.filters import MaxDigitShare

    kept = read_output(str(out))
    assert kept and all(MaxDigitShare()(d).kept for d in kept)
    plain = tmp_path / "plain"
    corpusmill.run_stage("ccnet", input=[WARC], output=str(plain), min_length=0)
    assert _stats(plain)["lid"]["kept"] == stats["lid"]["kept"]
    assert len(read_output(str(plain))) == step["read"]
    # its own score, binned as it declared, kept and dropped, with its threshold (profile.json)
    entry = json.loads((out / "_meta/profile.json").read_text())
    assert entry["bins"]["digit_share"] == [round(i / 20, 6) for i in range(21)]
    mine = entry["steps"]["max_digit_share"]
    assert mine["thresholds"] == {"digit_share": 0.2}
    hist = mine["histograms"]["digit_share"]
    assert sum(map(sum, hist["kept"].values())) == step["kept"]
    assert sum(map(sum, hist.get("dropped", {}).values())) == sum(step["dropped"].values())


def test_a_users_filter_takes_its_parameters(tmp_path, capsys):
    """--filter-arg KEY=VALUE (or CLASS.KEY=VALUE) reaches the filter's __init__; in --config, a mapping."""
    from mypkg.filters import MaxDigitShare

    out = tmp_path / "strict"
    assert (
        cli_main(
            [
                "ccnet",
                "--input",
                WARC,
                "--output",
                str(out),
                "--min-length",
                "0",
                "--add-filter",
                "mypkg.filters:MaxDigitShare",
                "--filter-arg",
                "max_share=0.02",
            ]
        )
        == 0
    )
    step = _stats(out)["max_digit_share"]
    assert json.loads((out / "_meta/profile.json").read_text())["steps"]["max_digit_share"]["thresholds"] == {
        "digit_share": 0.02
    }
    kept = read_output(str(out))
    assert step["dropped"]["too_many_digits"] > 0 and all(MaxDigitShare(0.02)(d).kept for d in kept)
    config = tmp_path / "c.yaml"  # the same through --config: FILTER: {KEY: VALUE}
    config.write_text("add_filter: [mypkg.filters:MaxDigitShare]\nfilter_arg:\n  MaxDigitShare: {max_share: 0.02}\n")
    assert (
        cli_main(
            ["ccnet", "--input", WARC, "--output", str(tmp_path / "yaml"), "--min-length", "0", "--config", str(config)]
        )
        == 0
    )
    assert _stats(tmp_path / "yaml")["max_digit_share"] == step
    capsys.readouterr()
    assert (
        cli_main(
            [
                "ccnet",
                "--input",
                WARC,
                "--output",
                str(tmp_path / "bad"),
                "--add-filter",
                "mypkg.filters:MaxDigitShare",
                "--filter-arg",
                "max_shar=0.1",
            ]
        )
        == 2
    )
    assert "did you mean max_share" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_a_users_filter_runs_after_any_step_of_the_list_in_either_order(tmp_path):
    """--after names any step of the stage's one list, the final phase's too: after url_dedup, the filter runs
    between the URL and the text dedup (the text dedup's keys are then taken after it: another pass)."""
    from corpusmill.pipelines.ccnet import CCNetConfig, input_steps, steps

    out = tmp_path / "cc"
    assert (
        cli_main(
            [
                "ccnet",
                "--input",
                WARC,
                "--output",
                str(out),
                "--min-length",
                "0",
                "--add-filter",
                "mypkg.filters:MaxDigitShare",
                "--after",
                "url_dedup",
            ]
        )
        == 0
    )
    stats = _stats(out)
    assert list(stats) == [
        "extract",
        "normalize",
        "line_dedup",
        "lid",
        "collect",
        "url_dedup",
        "max_digit_share",
        "content_dedup",
    ]
    assert stats["max_digit_share"]["read"] == stats["url_dedup"]["kept"]
    assert stats["content_dedup"]["read"] == stats["max_digit_share"]["kept"]
    llama3 = tmp_path / "l3"
    assert (
        cli_main(
            [
                "ccnet",
                "--input",
                WARC,
                "--output",
                str(llama3),
                "--min-length",
                "0",
                "--dedup-order",
                "llama3",
                "--add-filter",
                "mypkg.filters:MaxDigitShare",
                "--after",
                "normalize",
            ]
        )
        == 0
    )
    assert list(_stats(llama3)) == [
        "extract",
        "normalize",
        "max_digit_share",
        "collect",
        "url_dedup",
        "content_dedup",
        "line_dedup",
        "lid",
    ]
    # the list answers --after, in both orders, before any work
    cfg = CCNetConfig(
        input=[WARC], output=str(tmp_path / "x"), add_filter=["mypkg.filters:MaxDigitShare"], after="fuzzy_dedup"
    )
    with pytest.raises(
        CorpusmillError,
        match="its steps: extract, read, normalize, line_dedup, lid, collect, url_dedup, content_dedup$",
    ):
        input_steps(cfg, None)
    assert [s.name for s in steps(CCNetConfig(output="x", fuzzy_dedup=True, dedup_order="llama3"), [WARC])] == [
        "extract",
        "normalize",
        "collect",
        "url_dedup",
        "content_dedup",
        "fuzzy_dedup",
        "line_dedup",
        "lid",
    ]


def test_a_users_source_is_a_manifest_processor(tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(f"""\
name: custom
output: {tmp_path / "run"}
seq_len: 64
budget_tokens: 60000
tokenizer: {{vocab_size: 1000, sample_chars: 200000, threads: 1}}
shards: {{rows_per_shard: 64, batch_rows: 16}}
sources:
  mine:
    weight: 1.0
    processor: mypkg.sources:TEXT_FILES
    input: [{BOOKS}/*.txt.gz]
    options: {{min_chars: 10}}
""")
    # the example reads plain text files: give it some
    import gzip
    import shutil

    src = tmp_path / "books"
    src.mkdir()
    for name in sorted(os.listdir(BOOKS))[:3]:
        with gzip.open(os.path.join(BOOKS, name), "rb") as fh, open(src / name.replace(".gz", ""), "wb") as dst:
            shutil.copyfileobj(fh, dst)
    manifest.write_text(manifest.read_text().replace(f"{BOOKS}/*.txt.gz", f"{src}/*.txt"))
    assert cli_main(["run", str(manifest)]) == 0
    stats = _stats(tmp_path / "run" / "sources" / "mine")
    assert stats["read"]["read"] == 3 and stats["read"]["kept"] == 3
    counts = json.loads((tmp_path / "run" / "counts" / "counts.json").read_text())
    assert counts["sources"]["mine"]["documents"] == 3 and counts["sources"]["mine"]["tokens"] > 0
    mixture = json.loads((tmp_path / "run" / "shards" / "manifest.json").read_text())["mixture"]
    assert mixture["mine"]["tokens"] > 0  # (a 3,000-token budget drew no book: the mixer now says so)


def test_python_api_takes_the_same_config_and_checks(tmp_path):
    cfg = corpusmill.stage_config("ccnet", input=[WARC], output=str(tmp_path / "x"), languages=["en"])
    assert cfg.languages == ["en"] and cfg.min_length == 300
    from corpusmill.core.errors import CorpusmillError

    with pytest.raises(CorpusmillError, match="languages: expected a list of strings or null, got 'en'"):
        corpusmill.stage_config("ccnet", input=[WARC], output="x", languages="en")
    with pytest.raises(CorpusmillError, match="langauges: unknown option; did you mean languages"):
        corpusmill.run_stage("ccnet", input=[WARC], output="x", langauges=["en"])
    stats = corpusmill.run_stage("books", input=[BOOKS], output=str(tmp_path / "books"))
    assert stats[0]["read"] == len(os.listdir(BOOKS))


# -- layout -------------------------------------------------------------------------------------------
ALLOWED = {  # package -> corpusmill packages it may import (besides itself); nothing imports upward
    "core": set(),
    "filters": {"core"},
    "dedup": {"core", "filters"},
    "tokenize": {"core", "filters"},
    "mixers": {"core"},
    "quality": {"core", "filters"},
    "report": {"core"},
    "train": {"core", "tokenize"},
    "io": {"core", "filters"},
    "engine": {"core", "filters", "dedup", "io"},
    "pipelines": {"core", "filters", "dedup", "io", "engine", "mixers", "quality", "report", "tokenize", "train"},
    "cli": {"core", "pipelines", "engine", "train", "tokenize"},
}
BEAM_PACKAGES = {"engine", "io", "pipelines"}


def _imports():
    for path in pathlib.Path(ROOT, "corpusmill").rglob("*.py"):
        parts = path.relative_to(pathlib.Path(ROOT, "corpusmill")).parts
        package = parts[0] if len(parts) > 1 else None
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module and not node.level
                else []
            )
            for name in names:
                yield path, package, name


def test_layout_beam_only_in_engine_io_stages_and_nothing_imports_upward():
    bad = []
    for path, package, name in _imports():
        if package is None:
            continue
        if name.split(".")[0] == "apache_beam" and package not in BEAM_PACKAGES:
            bad.append(f"{path}: imports {name} (Beam lives in engine/, io/, pipelines/)")
        if name.startswith("corpusmill."):
            target = name.split(".")[1]
            if target != package and target not in ALLOWED[package]:
                bad.append(f"{path}: {package}/ imports {name}")
    assert not bad, "\n".join(bad)


def test_the_docs_show_the_example_filter_as_it_is():
    """docs/extending.md's filter block is docs/examples/mypkg/filters.py, byte for byte (the tests run that)."""
    doc = open(os.path.join(ROOT, "docs", "extending.md"), encoding="utf-8").read()
    block = doc.split("```python\n", 1)[1].split("```", 1)[0]
    source = open(os.path.join(ROOT, "docs", "examples", "mypkg", "filters.py"), encoding="utf-8").read()
    assert block.strip() == source[source.index("from corpusmill.filters.base import") :].strip()


def test_every_source_is_built_from_its_step_list_and_lists_it(capsys):
    """Each registered source has one step list (its `steps(cfg)`): `corpusmill ... --steps` prints it, and
    the names are the steps its stats.json reports (the builders apply that list; tests of each source
    check the stats)."""
    from corpusmill.pipelines.registry import PROCESSORS, load_stage

    for processor, command in PROCESSORS.items():
        stage = load_stage(command)
        assert stage.steps is not None, command
        mode = {"c4": ["--mode", "crawl"], "github": ["--mode", "local"]}.get(processor, [])  # (a required choice)
        assert cli_main(command.split() + ["--steps"] + mode) == 0, command
        names = [line.split()[1] for line in capsys.readouterr().out.splitlines()]
        assert names and len(names) == len(set(names)), (command, names)
    assert (
        cli_main(["source", "books", "--steps", "--add-filter", "mypkg.filters:MaxDigitShare", "--after", "gutenberg"])
        == 0
    )
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines()] == [
        "read",
        "gutenberg",
        "max_digit_share",
        "exact_dedup",
        "near_dedup",
    ]
