"""GitHub source: filters, header removal and exact dedup on real files (CPython stdlib and headers,
Debian JavaScript; tests/data/github), local JSONL exports, and the BigQuery path through the real
google-cloud-bigquery client talking to a loopback HTTP server that speaks the BigQuery REST API."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
import tracemalloc
from urllib.parse import parse_qs, urlparse

import pytest
from helpers import ANY_FAILURES, tree_digest
from source_outputs import dropped_records, failed_records, step_stats

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import list_output_files, read_output
from corpusmill.engine.step import check_accounting
from corpusmill.filters import code as rules
from corpusmill.io.code import ReadCodeFile
from corpusmill.pipelines.github import GitHubConfig, run_github

REPOS = os.path.join(os.path.dirname(__file__), "data", "github", "repos")


def _real(rel):
    with open(os.path.join(REPOS, rel), encoding="utf-8") as fh:
        return fh.read()


# -- pure filters ------------------------------------------------------------------------------------
def test_license_headers_are_removed_from_real_files():
    py = _real("cpython-email/email/base64mime.py")
    stripped = rules.strip_license_header(py, ".py")
    assert py.startswith("# Copyright") and stripped.startswith('"""Base64 content transfer encoding')
    assert py.endswith(stripped)
    h = _real("cpython-misc/Include/dynamic_annotations.h")
    stripped_h = rules.strip_license_header(h, ".h")
    assert h.startswith("/* Copyright") and "Copyright" not in stripped_h[:2000]
    assert stripped_h.startswith("/* This file defines dynamic annotations")
    scanner = _real("cpython-json/json/scanner.py")  # a docstring, no license header: unchanged
    assert rules.strip_license_header(scanner, ".py") == scanner
    assert (
        rules.strip_license_header("#!/bin/sh\n# Copyright 2020 X\n# MIT License\n\necho hi\n", ".sh")
        == "#!/bin/sh\necho hi\n"
    )


def test_a_header_after_a_modeline_or_short_comment_goes_and_markdown_headings_stay():
    """Issue 16: 9 of 183 system headers kept their copyright block because a modeline came first
    (ncurses' ``// * This makes emacs happy -*-Mode: C++;-*-``); a README's ``# License`` heading was cut."""
    py = _real("cpython-email/email/base64mime.py")  # a real header, after a modeline and a short note
    for lead in ("# -*- coding: utf-8 -*-\n", "# vim: set fileencoding=utf-8 :\n\n# Part of the email package.\n\n"):
        stripped = rules.strip_license_header(lead + py, ".py")
        assert stripped.startswith(lead.rstrip("\n")) and "Copyright" not in stripped[:1000]
        assert stripped.endswith(rules.strip_license_header(py, ".py"))
    h = _real("cpython-misc/Include/dynamic_annotations.h")
    modeline = "// * This makes emacs happy -*-Mode: C++;-*-\n"
    stripped_h = rules.strip_license_header(modeline + h, ".h")
    assert stripped_h.startswith(modeline) and "Copyright" not in stripped_h[:2000]
    assert stripped_h[len(modeline) :] == rules.strip_license_header(h, ".h")
    readme = "# Project\n\nA parser.\n\n# License\n\nMIT licensed; see LICENSE.\n"
    assert rules.strip_license_header(readme, ".md") == readme
    assert rules.strip_license_header("# Copyright 2020 X\n# MIT License\nname: x\n", ".yml") == "name: x\n"


def test_extension_allow_list_is_case_sensitive_and_knows_names():
    assert rules.is_allowed("src/a.py") and rules.is_allowed("x/Makefile") and rules.is_allowed("a.C")
    assert not rules.is_allowed("README.txt") and not rules.is_allowed("a.PY") and not rules.is_allowed("noext")


def test_a_100mb_file_is_rejected_without_being_read(tmp_path):
    huge = tmp_path / "huge.py"
    chunk = ("x = 1  # generated line\n" * 43690).encode()  # ~1 MiB
    with open(huge, "wb") as fh:
        for _ in range(100):
            fh.write(chunk)
    size = os.path.getsize(huge)
    assert size >= 100 * 10**6
    ref = rules.CodeFile(str(huge), "gen", "huge.py", size)
    assert rules.SizeCap()(ref).reason == "too_large"
    tracemalloc.start()
    verdict = ReadCodeFile(max_bytes=1 << 20)(ref)  # even if asked to read, it reads cap + 1 bytes
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert verdict.reason == "too_large" and peak < 8 << 20


# -- local repositories ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_input(tmp_path_factory):
    root = tmp_path_factory.mktemp("repos")
    shutil.copytree(REPOS, root, dirs_exist_ok=True)
    gif = os.path.join(REPOS, "cpython-misc", "Lib", "idlelib", "Icons", "python.gif")
    os.makedirs(root / "generated", exist_ok=True)
    shutil.copyfile(gif, root / "generated" / "logo_data.c")  # binary bytes under a code extension
    with open(root / "generated" / "huge.py", "wb") as fh:  # a 100 MB generated file
        line = b"VALUE = 'generated'\n" * 52429
        for _ in range(100):
            fh.write(line)
    return str(root)


@pytest.fixture(scope="module")
def local_run(local_input, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("gh") / "out")
    stats = run_github(GitHubConfig(output=out, mode="local", input=[local_input], write_dropped=True))
    return local_input, out, stats


def test_local_run_accounts_for_every_file(local_run):
    root, out, stats = local_run
    assert check_accounting(stats) == []
    n_files = sum(len(files) for _, _, files in os.walk(root))
    assert step_stats(stats, "extension")["read"] == n_files
    assert [s["step"] for s in stats] == [
        "extension",
        "size",
        "read",
        "max_line_length",
        "mean_line_length",
        "alnum_share",
        "alpha_per_token",
        "header",
        "exact_dedup",
    ]
    assert stats[-1]["kept"] == len(read_output(out))


def test_each_bad_file_is_dropped_for_its_reason(local_run):
    root, out, _ = local_run

    def names(step, reason):
        return sorted(os.path.relpath(r["location"], root) for r in dropped_records(out, step, reason))

    assert names("extension", "extension_not_allowed") == [
        "cpython-email/README.txt",
        "cpython-misc/Lib/idlelib/Icons/python.gif",
    ]
    assert names("size", "too_large") == ["generated/huge.py"]
    assert names("read", "binary") == ["generated/logo_data.c"]
    assert names("read", "not_utf8") == ["cpython-misc/Lib/test/encoded_modules/module_iso_8859_1.py"]
    minified = names("max_line_length", "max_line_length")
    assert minified == ["sphinx-static/_static/underscore.min.js", "sphinx-static/searchindex.js"]
    for rel in minified:  # they really have a line over 1000 characters
        assert max(map(len, _real(rel).splitlines())) > 1000
    assert names("mean_line_length", "mean_line_length") == ["cpython-misc/Lib/test/xmltestdata/expat224_utf8_bug.xml"]
    assert names("alnum_share", "alnum_share") == ["cpython-email/email/mime/__init__.py"]  # empty file
    assert "cpython-misc/Lib/colorsys.py" in names("alpha_per_token", "alpha_per_token")


def test_duplicates_across_repositories_keep_the_smallest_id(local_run):
    _, out, _ = local_run
    docs = read_output(out)
    texts = [d.text for d in docs]
    assert len(texts) == len(set(texts))
    dups = dropped_records(out, "exact_dedup", "duplicate_content")
    assert sorted(r["document"]["metadata"]["path"] for r in dups) == [
        "third_party/json/scanner.py",
        "third_party/json/tool.py",
    ]
    by_text = {d.text: d for d in docs}
    for r in dups:
        original = by_text[r["document"]["text"]]
        assert original.metadata["repo_name"] == "cpython-json" and original.id < r["document"]["id"]
        # the dropped copy names the one kept (issue 15: dedup samples show what they duplicate)
        meta = r["document"]["metadata"]
        assert (meta["duplicate_of"], meta["duplicate_of_location"]) == (original.id, original.location)


def test_headers_are_stripped_in_the_output(local_run):
    _, out, _ = local_run
    docs = {d.metadata["path"]: d for d in read_output(out)}
    assert docs["email/base64mime.py"].metadata["header_removed"] > 0
    assert not docs["email/base64mime.py"].text.startswith("#")
    assert docs["Include/dynamic_annotations.h"].text.startswith("/* This file defines")
    assert "header_removed" not in docs["json/scanner.py"].metadata


def test_multiprocess_runner_gives_the_same_bytes(local_run, tmp_path):
    root, out, _ = local_run
    out2 = str(tmp_path / "mp")
    run_github(
        GitHubConfig(output=out2, mode="local", input=[root], write_dropped=True),
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    )
    assert list_output_files(out) and tree_digest(out2) == tree_digest(out)


# -- JSONL exported from BigQuery --------------------------------------------------------------------
def _rows_from_repos():
    rows = []
    for repo in sorted(os.listdir(REPOS)):
        for dirpath, _, files in sorted(os.walk(os.path.join(REPOS, repo))):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                with open(path, "rb") as fh:
                    data = fh.read()
                try:
                    content = data.decode("utf-8")
                except UnicodeDecodeError:
                    continue  # BigQuery's contents table has no undecodable text either
                rel = os.path.relpath(path, os.path.join(REPOS, repo)).replace(os.sep, "/")
                rows.append(
                    {
                        "id": f"blob{len(rows)}",
                        "repo_name": f"example/{repo}",
                        "ref": "refs/heads/main",
                        "path": rel,
                        "content": content,
                        "size": len(data),
                        "license": "mit",
                    }
                )
    return rows


def test_local_jsonl_export_with_a_null_row_and_a_broken_line(local_run, tmp_path):
    _, dir_out, _ = local_run
    rows = _rows_from_repos()
    export = tmp_path / "github-export.jsonl"
    lines = [json.dumps(r) for r in rows]
    lines.insert(3, json.dumps({"repo_name": "example/x", "path": "a.py", "content": None}))
    lines.insert(5, '{"repo_name": "example/x", "path": "b.py", "content": "cut')
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = str(tmp_path / "out")
    stats = run_github(GitHubConfig(output=out, mode="local", input=[str(export)], **ANY_FAILURES))
    parse = step_stats(stats, "parse")
    assert parse["read"] == len(rows) + 2 and parse["dropped"] == {"no_content": 1} and parse["failed"] == 1
    failure = failed_records(out)[0]
    assert failure["step"] == "parse" and "github-export.jsonl@" in failure["location"]
    docs = read_output(out)
    assert all(d.url.startswith("https://github.com/example/") and d.metadata["license"] == "mit" for d in docs)
    # the same files give the same texts whichever way they come in
    assert sorted(d.text for d in docs) == sorted(d.text for d in read_output(dir_out))


# -- BigQuery through the real client, against a loopback server --------------------------------------
SCHEMA = {
    "fields": [
        {"name": n, "type": t, "mode": "NULLABLE"}
        for n, t in (
            ("id", "STRING"),
            ("repo_name", "STRING"),
            ("ref", "STRING"),
            ("path", "STRING"),
            ("content", "STRING"),
            ("size", "INTEGER"),
            ("license", "STRING"),
        )
    ]
}


class FakeBigQuery:
    """Speaks BigQuery's REST protocol over HTTP: jobs.insert (with dry runs, which answer the bytes the
    query would process, and maximumBytesBilled, which fails a job that would process more), jobs.get,
    jobs.getQueryResults (pageToken paging) and tabledata.list on the job's result table (startIndex)."""

    def __init__(self, rows, page_sizes=None, fail_insert=False, fail_page=None, stop_after=None, scan_bytes=3 << 30):
        self.rows = rows
        self.scan_bytes = scan_bytes  # what the query "processes" (the dry run's answer)
        self.dry_runs = 0
        self.ranges = []  # (startIndex, maxResults) of each tabledata.list request that starts a range
        self.page_sizes = list(page_sizes or [])  # serve pages of these sizes first (partial pages)
        self.fail_insert = fail_insert
        self.fail_page = fail_page  # index of the results page that answers 404
        self.stop_after = stop_after  # serve only this many rows, with no page token after them
        self.queries = []
        self.inserted = []  # jobs.insert request bodies
        self.requests = []
        self.pages_served = 0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.requests.append(("POST", self.path, dict(self.headers)))
                fake.inserted.append(body)
                if fake.fail_insert:
                    return self._send(
                        403,
                        {
                            "error": {
                                "code": 403,
                                "status": "PERMISSION_DENIED",
                                "message": "Access Denied: Project p: User does not have "
                                "bigquery.jobs.create permission",
                                "errors": [{"reason": "accessDenied", "message": "denied"}],
                            }
                        },
                    )
                config = body["configuration"]
                stats = {
                    "query": {"totalBytesProcessed": str(fake.scan_bytes)},
                    "totalBytesProcessed": str(fake.scan_bytes),
                }
                if config.get("dryRun"):
                    fake.dry_runs += 1
                    return self._send(
                        200,
                        {
                            "status": {"state": "DONE"},
                            "configuration": config,
                            "statistics": stats,
                            "jobReference": body.get("jobReference", {}),
                        },
                    )
                fake.queries.append(config["query"]["query"])
                ref = body["jobReference"]
                cap = config["query"].get("maximumBytesBilled")
                if cap is not None and int(cap) < fake.scan_bytes:
                    error = {
                        "reason": "bytesBilledLimitExceeded",
                        "message": f"Query exceeded limit for bytes billed: {cap}.",
                    }
                    return self._send(
                        200,
                        {
                            "jobReference": ref,
                            "configuration": config,
                            "status": {"state": "DONE", "errorResult": error, "errors": [error]},
                        },
                    )
                config["query"]["destinationTable"] = {"projectId": "p", "datasetId": "_anon", "tableId": "result1"}
                fake.config = config
                return self._send(
                    200,
                    {"jobReference": ref, "status": {"state": "DONE"}, "configuration": config, "statistics": stats},
                )

            def do_GET(self):  # noqa: N802
                url = urlparse(self.path)
                q = parse_qs(url.query)
                fake.requests.append(("GET", self.path, dict(self.headers)))
                job_id = url.path.rsplit("/", 1)[-1]
                ref = {"projectId": "p", "jobId": job_id, "location": "US"}
                if "/jobs/" in url.path:
                    return self._send(
                        200,
                        {
                            "jobReference": ref,
                            "status": {"state": "DONE"},
                            "configuration": getattr(fake, "config", {}),
                        },
                    )
                if url.path.endswith("/tables/result1/data"):  # tabledata.list: a range from startIndex
                    if "pageToken" not in q:
                        fake.ranges.append((int(q.get("startIndex", ["0"])[0]), int(q.get("maxResults", ["0"])[0])))
                    start = int(q["pageToken"][0][1:]) if "pageToken" in q else int(q.get("startIndex", ["0"])[0])
                else:
                    start = int(q.get("pageToken", ["o0"])[0][1:])
                asked = int(q.get("maxResults", ["1000"])[0])
                if asked == 0:
                    return self._send(
                        200,
                        {"jobReference": ref, "jobComplete": True, "schema": SCHEMA, "totalRows": str(len(fake.rows))},
                    )
                if fake.fail_page is not None and fake.pages_served == fake.fail_page:
                    return self._send(
                        404,
                        {
                            "error": {
                                "code": 404,
                                "message": f"Not found: Job p:US.{job_id}",
                                "errors": [{"reason": "notFound"}],
                            }
                        },
                    )
                size = fake.page_sizes.pop(0) if fake.page_sizes else asked
                end = min(start + min(size, asked), len(fake.rows))
                if fake.stop_after is not None:
                    end = min(end, fake.stop_after)
                fake.pages_served += 1
                page = {
                    "jobReference": ref,
                    "jobComplete": True,
                    "schema": SCHEMA,
                    "totalRows": str(len(fake.rows)),
                    "rows": [
                        {"f": [{"v": None if r[f["name"]] is None else str(r[f["name"]])} for f in SCHEMA["fields"]]}
                        for r in fake.rows[start:end]
                    ],
                }
                more = end < len(fake.rows) and (fake.stop_after is None or end < fake.stop_after)
                if more:
                    page["pageToken"] = f"o{end}"
                return self._send(200, page)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _bq_rows():
    rows = [
        r
        for r in _rows_from_repos()
        if r["repo_name"]
        in ("example/cpython-json", "example/vendored-json", "example/sphinx-static", "example/cpython-email")
    ]
    rows.append(
        {
            "id": "blobnull",
            "repo_name": "example/nulls",
            "ref": "refs/heads/main",
            "path": "gone.py",
            "content": None,
            "size": 0,
            "license": "apache-2.0",
        }
    )
    return rows


def _bq_config(out, endpoint, **kw):
    kw.setdefault("streams", 1)  # the result pages in order (test_bigquery_reads_row_ranges_at_once: in ranges)
    kw = {f"bq_{k}": v for k, v in kw.items()}
    return GitHubConfig(
        output=out,
        mode="bigquery",
        input=[],
        **ANY_FAILURES,
        bq_project="p",
        bq_location="US",
        bq_page_size=4,
        bq_endpoint=endpoint,
        bq_anonymous=endpoint is not None,
        bq_retry_deadline=2.0,
        **kw,
    )


def test_bigquery_rows_arrive_through_the_real_client_with_partial_pages(tmp_path):
    rows = _bq_rows()
    with FakeBigQuery(rows, page_sizes=[2, 1, 3]) as fake:
        out = str(tmp_path / "bq")
        stats = run_github(_bq_config(out, fake.endpoint))
    sql = fake.queries[0]
    assert "`bigquery-public-data.github_repos.contents`" in sql and "l.license LIKE 'mit%'" in sql
    assert "l.license LIKE 'apache%'" in sql and "c.content IS NOT NULL" in sql
    assert fake.pages_served > len(rows) // 4  # several pages, some partial
    assert all("authorization" not in {k.lower() for k in h} for _, _, h in fake.requests)
    parse = step_stats(stats, "parse")
    assert parse["read"] == len(rows) and parse["failed"] == 0 and parse["dropped"] == {"no_content": 1}
    assert check_accounting(stats) == []
    docs = read_output(out)
    served = {(r["repo_name"], r["path"]) for r in rows if r["content"] is not None}
    assert {(d.metadata["repo_name"], d.metadata["path"]) for d in docs} <= served
    assert "json/scanner.py" in {d.metadata["path"] for d in docs}
    assert step_stats(stats, "exact_dedup")["dropped"] == {"duplicate_content": 2}


def test_bigquery_error_response_is_a_clear_error(tmp_path):
    with FakeBigQuery(_bq_rows(), fail_insert=True) as fake:
        with pytest.raises(CorpusmillError, match="bigquery.jobs.create permission"):
            run_github(_bq_config(str(tmp_path / "err"), fake.endpoint))


def test_bigquery_project_location_and_dataset_options_reach_the_api(tmp_path):
    with pytest.raises(CorpusmillError, match="--bq-billing-project needs credentials"):
        run_github(_bq_config(str(tmp_path / "billing"), "http://127.0.0.1:9", billing_project="billing-q"))
    cfg = _bq_config(str(tmp_path / "opts"), None)
    cfg.bq_dataset, cfg.bq_limit = "mirror-project.gh_copy", 7
    cfg.bq_location = "EU"
    with FakeBigQuery(_bq_rows(), fail_insert=True) as fake:
        cfg.bq_endpoint, cfg.bq_anonymous = fake.endpoint, True
        with pytest.raises(CorpusmillError, match="location EU"):
            run_github(cfg)
    method, path, headers = fake.requests[0]
    assert method == "POST" and path.startswith("/bigquery/v2/projects/p/jobs")
    job = fake.inserted[0]
    assert job["jobReference"]["projectId"] == "p" and job["jobReference"]["location"] == "EU"
    sql = job["configuration"]["query"]["query"]
    assert "`mirror-project.gh_copy.files`" in sql and "`mirror-project.gh_copy.licenses`" in sql
    assert sql.rstrip().endswith("LIMIT 7") and "bigquery-public-data" not in sql


def test_bigquery_short_result_and_paging_error_keep_the_rows_received(tmp_path):
    rows = _bq_rows()
    with FakeBigQuery(rows, stop_after=5) as fake:
        out = str(tmp_path / "short")
        stats = run_github(_bq_config(out, fake.endpoint))
    parse = step_stats(stats, "parse")
    assert parse["read"] == 6 and parse["failed"] == 1
    assert f"returned 5 of {len(rows)} rows" in failed_records(out)[0]["error"]

    with FakeBigQuery(rows, fail_page=1) as fake:
        out = str(tmp_path / "fail")
        stats = run_github(_bq_config(out, fake.endpoint))
    parse = step_stats(stats, "parse")
    assert parse["read"] == 4 + 1 and parse["failed"] == 1  # the first page, then the error record
    error = failed_records(out)[0]["error"]
    assert f"after 4 of {len(rows)} rows" in error and "NotFound" in error


def test_cli_options_reach_the_stage(tmp_path, capsys):
    from corpusmill.cli import main as cli_main

    cap = 2000
    big = sum(
        rules.is_allowed(name) and os.path.getsize(os.path.join(d, name)) > cap
        for d, _, names in os.walk(REPOS)
        for name in names
    )
    assert big > 0
    out = tmp_path / "cli"
    assert (
        cli_main(
            [
                "source",
                "github",
                "--from",
                "local",
                "--input",
                REPOS,
                "--output",
                str(out),
                "--max-bytes",
                str(cap),
                "--no-strip-headers",
            ]
        )
        == 0
    )
    stats = json.loads((out / "_meta/stats.json").read_text())
    assert "header" not in [s["step"] for s in stats]
    assert step_stats(stats, "size")["dropped"] == {"too_large": big}
    assert cli_main(["source", "github", "--from", "bigquery", "--bq-anonymous", "--output", str(tmp_path / "x")]) == 2
    assert "--bq-anonymous only works with --bq-endpoint" in capsys.readouterr().err


@pytest.mark.parametrize(
    "step,rule",
    [
        ("max_line_length", rules.max_line_length),
        ("mean_line_length", rules.mean_line_length),
        ("alnum_share", rules.alnum_share),
        ("alpha_per_token", rules.alpha_per_token),
    ],
)
def test_each_code_rule_measure_is_profiled_for_kept_and_dropped_files(local_run, step, rule):
    """Issue 15: a code rule's measure, as a kept-vs-dropped distribution against its threshold."""
    from source_outputs import score_histogram

    from corpusmill.core.profile import bin_of, edges

    _, out, stats = local_run
    s = step_stats(stats, step)
    kept, dropped = score_histogram(out, step, step, "kept"), score_histogram(out, step, step, "dropped")
    assert sum(kept) == s["kept"] > 0 and sum(dropped or [0]) == sum(s["dropped"].values())
    expected = [0] * len(kept)
    for r in dropped_records(out, step, step):  # each dropped file, measured again, lands in its bin
        expected[bin_of(step, rule(r["document"]["text"]))] += 1
    assert (dropped or [0] * len(kept)) == expected
    with open(os.path.join(out, "_meta/profile.json"), encoding="utf-8") as fh:
        limit = json.load(fh)["steps"][step]["thresholds"][step]
    upper = step in ("max_line_length", "mean_line_length")
    bounds = edges(step)
    for i, n in enumerate(kept):  # no kept file lies wholly beyond the threshold
        if n:
            assert (bounds[i] <= limit) if upper else (bounds[i + 1] >= limit or i == len(kept) - 1)


def test_bigquery_dry_run_estimate_and_cost_cap(tmp_path, capsys, monkeypatch):
    """Issue 16: a dry run says what the query processes before anything runs; over the cap nothing runs;
    the cap is also set on the job, so BigQuery refuses it too."""
    from corpusmill.cli import main as cli_main

    rows = _bq_rows()
    with FakeBigQuery(rows, scan_bytes=2_500_000_000_000) as fake:  # the whole public dataset: ~2.5 TB
        with pytest.raises(
            CorpusmillError,
            match=r"will process 2\.27 TiB \(about \$14\.21 .* over "
            r"--bq-max-bytes-billed 100\.00 GiB; nothing was run",
        ):
            run_github(_bq_config(str(tmp_path / "capped"), fake.endpoint, limit=100))
        assert fake.dry_runs == 1 and fake.queries == []  # no query job was started
        assert fake.inserted[0]["configuration"]["dryRun"] is True
        # raised knowingly: the job carries the cap, and runs
        stats = run_github(_bq_config(str(tmp_path / "raised"), fake.endpoint, max_bytes_billed="3TB"))
        assert fake.inserted[-1]["configuration"]["query"]["maximumBytesBilled"] == str(3 * 10**12)
        assert step_stats(stats, "parse")["read"] == len(rows)
        assert "will process 2.27 TiB" in capsys.readouterr().err
        # --bq-dry-run: the estimate, nothing else (no job, no output)
        queries = len(fake.queries)
        assert (
            cli_main(
                [
                    "source",
                    "github",
                    "--from",
                    "bigquery",
                    "--bq-project",
                    "p",
                    "--bq-endpoint",
                    fake.endpoint,
                    "--bq-anonymous",
                    "--bq-dry-run",
                    "--output",
                    str(tmp_path / "dry"),
                ]
            )
            == 0
        )
        assert len(fake.queries) == queries and not (tmp_path / "dry").exists()
        assert "the query will process 2.27 TiB" in capsys.readouterr().err
    # BigQuery's own refusal: the job carries the cap, so a job that processes more than the dry run said
    # (the data grew in between) fails there
    import corpusmill.io.bigquery as gh  # (the GitHub stage imports it when it runs)

    with FakeBigQuery(rows, scan_bytes=5 << 30) as fake:
        estimate = gh.estimate_query

        def estimate_then_the_data_grows(*args):
            n = estimate(*args)
            fake.scan_bytes = 7 << 30
            return n

        monkeypatch.setattr(gh, "estimate_query", estimate_then_the_data_grows)
        with pytest.raises(CorpusmillError, match="Query exceeded limit for bytes billed"):
            run_github(_bq_config(str(tmp_path / "refused"), fake.endpoint, max_bytes_billed="6GiB"))
    # a size that is not one is refused with the forms accepted
    with pytest.raises(CorpusmillError, match="--bq-max-bytes-billed: 'lots' is not a size"):
        run_github(_bq_config(str(tmp_path / "bad"), "http://127.0.0.1:9", max_bytes_billed="lots"))


def test_bigquery_sample_percent_is_a_tablesample_on_contents(tmp_path):
    with FakeBigQuery(_bq_rows()) as fake:
        run_github(_bq_config(str(tmp_path / "s"), fake.endpoint, sample_percent=1))
    assert (
        "JOIN `bigquery-public-data.github_repos.contents` AS c TABLESAMPLE SYSTEM (1 PERCENT) ON f.id = c.id"
        in fake.queries[0]
    )


def test_bigquery_reads_row_ranges_at_once_with_the_same_rows(tmp_path):
    """The result table is read in --bq-streams ranges at the same time (tabledata.list from a
    startIndex), giving the same documents as reading the pages in order."""
    rows = _bq_rows() * 3  # (copies: more pages; exact dedup folds them)
    with FakeBigQuery(rows) as fake:
        serial = str(tmp_path / "serial")
        run_github(_bq_config(serial, fake.endpoint, streams=1))
    with FakeBigQuery(rows) as fake:
        ranged = str(tmp_path / "ranged")
        stats = run_github(_bq_config(ranged, fake.endpoint, streams=3))
    assert sorted(fake.ranges) == [(0, 4), (len(rows) // 3, 4), (2 * len(rows) // 3, 4)]
    assert step_stats(stats, "parse")["read"] == len(rows) and step_stats(stats, "parse")["failed"] == 0
    staged = sorted(os.listdir(os.path.join(ranged, "_bigquery")))
    assert [n[:8] for n in staged] == ["rows-000", "rows-001", "rows-002"]

    # the same documents and counts (their locations name the staged files, which differ)
    def docs(out):
        return sorted(
            (d.id, d.text, json.dumps({k: v for k, v in d.metadata.items()}, sort_keys=True)) for d in read_output(out)
        )

    assert docs(serial) == docs(ranged) and len(docs(ranged)) > 0
    strip = [
        {k: v for k, v in s.items() if k not in ("bytes_in", "bytes_out")}
        for s in json.load(open(os.path.join(serial, "_meta/stats.json")))
    ]
    assert strip == [{k: v for k, v in s.items() if k not in ("bytes_in", "bytes_out")} for s in stats]
