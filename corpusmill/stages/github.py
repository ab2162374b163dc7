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
import os
import re
from typing import List, Optional, Sequence

import apache_beam as beam

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import join
from corpusmill.dedup.exact import DropDuplicates, content_occurrence
from corpusmill.engine.line_dedup import FindDuplicateLines
from corpusmill.engine.run import Run
from corpusmill.engine.stage import (
    OutputOptions,
    add_output_options,
    format_stats,
    run_stage,
)
from corpusmill.filters import code as rules
from corpusmill.io.bigquery import BigQueryOptions, export_query, make_client
from corpusmill.io.code import ListCodeFiles, ReadCodeFile, split_local_inputs
from corpusmill.io.documents import ReadRawRecords

MODES = ("local", "bigquery")
DEFAULT_DATASET = "bigquery-public-data.github_repos"
LICENSE_PATTERNS = ("mit%", "bsd%", "apache%")
_DATASET = re.compile(r"^[A-Za-z0-9_.:-]+\.[A-Za-z0-9_]+$")


@dataclasses.dataclass
class GitHubConfig:
    output: str
    mode: str = "local"
    inputs: List[str] = dataclasses.field(default_factory=list)
    out: Optional[OutputOptions] = None
    max_bytes: int = rules.DEFAULT_MAX_BYTES
    max_line_length: int = 1000
    max_mean_line_length: float = 100.0
    min_alnum_share: float = 0.25
    min_alpha_per_token: float = 1.5
    strip_headers: bool = True
    # --from bigquery
    dataset: str = DEFAULT_DATASET
    limit: Optional[int] = None
    staging: Optional[str] = None
    bigquery: BigQueryOptions = dataclasses.field(default_factory=BigQueryOptions)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise CorpusmillError(f"--from {self.mode!r}: use one of {', '.join(MODES)}")
        if self.mode == "local" and not self.inputs:
            raise CorpusmillError("--from local needs --input (a directory of repositories or BigQuery JSONL)")
        if self.mode == "bigquery" and self.inputs:
            raise CorpusmillError("--from bigquery takes no --input (the rows come from the query); "
                                  "use --from local for exported JSONL")
        if not _DATASET.match(self.dataset):
            raise CorpusmillError(f"--bq-dataset {self.dataset!r}: give PROJECT.DATASET, e.g. {DEFAULT_DATASET}")
        if self.max_bytes <= 0:
            raise CorpusmillError("--max-bytes must be positive")
        if self.limit is not None and self.limit <= 0:
            raise CorpusmillError("--bq-limit must be positive")


def github_query(dataset: str = DEFAULT_DATASET, max_bytes: int = rules.DEFAULT_MAX_BYTES,
                 limit: Optional[int] = None) -> str:
    """RedPajama v1's query: contents JOIN files JOIN licenses, MIT/BSD/Apache, non-null text content.

    The extension allow-list is also pushed into the query (it only cuts what BigQuery sends; the
    pipeline applies the same list)."""
    exts = sorted(e[1:] for e in rules.ALLOWED_EXTENSIONS)
    names = sorted(rules.ALLOWED_NAMES)
    path_re = r"(\.(" + "|".join(re.escape(e) for e in exts) + r")|(^|/)(" + "|".join(names) + r"))$"
    licenses = " OR ".join(f"l.license LIKE '{p}'" for p in LICENSE_PATTERNS)
    sql = (
        "SELECT f.id AS id, f.repo_name AS repo_name, f.ref AS ref, f.path AS path, c.content AS content, "
        "c.size AS size, l.license AS license\n"
        f"FROM `{dataset}.files` AS f\n"
        f"JOIN `{dataset}.contents` AS c ON f.id = c.id\n"
        f"JOIN `{dataset}.licenses` AS l ON f.repo_name = l.repo_name\n"
        f"WHERE c.content IS NOT NULL AND NOT c.binary AND c.size <= {int(max_bytes)}\n"
        f"  AND ({licenses})\n"
        f"  AND REGEXP_CONTAINS(f.path, r'{path_re}')"
    )
    if limit:
        sql += f"\nLIMIT {int(limit)}"
    return sql


# -- the stage ---------------------------------------------------------------------------------------
def build_github(p: beam.Pipeline, run: Run, cfg: GitHubConfig, roots: Sequence[str],
                 exports: Sequence[str]) -> None:
    streams = []
    if exports:
        rows = p | "ReadExports" >> ReadRawRecords(exports)
        streams.append(run.step(rows, "parse", rules.ParseCodeRow()))
    if roots:
        streams.append(p | "ListFiles" >> ListCodeFiles(roots))
    items = streams[0] if len(streams) == 1 else tuple(streams) | "AllInputs" >> beam.Flatten()
    items = run.step(items, "extension", rules.ExtensionAllowList())
    items = run.step(items, "size", rules.SizeCap(cfg.max_bytes))
    docs = run.step(items, "read", ReadCodeFile(cfg.max_bytes))
    docs = run.step(docs, "max_line_length", rules.MaxLineLength(cfg.max_line_length))
    docs = run.step(docs, "mean_line_length", rules.MeanLineLength(cfg.max_mean_line_length))
    docs = run.step(docs, "alnum_share", rules.AlnumShare(cfg.min_alnum_share))
    docs = run.step(docs, "alpha_per_token", rules.AlphaPerToken(cfg.min_alpha_per_token))
    if cfg.strip_headers:
        docs = run.step(docs, "header", rules.StripLicenseHeader())
    marked = docs | "FindDuplicateFiles" >> FindDuplicateLines("first", content_occurrence)
    docs = run.step(marked, "exact_dedup", DropDuplicates("exact_dedup", "duplicate_content"))
    run.write(docs)


def run_github(cfg: GitHubConfig, beam_args: Sequence[str] = (), client=None) -> List[dict]:
    """Run the GitHub source to completion; returns stats.json's content.

    ``client``: a google-cloud-bigquery client to use instead of one built from ``cfg.bigquery``."""
    cfg.validate()
    out = cfg.out or OutputOptions(cfg.output)
    roots, exports = split_local_inputs(cfg.inputs) if cfg.mode == "local" else ([], [])

    def build(p, run):
        files = list(exports)
        if cfg.mode == "bigquery":
            bq = client or make_client(cfg.bigquery)
            staging = cfg.staging or join(cfg.output, "_bigquery")
            result = export_query(bq, github_query(cfg.dataset, cfg.max_bytes, cfg.limit), staging, cfg.bigquery,
                                  job_id_prefix="corpusmill_github_")
            print(f"BigQuery job {result.job_id}: {result.rows_written} of {result.total_rows} rows -> {staging}"
                  + (f" (INCOMPLETE: {result.error})" if result.error else ""))
            files = result.files
        if not files and not roots:
            raise CorpusmillError("the BigQuery query returned no rows; nothing to process")
        build_github(p, run, cfg, roots, files)

    return run_stage(out, beam_args, build)


# -- CLI ---------------------------------------------------------------------------------------------
def register_source(sources) -> None:
    parser = sources.add_parser(
        "github", help="GitHub code: RedPajama's BigQuery query or local repositories, quality filters, exact dedup",
        description="--from bigquery: run RedPajama's query over bigquery-public-data.github_repos (MIT/BSD/"
                    "Apache licenses) with google-cloud-bigquery (credentials from the usual Google "
                    "environment). --from local: directories of repositories and/or JSONL exported from "
                    "BigQuery. Then the extension allow-list, size cap, binary/UTF-8 check, line-length "
                    "and character-share filters, license-header removal and exact dedup of file contents. "
                    "Writes OUT/part-NNNNN.<ext> plus stats.json. Unrecognized options go to Beam.")
    parser.add_argument("--from", dest="mode", choices=MODES, required=True)
    parser.add_argument("--input", action="append", default=[], metavar="PATH",
                        help="--from local: a directory of repositories, or BigQuery JSONL(.gz) files; repeatable")
    add_output_options(parser)
    parser.add_argument("--max-bytes", type=int, default=rules.DEFAULT_MAX_BYTES,
                        help="files over this size are dropped unread (default: 1 MiB)")
    parser.add_argument("--max-line-length", type=int, default=1000, help="(default: 1000)")
    parser.add_argument("--max-mean-line-length", type=float, default=100.0, help="(default: 100)")
    parser.add_argument("--min-alnum-share", type=float, default=0.25, help="(default: 0.25)")
    parser.add_argument("--min-alpha-per-token", type=float, default=1.5, help="(default: 1.5)")
    parser.add_argument("--keep-headers", dest="strip_headers", action="store_false",
                        help="do not remove license/copyright headers")
    bq = parser.add_argument_group("--from bigquery")
    bq.add_argument("--bq-project", default=None, help="project the query job runs in (default: the credentials')")
    bq.add_argument("--bq-billing-project", default=None, help="quota/billing project for the API calls")
    bq.add_argument("--bq-dataset", default=DEFAULT_DATASET, help=f"(default: {DEFAULT_DATASET})")
    bq.add_argument("--bq-location", default="US", help="job location (default: US, where the dataset is)")
    bq.add_argument("--bq-limit", type=int, default=None, help="LIMIT rows (for a sample)")
    bq.add_argument("--bq-page-size", type=int, default=10_000, help="rows per results page (default: 10000)")
    bq.add_argument("--bq-staging", default=None, metavar="DIR",
                    help="where the rows are written as JSONL before the pipeline reads them; must be "
                         "readable by the workers, e.g. gs://... on Dataflow (default: OUT/_bigquery)")
    bq.add_argument("--bq-endpoint", default=None, help="BigQuery API endpoint (an emulator or test server)")
    bq.add_argument("--bq-anonymous", action="store_true", help="send no credentials (only with --bq-endpoint)")
    parser.set_defaults(func=_main, accepts_beam_args=True)


def _main(args, beam_args) -> int:
    if args.bq_anonymous and not args.bq_endpoint:
        raise CorpusmillError("--bq-anonymous only works with --bq-endpoint (BigQuery itself needs credentials)")
    cfg = GitHubConfig(
        output=args.output, mode=args.mode, inputs=args.input, out=OutputOptions.from_args(args),
        max_bytes=args.max_bytes, max_line_length=args.max_line_length,
        max_mean_line_length=args.max_mean_line_length, min_alnum_share=args.min_alnum_share,
        min_alpha_per_token=args.min_alpha_per_token, strip_headers=args.strip_headers,
        dataset=args.bq_dataset, limit=args.bq_limit, staging=args.bq_staging,
        bigquery=BigQueryOptions(project=args.bq_project, billing_project=args.bq_billing_project,
                                 location=args.bq_location, page_size=args.bq_page_size,
                                 endpoint=args.bq_endpoint, anonymous=args.bq_anonymous))
    print(format_stats(run_github(cfg, beam_args)))
    print(f"documents: {os.path.abspath(args.output) if '://' not in args.output else args.output}")
    return 0
