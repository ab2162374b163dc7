"""Run a BigQuery query on the launcher and page its rows into JSONL files that a pipeline reads.

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
    project: Optional[str] = None          # the project the query job runs in (default: the credentials')
    billing_project: Optional[str] = None  # quota / billing project for the API calls (default: project)
    location: Optional[str] = "US"         # where the job runs (the public github_repos dataset is in US)
    page_size: int = 10_000
    rows_per_file: int = 100_000
    retry_deadline: float = 600.0          # seconds of retries for a transient error while paging
    timeout: float = 60.0                  # seconds one request may take (a dead endpoint fails after this)
    endpoint: Optional[str] = None         # another API endpoint (an emulator, a test server)
    anonymous: bool = False                # no credentials (only for an endpoint that needs none)


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
        raise CorpusmillError("--bq-billing-project needs credentials (the quota project is set on them); "
                              "drop --bq-anonymous or --bq-billing-project")
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
        return bigquery.Client(project=opts.project, credentials=credentials, location=opts.location,
                               client_options=client_options or None)
    except Exception as exc:  # noqa: BLE001 - google.auth's DefaultCredentialsError, a missing project
        raise CorpusmillError(
            f"cannot create a BigQuery client ({type(exc).__name__}); set up Google credentials "
            f"(`gcloud auth application-default login`, or GOOGLE_APPLICATION_CREDENTIALS naming a "
            f"service-account key file) and pass --bq-project if they name no project") from None


class _ChunkWriter:
    """Writes rows to ``rows-00000.jsonl.gz``, ``rows-00001.jsonl.gz``, ... with a fixed gzip header."""

    def __init__(self, directory: str, rows_per_file: int):
        self.directory = directory
        self.rows_per_file = max(1, rows_per_file)
        self.files: List[str] = []
        self._ctx = None
        self._gz = None
        self._count = 0

    def write(self, row: dict) -> None:
        if self._gz is None or self._count >= self.rows_per_file:
            self._close_file()
            path = join(self.directory, f"rows-{len(self.files):05d}.jsonl.gz")
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


def export_query(client, sql: str, staging_dir: str, opts: BigQueryOptions,
                 job_id_prefix: str = "corpusmill_") -> ExportResult:
    """Run ``sql`` and write its rows to ``staging_dir/rows-NNNNN.jsonl.gz`` (see the module doc)."""
    from google.api_core import exceptions as api_exceptions
    from google.cloud import bigquery
    from requests import exceptions as http_exceptions

    transport_errors = (api_exceptions.GoogleAPIError, http_exceptions.RequestException)
    retry = bigquery.DEFAULT_RETRY.with_deadline(opts.retry_deadline)
    endpoint = opts.endpoint or "bigquery.googleapis.com"
    try:
        job = _bounded(lambda: client.query(sql, location=opts.location, job_id_prefix=job_id_prefix, retry=retry,
                                            timeout=opts.timeout), opts.timeout, "starting the query job")
        rows = _bounded(lambda: job.result(page_size=opts.page_size, retry=retry, timeout=opts.retry_deadline),
                        opts.retry_deadline + opts.timeout, f"waiting for job {job.job_id}")
    except NoAnswer as exc:
        raise CorpusmillError(f"BigQuery at {endpoint} gave no answer ({exc}; --bq-timeout {opts.timeout:g} s, "
                              f"--bq-retry-deadline {opts.retry_deadline:g} s); check the network and "
                              f"--bq-endpoint") from None
    except transport_errors as exc:
        raise CorpusmillError(
            f"BigQuery rejected the query (project {client.project}, location {opts.location}): "
            f"{_api_message(exc)}; check --bq-project/--bq-billing-project, --bq-dataset and --bq-location, "
            f"and that the credentials may run query jobs there") from None
    total = rows.total_rows
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
        error = (f"BigQuery job {job.job_id}: reading the results failed after {written} of {total} rows "
                 f"({_api_message(exc)}); the rows after that were not read. Rerun, or pass the rows "
                 f"exported so far ({staging_dir}) to --from local")
    if not error and total is not None and written < total:
        error = (f"BigQuery job {job.job_id} returned {written} of {total} rows: a page ended without a "
                 f"page token before totalRows were read; {total - written} rows are missing. Rerun the export")
    if error:
        writer.write({ERROR_KEY: error})
    writer.close()
    return ExportResult(job.job_id, total, written, writer.files, error)
