"""Nothing a user mistypes is silently ignored: each bad flag, value, config file or manifest exits 2 with
one line naming the flag or file/field, what was expected, what was given and close matches; no traceback."""

from __future__ import annotations

import os

import pytest

from corpusmill.cli import main as cli_main

HERE = os.path.dirname(os.path.abspath(__file__))
WARC = os.path.join(HERE, "data", "warc", "iana.warc.gz")
WIKI = os.path.join(HERE, "data", "wikipedia", "enwiki-sample-multistream.xml.bz2")
BOOKS = os.path.join(HERE, "data", "books", "milton")

CCNET = ["ccnet", "--input", WARC, "--output", "{out}"]

# (arguments, the text the one error line must hold)
CLI_CASES = [
    # issue 29: a directory with no finished stage is not a report that passes; a file is not a run directory
    (["report", "{tmp}"], "no finished stage here"),
    (
        ["run", os.path.join(os.path.dirname(HERE), "manifests", "demo.yaml"), "--output", __file__],
        "is a file, not a directory",
    ),
    (CCNET + ["--langauges", "en"], "unknown option --langauges; did you mean --languages"),
    (CCNET + ["--min-lenght", "3"], "unknown option --min-lenght; did you mean --min-length"),
    (CCNET + ["--no-such-option", "1"], "unknown option --no-such-option"),
    (CCNET + ["--docs-per-shard", "0"], "--docs-per-shard: expected a value at least 1, got 0"),
    (CCNET + ["--dropped-sample", "-1"], "--dropped-sample: expected a value at least 0, got -1"),
    (CCNET + ["--runner=Bogus"], "--runner Bogus: not a Beam runner"),
    (CCNET + ["--direct_num_worker=2"], "unknown option --direct_num_worker; did you mean --direct_num_workers"),
    (CCNET + ["--direct_num_workers=abc"], "--direct_num_workers: invalid int value: 'abc'"),
    (CCNET + ["--lang-threshold", "high"], "--lang-threshold: expected a number, got 'high'"),
    (CCNET + ["--lang-threshold", "1.5"], "--lang-threshold: expected a value at most 1, got 1.5"),
    (CCNET + ["--format", "csv"], "--format: expected one of jsonl, parquet, got 'csv'"),
    (CCNET + ["--dedup-keep", "last"], "--dedup-keep: expected one of none, first, got 'last'"),
    (CCNET + ["--keep-buckets", "head,midle"], "got 'midle'; did you mean middle"),
    (CCNET + ["--min-length", "1.5"], "--min-length: expected a whole number, got '1.5'"),
    (CCNET + ["--max-page-bytes", "0"], "--max-page-bytes: expected a value at least 1, got 0"),
    (CCNET + ["stray"], "unexpected argument 'stray'"),
    (["ccnet", "--input", WARC], "--output: missing"),
    (["ccnet", "--input", WARC, "--output", "/etc/passwd"], "--output /etc/passwd: is a file"),
    (
        ["ccnet", "--input", WARC, "--output", "/proc/corpusmill-test"],
        "--output /proc/corpusmill-test: cannot be written",
    ),
    (CCNET + ["--config", "{tmp}/missing.yaml"], "missing.yaml: no such file"),
    (CCNET + ["--add-filter", "nosuch_module_xyz:Filter"], "cannot import module nosuch_module_xyz"),
    (
        CCNET + ["--add-filter", "mypkg.filters:MaxDigitShare", "--after", "lidd"],
        "--after lidd: this stage has no step 'lidd'; did you mean lid",
    ),
    (CCNET + ["--add-filter", "mypkg.filters:NoSuchFilter"], "module mypkg.filters has no NoSuchFilter"),
    (["ccnt"], "unknown command 'ccnt'; did you mean ccnet"),
    (["source", "stackexhange"], "unknown source 'stackexhange'; did you mean stackexchange"),
    (
        ["source", "books", "--input", BOOKS, "--output", "{out}", "--overlap", "1.5"],
        "--overlap: expected a value at most 1, got 1.5",
    ),
    (
        ["source", "c4", "--mode", "bogus", "--input", WARC, "--output", "{out}"],
        "--mode: expected one of crawl, released, got 'bogus'",
    ),
    (["source", "c4", "--input", WARC, "--output", "{out}"], "--mode: missing"),
    (
        ["source", "github", "--from", "bigquery", "--bq-anonymous", "--output", "{out}"],
        "--bq-anonymous only works with --bq-endpoint",
    ),
    (
        ["source", "wikipedia", "--input", WIKI, "--output", "{out}", "--namespaces", "0,x"],
        "--namespaces: expected a whole number, got 'x'",
    ),
    (
        ["source", "stackexchange", "--input", WARC, "--output", "{out}", "--top-sites", "0"],
        "--top-sites: expected a value at least 1, got 0",
    ),
    (
        ["train-lm", "--lang", "en", "--input", WARC, "--output", "{out}", "--order", "0"],
        "--order: expected a value at least 1, got 0",
    ),
    (
        ["train-classifier", "--positive", WARC, "--negative", WARC, "--output", "{out}", "--holdout", "1"],
        "--holdout: expected a value below 1, got 1.0",
    ),
    (["report", "{tmp}", "--outptu", "x.html"], "unknown option --outptu; did you mean --output"),
    (
        ["train", "--model", "tiny", "--data", "{tmp}", "--output", "{out}", "--stepz", "3"],
        "unknown option --stepz; did you mean --steps",
    ),
    (
        ["train-tokenizer", "--input", "{tmp}", "--output", "{out}", "--vocab-size", "10"],
        "--vocab-size: expected a value at least 260, got 10",
    ),
]

# (--config file text, the text the error line must hold); {cfg} is the file's path
CONFIG_CASES = [
    ("langauges: [en]\n", "{cfg}: langauges: unknown option; did you mean languages"),
    ("languages: en\n", "{cfg}: languages: expected a list of strings or null, got 'en'"),
    ("lang_threshold: high\n", "{cfg}: lang_threshold: expected a number, got 'high'"),
    ("min_length: 10\nmin_length: 20\n", "{cfg}: line 2: key 'min_length' is given twice (first on line 1)"),
    ("min_length: true\n", "{cfg}: min_length: expected a whole number, got True"),
    ("- en\n", "{cfg}: expected a mapping of option names to values, got list"),
]

MANIFEST = """\
name: strict
output: {out}
seq_len: 64
budget_tokens: 1000
sources:
  cc:
    weight: 0.5
    processor: {processor}
    input: [{warc}]
    options: {options}
  wiki:
    weight: 0.5
    processor: wikipedia
    input: [{wiki}]
"""

# (processor, options, the text the error line must hold)
MANIFEST_CASES = [
    ("stackexhange", "{}", "sources.cc.processor: unknown processor 'stackexhange'; did you mean stackexchange"),
    ("ccnet", "{languages: en}", "sources.cc.options.languages: expected a list of strings or null, got 'en'"),
    ("ccnet", "{lang_threshold: high}", "sources.cc.options.lang_threshold: expected a number, got 'high'"),
    ("ccnet", "{langauges: [en]}", "sources.cc.options.langauges: unknown option; did you mean languages"),
    ("ccnet", "{fmt: parquet}", "sources.cc.options.fmt: unknown option; did you mean format"),
    ("ccnet", "{out: {fmt: parquet}}", "sources.cc.options.out: unknown option"),
    ("ccnet", "{docs_per_shard: 0}", "sources.cc.options.docs_per_shard: expected a value at least 1, got 0"),
    ("ccnet", "{input: [x]}", "sources.cc.options.input: set by the manifest"),
    ("wikipedia", "{split_mb: lots}", "sources.cc.options.split_mb: expected a number, got 'lots'"),
    ("nosuch_module_xyz:STAGE", "{}", "cannot import module nosuch_module_xyz"),
    ("mypkg.filters:MaxDigitShare", "{}", "expected a corpusmill.core.stage.Stage, got type"),
]


@pytest.fixture(autouse=True)
def example_package(monkeypatch):
    """docs/examples/ (the extending.md example) is importable, as an installed package would be."""
    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(HERE), "docs", "examples"))


def _check(capsys, argv, expected):
    code = cli_main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, (argv, captured.out, err)
    assert "Traceback" not in captured.err + captured.out
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert expected in lines[0], (expected, lines[0])
    return lines[0]


@pytest.mark.parametrize("argv,expected", CLI_CASES, ids=[" ".join(a[-2:])[:40] for a, _ in CLI_CASES])
def test_bad_command_lines(argv, expected, tmp_path, capsys):
    fill = {"out": str(tmp_path / "out"), "tmp": str(tmp_path)}
    _check(capsys, [a.format(**fill) for a in argv], expected.format(**fill))
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


@pytest.mark.parametrize("text,expected", CONFIG_CASES, ids=[t.split(":")[0][:20] for t, _ in CONFIG_CASES])
def test_bad_config_files(text, expected, tmp_path, capsys):
    cfg = tmp_path / "ccnet.yaml"
    cfg.write_text(text)
    _check(
        capsys,
        ["ccnet", "--input", WARC, "--output", str(tmp_path / "out"), "--config", str(cfg)],
        expected.format(cfg=cfg),
    )


@pytest.mark.parametrize("processor,options,expected", MANIFEST_CASES, ids=[o[:20] for _, o, _ in MANIFEST_CASES])
def test_bad_manifests(processor, options, expected, tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST.format(out=tmp_path / "out", processor=processor, options=options, warc=WARC, wiki=WIKI))
    line = _check(capsys, ["run", str(path)], expected)
    assert str(path) in line
    assert not (tmp_path / "out").exists()  # nothing ran


def test_duplicate_key_in_a_manifest(tmp_path, capsys):
    path = tmp_path / "m.yaml"
    text = MANIFEST.format(out=tmp_path / "out", processor="ccnet", options="{}", warc=WARC, wiki=WIKI)
    path.write_text(text.replace("seq_len: 64\n", "seq_len: 64\nseq_len: 128\n"))
    _check(capsys, ["run", str(path)], f"{path}: line 4: key 'seq_len' is given twice (first on line 3)")


def test_config_file_and_flags_agree_and_flags_win(tmp_path):
    """--config gives the same fields as the flags; a flag overrides the file; two inputs after one --input.
    (The config the command builds, as run_command builds it: what the stage then runs on.)"""
    from corpusmill.cli.main import stage_parser
    from corpusmill.core.config import build, cli_values
    from corpusmill.pipelines.registry import load_stage

    cfg = tmp_path / "ccnet.yaml"
    cfg.write_text("languages: [de]\nmin_length: 0\ndocs_per_shard: 7\n")
    pydocs = os.path.join(HERE, "data", "warc", "pydocs.warc.gz")
    out = str(tmp_path / "out")
    stage = load_stage("ccnet")

    def config_of(argv):
        namespace, _ = stage_parser("ccnet", stage).parse_known_args(argv)
        return build(stage.config, cli=cli_values(stage.config, namespace), config_file=namespace.config)

    from_file = config_of(["--config", str(cfg), "--input", WARC, pydocs, "--output", out, "--languages", "en"])
    from_flags = config_of(
        ["--input", WARC, pydocs, "--output", out, "--languages", "en", "--min-length", "0", "--docs-per-shard", "7"]
    )
    assert from_file == from_flags
    assert from_file.input == [WARC, pydocs] and from_file.languages == ["en"]  # both inputs; the flag won
    assert (from_file.min_length, from_file.docs_per_shard) == (0, 7)  # the file's values took effect


def test_help_and_version(capsys):
    from corpusmill import __version__

    assert cli_main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"corpusmill {__version__}"
    assert cli_main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("ccnet", "source books", "train-tokenizer", "run", "train", "report", "demo"):
        assert f"  {command} " in out


@pytest.mark.parametrize(
    "argv",
    [
        ["ccnet", "--steps", "--fuzzy-dedup"],
        ["source", "books", "--steps"],
        ["source", "c4", "--steps", "--mode", "crawl"],
    ]
    + [
        name.split() + ["--help"]
        for name in (
            "ccnet",
            "filter",
            "train-lm",
            "cutoffs",
            "train-classifier",
            "source wikipedia",
            "source books",
            "source arxiv",
            "source c4",
            "source github",
            "source stackexchange",
            "train-tokenizer",
            "run",
            "train",
            "export",
            "report",
            "demo",
        )
    ],
)
def test_a_pipelines_help_and_steps_import_no_beam(argv):
    """Every command's config and step list import no Beam (or torch): --help and --steps stay well under
    0.5 s (about 0.1-0.4 s here, against 2.2-2.6 s when the pipeline modules imported Beam)."""
    import subprocess
    import sys

    code = (
        "import sys; from corpusmill.cli.main import main; main(sys.argv[1:]); "
        "bad = [m for m in ('apache_beam', 'torch') if m in sys.modules]; sys.exit(3 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert proc.returncode in (0,), proc.stderr[-2000:]


def test_help_imports_no_beam():
    """`corpusmill --help` lists every command without importing Beam (or torch): it stays well under a second."""
    import subprocess
    import sys

    code = (
        "import sys; from corpusmill.cli import main; main(['--help']); "
        "bad = [m for m in ('apache_beam', 'torch') if m in sys.modules]; sys.exit(1 if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
