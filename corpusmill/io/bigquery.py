"""Run a BigQuery query on the launcher and page its rows into JSONL files that a pipeline reads.

Cost first: :func:`estimate_query` asks BigQuery for a dry run (``configuration.dryRun``: nothing runs,
nothing is billed) and says how many bytes the query would process; :func:`export_query` refuses a query
over ``max_bytes_billed`` before it starts, and sets the same cap on the job (``maximumBytesBilled``), so
BigQuery itself refuses it too. A ``LIMIT`` does not make a query cheaper (BigQuery still scans every
column it reads); ``TABLESAMPLE`` does.

Rows in parallel: when the result has more than two pages, it is cut into ``streams`` row ranges that
are read at the same time, each by ``tabledata.list`` on the job's result table from its ``startIndex``,
each into its own files (``rows-SSS-NNNNN.jsonl.gz``); with one stream, the result pages are read in order.

Why not Beam's ``ReadFromBigQuery``: it exports through Google Cloud Storage (it needs a GCS temp
location and the ``apache-beam[gcp]`` extra) and runs the query once per pipeline attempt. Here the
real ``google-cloud-bigquery`` client runs the query once (``jobs.insert``), pages the result
(``jobs.getQueryResults`` with ``pageToken``) and writes ``rows-NNNNN.jsonl.gz`` files of
``rows_per_file`` rows to a staging directory (local or ``gs://``: anything Beam's FileSystems write).
The pipeline then reads those files in parallel like any JSONL export, so a rerun of the pipeline does
not rerun the query, and the launcher never holds more than one page in memory.

Errors: a query that BigQuery rejects (bad SQL, access denied, no credentials) raises a
:class:`CorpusmillError` before any pipeline work. A failure while paging (after retries), or a
result that ends before ``totalRows`` rows arrived (a partial page without a page token), keeps every
row already received and adds one error line to the export, which the ``parse`` step turns into a
dead-letter record that says how many rows are missing and why.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from typing import Any, List, Optional

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import join
from corpusmill.filters.code import EXPORT_ERROR_KEY as ERROR_KEY
from corpusmill.io.files import atomic_write


@dataclasses.dataclass
class BigQueryOptions:
    project: Optional[str] = None  # the project the query job runs in (default: the credentials')
    billing_project: Optional[str] = None  # quota / billing project for the API calls (default: project)
    location: Optional[str] = "US"  # where the job runs (the public github_repos dataset is in US)
    page_size: int = 10_000
    rows_per_file: int = 100_000
    retry_deadline: float = 600.0  # seconds of retries for a transient error while paging
    timeout: float = 60.0  # seconds one request may take (a dead endpoint fails after this)
    endpoint: Optional[str] = None  # another API endpoint (an emulator, a test server)
    anonymous: bool = False  # no credentials (only for an endpoint that needs none)
    max_bytes_billed: Optional[int] = 100 << 30  # refuse a query that would process more (None: no cap)
    streams: int = 4  # row ranges read at the same time


@dataclasses.dataclass
class ExportResult:
    job_id: str
    total_rows: Optional[int]
    rows_written: int
    files: List[str]
    error: str = ""


def make_client(opts: BigQueryOptions):
    """A google-cloud-bigquery client; credentials come from the usual Google environment (application
    default credentials: GOOGLE_APPLICATION_CREDENTIALS, gcloud, or the metadata server). They are
    never printed or logged."""
    from google.cloud import bigquery

    if opts.anonymous and opts.billing_project:
        raise CorpusmillError(
            "--bq-billing-project needs credentials (the quota project is set on them); "
            "drop --bq-anonymous or --bq-billing-project"
        )
    client_options = {}
    if opts.endpoint:
        client_options["api_endpoint"] = opts.endpoint
    if opts.billing_project:
        client_options["quota_project_id"] = opts.billing_project
    credentials = None
    if opts.anonymous:
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()
    try:
        return bigquery.Client(
            project=opts.project, credentials=credentials, location=opts.location, client_options=client_options or None
        )
    except Exception as exc:  # noqa: BLE001 - google.auth's DefaultCredentialsError, a missing project
        raise CorpusmillError(
            f"cannot create a BigQuery client ({type(exc).__name__}); set up Google credentials "
            f"(`gcloud auth application-default login`, or GOOGLE_APPLICATION_CREDENTIALS naming a "
            f"service-account key file) and pass --bq-project if they name no project"
        ) from None


class _ChunkWriter:
    """Writes rows to ``rows-00000.jsonl.gz``, ``rows-00001.jsonl.gz``, ... with a fixed gzip header."""

    def __init__(self, directory: str, rows_per_file: int, prefix: str = "rows"):
        self.directory = directory
        self.prefix = prefix
        self.rows_per_file = max(1, rows_per_file)
        self.files: List[str] = []
        self._ctx = None
        self._gz = None
        self._count = 0

    def write(self, row: dict) -> None:
        if self._gz is None or self._count >= self.rows_per_file:
            self._close_file()
            path = join(self.directory, f"{self.prefix}-{len(self.files):05d}.jsonl.gz")
            self._ctx = atomic_write(path)
            handle = self._ctx.__enter__()
            self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0, compresslevel=6)
            self.files.append(path)
            self._count = 0
        line = json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=_json_value)
        self._gz.write(line.encode("utf-8") + b"\n")
        self._count += 1

    def _close_file(self) -> None:
        if self._gz is not None:
            self._gz.close()
            self._ctx.__exit__(None, None, None)
            self._gz = self._ctx = None

    def close(self) -> None:
        self._close_file()


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _api_message(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {message}"[:1000]


class NoAnswer(TimeoutError):
    pass


def _bounded(fn, seconds: float, what: str):
    """``fn()``, or :class:`NoAnswer` after ``seconds``: the client's own deadlines do not bound a
    connection that is refused or never answers (it retries for minutes), so a watchdog does."""
    import threading

    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    worker = threading.Thread(target=target, name="corpusmill-bigquery", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise NoAnswer(f"{what}: no answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


ON_DEMAND_USD_PER_TIB = 6.25  # BigQuery on-demand query price (US multi-region, list price since 2023)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "p": 10**15,
    "pb": 10**15,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
    "pib": 1 << 50,
}


def parse_bytes(text: str) -> int:
    """``"100GiB"``, ``"2.5TB"``, ``"5000000"`` -> bytes (ValueError names what is accepted)."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(
            f"{text!r} is not a size; give a number of bytes with an optional unit "
            f"(KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 100GiB or 2.5TB"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def human_bytes(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def cost_usd(n: int) -> float:
    return n / (1 << 40) * ON_DEMAND_USD_PER_TIB


def _errors():
    from google.api_core import exceptions as api_exceptions
    from requests import exceptions as http_exceptions

    return api_exceptions.GoogleAPIError, http_exceptions.RequestException


def estimate_query(client, sql: str, opts: BigQueryOptions) -> int:
    """The bytes ``sql`` would process, from a dry run (nothing runs, nothing is billed)."""
    from google.cloud import bigquery

    config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False)
    endpoint = opts.endpoint or "bigquery.googleapis.com"
    try:
        job = _bounded(
            lambda: client.query(sql, job_config=config, location=opts.location, timeout=opts.timeout),
            opts.timeout,
            "the dry run",
        )
    except NoAnswer as exc:
        raise CorpusmillError(
            f"BigQuery at {endpoint} gave no answer ({exc}; --bq-timeout {opts.timeout:g} s); "
            f"check the network and --bq-endpoint"
        ) from None
    except _errors() as exc:
        raise CorpusmillError(
            f"BigQuery rejected the query's dry run (project {client.project}, location {opts.location}): "
            f"{_api_message(exc)}; check --bq-project/--bq-billing-project, --bq-dataset and --bq-location, "
            f"and that the credentials may run query jobs there"
        ) from None
    return int(job.total_bytes_processed or 0)


def check_cost(processed: int, opts: BigQueryOptions) -> str:
    """A line saying what the query will process and cost; CorpusmillError when it is over the cap."""
    line = (
        f"BigQuery dry run: the query will process {human_bytes(processed)} "
        f"(about ${cost_usd(processed):,.2f} at the on-demand ${ON_DEMAND_USD_PER_TIB}/TiB)"
    )
    if opts.max_bytes_billed is not None and processed > opts.max_bytes_billed:
        raise CorpusmillError(
            f"{line}, over --bq-max-bytes-billed {human_bytes(opts.max_bytes_billed)}; nothing was run. To run it, "
            f"pass --bq-max-bytes-billed {human_bytes(processed).replace(' ', '')} or more (a --bq-limit does not "
            f"scan less; --bq-sample-percent does)"
        )
    return line


def export_query(
    client, sql: str, staging_dir: str, opts: BigQueryOptions, job_id_prefix: str = "corpusmill_"
) -> ExportResult:
    """Run ``sql`` and write its rows to ``staging_dir/rows-*.jsonl.gz`` (see the module doc)."""
    from google.cloud import bigquery

    transport_errors = _errors()
    retry = bigquery.DEFAULT_RETRY.with_deadline(opts.retry_deadline)
    endpoint = opts.endpoint or "bigquery.googleapis.com"
    config = bigquery.QueryJobConfig(maximum_bytes_billed=opts.max_bytes_billed)
    try:
        job = _bounded(
            lambda: client.query(
                sql,
                job_config=config,
                location=opts.location,
                job_id_prefix=job_id_prefix,
                retry=retry,
                timeout=opts.timeout,
            ),
            opts.timeout,
            "starting the query job",
        )
        rows = _bounded(
            lambda: job.result(page_size=opts.page_size, retry=retry, timeout=opts.retry_deadline),
            opts.retry_deadline + opts.timeout,
            f"waiting for job {job.job_id}",
        )
    except NoAnswer as exc:
        raise CorpusmillError(
            f"BigQuery at {endpoint} gave no answer ({exc}; --bq-timeout {opts.timeout:g} s, "
            f"--bq-retry-deadline {opts.retry_deadline:g} s); check the network and "
            f"--bq-endpoint"
        ) from None
    except transport_errors as exc:
        raise CorpusmillError(
            f"BigQuery rejected the query (project {client.project}, location {opts.location}): "
            f"{_api_message(exc)}; check --bq-project/--bq-billing-project, --bq-dataset and --bq-location, "
            f"and that the credentials may run query jobs there"
        ) from None
    total = rows.total_rows
    destination = getattr(job, "destination", None)
    if opts.streams > 1 and total is not None and destination is not None and total > 2 * opts.page_size:
        return _export_in_ranges(client, job, rows, destination, staging_dir, opts, retry)
    writer = _ChunkWriter(staging_dir, opts.rows_per_file)
    written, error = 0, ""
    pages = iter(rows.pages)

    def next_page():
        page = next(pages, None)
        return None if page is None else list(page)

    try:
        while True:  # each page is one request: bounded like the others
            page = _bounded(next_page, opts.retry_deadline + opts.timeout, f"reading the results of job {job.job_id}")
            if page is None:
                break
            for row in page:
                writer.write(dict(row.items()))
                written += 1
    except (NoAnswer, *transport_errors) as exc:
        error = (
            f"BigQuery job {job.job_id}: reading the results failed after {written} of {total} rows "
            f"({_api_message(exc)}); the rows after that were not read. Rerun, or pass the rows "
            f"exported so far ({staging_dir}) to --from local"
        )
    if not error and total is not None and written < total:
        error = (
            f"BigQuery job {job.job_id} returned {written} of {total} rows: a page ended without a "
            f"page token before totalRows were read; {total - written} rows are missing. Rerun the export"
        )
    if error:
        writer.write({ERROR_KEY: error})
    writer.close()
    return ExportResult(job.job_id, total, written, writer.files, error)


def _export_in_ranges(client, job, rows, destination, staging_dir: str, opts: BigQueryOptions, retry) -> ExportResult:
    """The result table read in ``opts.streams`` row ranges at once (``tabledata.list`` from a
    ``startIndex``), each into its own files; a range that fails or ends early keeps its rows and adds
    one error line naming the rows it is missing."""
    from concurrent.futures import ThreadPoolExecutor

    transport_errors = _errors()
    total = rows.total_rows
    streams = min(opts.streams, -(-total // opts.page_size))
    bounds = [total * i // streams for i in range(streams + 1)]

    def read_range(i: int):
        start, end = bounds[i], bounds[i + 1]
        writer = _ChunkWriter(staging_dir, opts.rows_per_file, prefix=f"rows-{i:03d}")
        written, error = 0, ""
        try:
            it = client.list_rows(
                destination,
                selected_fields=rows.schema,
                start_index=start,
                max_results=end - start,
                page_size=opts.page_size,
                retry=retry,
                timeout=opts.timeout,
            )
            pages = iter(it.pages)

            def next_page():
                page = next(pages, None)
                return None if page is None else list(page)

            while True:
                page = _bounded(
                    next_page, opts.retry_deadline + opts.timeout, f"reading rows {start}-{end} of job {job.job_id}"
                )
                if page is None:
                    break
                for row in page:
                    writer.write(dict(row.items()))
                    written += 1
        except (NoAnswer, *transport_errors) as exc:
            error = (
                f"BigQuery job {job.job_id}: reading rows {start}-{end} failed after {written} of them "
                f"({_api_message(exc)}); the rest of that range was not read. Rerun, or pass the rows exported "
                f"so far ({staging_dir}) to --from local"
            )
        if not error and written < end - start:
            error = (
                f"BigQuery job {job.job_id}: rows {start}-{end} ended after {written} of {end - start} rows; "
                f"{end - start - written} rows are missing. Rerun the export"
            )
        if error:
            writer.write({ERROR_KEY: error})
        writer.close()
        return written, writer.files, error

    with ThreadPoolExecutor(max_workers=streams, thread_name_prefix="corpusmill-bigquery") as pool:
        results = list(pool.map(read_range, range(streams)))
    files = [f for _, fs, _ in results for f in fs]
    errors = "; ".join(e for _, _, e in results if e)
    return ExportResult(job.job_id, total, sum(n for n, _, _ in results), files, errors)
