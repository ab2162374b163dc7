"""The GitHub source: ``corpusmill source github --from bigquery|local --output DIR``.

    [parse] -> extension -> size -> read -> max_line_length -> mean_line_length -> alnum_share
            -> alpha_per_token -> header -> exact_dedup -> write

- ``--from local``: directories of repositories (each top directory is a repository; files are
  listed per repository on the workers, never read before the extension and size checks) and/or
  JSONL files exported from BigQuery (``parse``).
- ``--from bigquery``: the RedPajama query (files JOIN contents JOIN licenses; MIT, BSD and Apache
  licenses; non-null, non-binary content) runs on the launcher with google-cloud-bigquery and its rows
  are paged into JSONL files under ``--bq-staging`` (default OUT/_bigquery), which the pipeline then
  reads like a local export (see corpusmill.io.bigquery for why).
- ``exact_dedup``: a shuffle on the hash of the file content (after header removal) across the whole
  input; the file with the smallest document id stays.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from typing import TYPE_CHECKING, List, Optional, Sequence

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import join
from corpusmill.core.outputs import OutputOptions, show_documents
from corpusmill.core.stage import Stage
from corpusmill.core.steps import CONTENT, DOC, READ, Step
from corpusmill.dedup.exact import DropDuplicates, content_occurrence
from corpusmill.filters import code as rules
from corpusmill.pipelines import lazy, listed

if TYPE_CHECKING:  # annotations only
    import apache_beam as beam

    from corpusmill.engine.run import Run
    from corpusmill.io.bigquery import BigQueryOptions

MODES = ("local", "bigquery")
DEFAULT_DATASET = "bigquery-public-data.github_repos"
LICENSE_PATTERNS = ("mit%", "bsd%", "apache%")
_DATASET = re.compile(r"^[A-Za-z0-9_.:-]+\.[A-Za-z0-9_]+$")


@dataclasses.dataclass(kw_only=True)
class GitHubConfig(OutputOptions):
    mode: str = option(
        required=True,
        choices=MODES,
        aliases=("--from",),
        help="local: directories of repositories and/or JSONL exported from BigQuery; bigquery: "
        "RedPajama's query over bigquery-public-data.github_repos",
    )
    input: List[str] = option(default_factory=list, metavar="PATH", help="local: repository directories or JSONL")
    max_bytes: int = option(rules.DEFAULT_MAX_BYTES, min=1, help="files larger than this are dropped")
    max_line_length: int = option(1000, min=1, help="files with a longer line are dropped")
    max_mean_line_length: float = option(100.0, above=0.0, help="files with a longer mean line are dropped")
    min_alnum_share: float = option(0.25, min=0.0, max=1.0, help="minimum share of alphanumeric characters")
    min_alpha_per_token: float = option(1.5, min=0.0, help="minimum alphabetic characters per token")
    strip_headers: bool = option(
        True, help="remove licence/copyright header comments (--no-strip-headers keeps them)", aliases=()
    )
    # mode bigquery
    bq_project: Optional[str] = option(None, help="bigquery: project the query job runs in (default: the credentials')")
    bq_billing_project: Optional[str] = option(None, help="bigquery: quota/billing project for the API calls")
    bq_dataset: str = option(DEFAULT_DATASET, help="bigquery: PROJECT.DATASET of the GitHub tables")
    bq_location: str = option("US", help="bigquery: job location (the public dataset is in US)")
    bq_limit: Optional[int] = option(None, min=1, help="bigquery: LIMIT rows (for a sample)")
    bq_page_size: int = option(10_000, min=1, help="bigquery: rows per results page")
    bq_staging: Optional[str] = option(
        None, metavar="DIR", help="bigquery: where the rows are staged as JSONL (default: OUT/_bigquery)"
    )
    bq_endpoint: Optional[str] = option(None, help="bigquery: API endpoint (an emulator or test server)")
    bq_anonymous: bool = option(False, help="bigquery: send no credentials (only with --bq-endpoint)")
    bq_retry_deadline: float = option(
        600.0, above=0.0, help="bigquery: seconds of retries for a transient error while paging"
    )
    bq_rows_per_file: int = option(100_000, min=1, help="bigquery: rows per staged JSONL file")
    bq_timeout: float = option(
        60.0,
        above=0.0,
        help="bigquery: seconds the query request may take before the run stops with a message (a dead endpoint)",
    )
    bq_max_bytes_billed: str = option(
        "100GiB",
        metavar="SIZE",
        help="bigquery: refuse a query that would process more (a dry run says before "
        "anything runs; the whole public dataset is about 2.5 TB: raise this "
        "knowingly); 'none' for no cap",
    )
    bq_sample_percent: Optional[float] = option(
        None,
        above=0.0,
        max=100.0,
        help="bigquery: read a random PERCENT of the contents table (TABLESAMPLE: it scans less, unlike --bq-limit)",
    )
    bq_streams: int = option(4, min=1, help="bigquery: row ranges of the result read at the same time")
    bq_dry_run: bool = option(False, help="bigquery: print what the query would process and cost, run nothing")

    @property
    def bigquery(self) -> BigQueryOptions:
        from corpusmill.io.bigquery import BigQueryOptions

        return BigQueryOptions(
            project=self.bq_project,
            billing_project=self.bq_billing_project,
            location=self.bq_location,
            page_size=self.bq_page_size,
            endpoint=self.bq_endpoint,
            anonymous=self.bq_anonymous,
            retry_deadline=self.bq_retry_deadline,
            rows_per_file=self.bq_rows_per_file,
            timeout=self.bq_timeout,
            max_bytes_billed=self.max_bytes_billed,
            streams=self.bq_streams,
        )

    @property
    def max_bytes_billed(self) -> Optional[int]:
        from corpusmill.io.bigquery import parse_bytes

        if str(self.bq_max_bytes_billed).strip().lower() == "none":
            return None
        try:
            return parse_bytes(self.bq_max_bytes_billed)
        except ValueError as exc:
            raise CorpusmillError(f"--bq-max-bytes-billed: {exc}") from None

    def validate(self) -> None:
        if self.bq_anonymous and not self.bq_endpoint:
            raise CorpusmillError("--bq-anonymous only works with --bq-endpoint (BigQuery itself needs credentials)")
        if self.mode == "local" and not self.input:
            raise CorpusmillError("--from local needs --input (a directory of repositories or BigQuery JSONL)")
        if self.mode == "bigquery" and self.input:
            raise CorpusmillError(
                "--from bigquery takes no --input (the rows come from the query); use --from local for exported JSONL"
            )
        self.max_bytes_billed  # noqa: B018 - a bad size is refused before any work
        if self.bq_dry_run and self.mode != "bigquery":
            raise CorpusmillError("--bq-dry-run estimates the BigQuery query: it needs --from bigquery")
        if not _DATASET.match(self.bq_dataset):
            raise CorpusmillError(f"--bq-dataset {self.bq_dataset!r}: give PROJECT.DATASET, e.g. {DEFAULT_DATASET}")


def github_query(
    dataset: str = DEFAULT_DATASET,
    max_bytes: int = rules.DEFAULT_MAX_BYTES,
    limit: Optional[int] = None,
    sample_percent: Optional[float] = None,
) -> str:
    """RedPajama v1's query: contents JOIN files JOIN licenses, MIT/BSD/Apache, non-null text content.

    The extension allow-list is also pushed into the query (it only cuts what BigQuery sends; the
    pipeline applies the same list). ``sample_percent``: ``TABLESAMPLE SYSTEM`` on the contents table,
    which is what a query of this dataset pays for (a LIMIT is applied after the scan)."""
    sample = f" TABLESAMPLE SYSTEM ({sample_percent:g} PERCENT)" if sample_percent else ""
    exts = sorted(e[1:] for e in rules.ALLOWED_EXTENSIONS)
    names = sorted(rules.ALLOWED_NAMES)
    path_re = r"(\.(" + "|".join(re.escape(e) for e in exts) + r")|(^|/)(" + "|".join(names) + r"))$"
    licenses = " OR ".join(f"l.license LIKE '{p}'" for p in LICENSE_PATTERNS)
    sql = (
        "SELECT f.id AS id, f.repo_name AS repo_name, f.ref AS ref, f.path AS path, c.content AS content, "
        "c.size AS size, l.license AS license\n"
        f"FROM `{dataset}.files` AS f\n"
        f"JOIN `{dataset}.contents` AS c{sample} ON f.id = c.id\n"
        f"JOIN `{dataset}.licenses` AS l ON f.repo_name = l.repo_name\n"
        f"WHERE c.content IS NOT NULL AND NOT c.binary AND c.size <= {int(max_bytes)}\n"
        f"  AND ({licenses})\n"
        f"  AND REGEXP_CONTAINS(f.path, r'{path_re}')"
    )
    if limit:
        sql += f"\nLIMIT {int(limit)}"
    return sql


# -- the stage ---------------------------------------------------------------------------------------
def steps(cfg: GitHubConfig) -> List[Step]:
    """The stage's steps, in order (``parse`` reads exported and BigQuery rows; repository trees are
    listed file by file and join at ``extension``)."""
    out = [
        Step("parse", READ, rules.ParseCodeRow, "an exported or BigQuery row -> a code file"),
        Step("extension", DOC, rules.ExtensionAllowList, "RedPajama's allowed extensions"),
        Step("size", DOC, lambda: rules.SizeCap(cfg.max_bytes), "files over --max-bytes dropped"),
        Step(
            "read",
            READ,
            lambda: lazy("corpusmill.io.code", "ReadCodeFile")(cfg.max_bytes),
            "a file of a repository tree -> a document",
        ),
        Step("max_line_length", DOC, lambda: rules.MaxLineLength(cfg.max_line_length), "longest line"),
        Step("mean_line_length", DOC, lambda: rules.MeanLineLength(cfg.max_mean_line_length), "mean line length"),
        Step("alnum_share", DOC, lambda: rules.AlnumShare(cfg.min_alnum_share), "share of alphanumeric characters"),
        Step("alpha_per_token", DOC, lambda: rules.AlphaPerToken(cfg.min_alpha_per_token), "letters per token"),
    ]
    if cfg.strip_headers:
        out.append(Step("header", DOC, rules.StripLicenseHeader, "licence header comments stripped"))
    out.append(
        Step(
            "exact_dedup",
            CONTENT,
            lambda: DropDuplicates("exact_dedup", "duplicate_content"),
            "one file per exact text (the smallest id)",
            prepare=lambda: (
                "FindDuplicateFiles",
                lazy("corpusmill.engine.line_dedup", "MarkDuplicates")(
                    content_occurrence, keep=lazy("corpusmill.engine.line_dedup", "by_value"), name_kept=True
                ),
            ),
        )
    )
    return out


def build_github(p: beam.Pipeline, run: Run, cfg: GitHubConfig, roots: Sequence[str], exports: Sequence[str]) -> None:
    import apache_beam as beam

    from corpusmill.engine.stage import apply_steps
    from corpusmill.io.code import ListCodeFiles
    from corpusmill.io.documents import ReadRawRecords

    parse, *rest = steps(cfg)
    streams = []
    if exports:
        rows = p | "ReadExports" >> ReadRawRecords(exports)
        streams.append(apply_steps(run, rows, [parse]))
    if roots:
        streams.append(p | "ListFiles" >> ListCodeFiles(roots))
    items = streams[0] if len(streams) == 1 else tuple(streams) | "AllInputs" >> beam.Flatten()
    run.write(apply_steps(run, items, rest))


def run_github(cfg: GitHubConfig, beam_args: Sequence[str] = (), client=None) -> List[dict]:
    """Run the GitHub source to completion; returns stats.json's content.

    ``client``: a google-cloud-bigquery client to use instead of one built from ``cfg.bigquery``."""
    from corpusmill.engine.stage import run_build
    from corpusmill.io.bigquery import check_cost, estimate_query, export_query, make_client
    from corpusmill.io.code import split_local_inputs

    cfg.validate()
    roots, exports = split_local_inputs(cfg.input) if cfg.mode == "local" else ([], [])

    sql = github_query(cfg.bq_dataset, cfg.max_bytes, cfg.bq_limit, cfg.bq_sample_percent)
    if cfg.mode == "bigquery":  # what the query costs, before anything runs
        client = client or make_client(cfg.bigquery)
        processed = estimate_query(client, sql, cfg.bigquery)
        if cfg.bq_dry_run:
            opts = dataclasses.replace(cfg.bigquery, max_bytes_billed=None)
            print(check_cost(processed, opts), file=sys.stderr, flush=True)
            return []
        print(check_cost(processed, cfg.bigquery), file=sys.stderr, flush=True)

    def build(p, run):

        files = list(exports)
        if cfg.mode == "bigquery":
            staging = cfg.bq_staging or join(run.out_dir, "_bigquery")
            result = export_query(client, sql, staging, cfg.bigquery, job_id_prefix="corpusmill_github_")
            print(
                f"BigQuery job {result.job_id}: {result.rows_written} of {result.total_rows} rows -> {staging}"
                + (f" (INCOMPLETE: {result.error})" if result.error else "")
            )
            files = result.files
        if not files and not roots:
            raise CorpusmillError("the BigQuery query returned no rows; nothing to process")
        build_github(p, run, cfg, roots, files)

    return run_build(cfg, beam_args, build)


STAGE = Stage(
    name="github",
    config=GitHubConfig,
    run=run_github,
    steps=listed(steps),
    show=show_documents,
    documents=True,
    description="--mode bigquery (or --from bigquery): run RedPajama's query over bigquery-public-data.github_repos "
    "(MIT/BSD/Apache licenses) with google-cloud-bigquery (credentials from the usual Google "
    "environment). --mode local: directories of repositories and/or JSONL exported from BigQuery. Then "
    "the extension allow-list, size cap, binary/UTF-8 check, line-length and character-share filters, "
    "license-header removal and exact dedup of file contents. Writes OUT/part-NNNNN.<ext> plus "
    "stats.json. Other options must be Beam pipeline options.",
)
