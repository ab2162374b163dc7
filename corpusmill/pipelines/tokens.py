"""The recipe's ``tokens`` stage: every source's documents tokenized once, streamed file by file.

    RUN/tokens/<source>/part-FFFFFF-KKKK.arrow   (id, source, token ids, UTF-8 bytes of the text)
    RUN/tokens/tokens.json                       the tokenizer's sha256 and vocabulary, counts per source

Each input file is one task (:class:`_TokenizeFile`): its documents are read in order, go through the
``read_<source>`` step, the ``domain`` step (``mix_by: domain``: the pool a document goes to) and the
``tokenize`` step (SentencePiece or the byte-level BPE, a batch at a time), and are written as they come
to that file's Arrow files, one per output group (the source, or the domain), at most ``TOKENS_PER_FILE``
documents each. No tokenized document crosses a shuffle: only the counts (a few numbers per file) and the
stats do, and the files of a given input are the same whichever worker wrote them. The shard writer
(corpusmill.pipelines.mix) draws and packs from these files.
"""

from __future__ import annotations

import dataclasses
import glob
import json
from typing import Dict, List, Optional, Sequence

import apache_beam as beam
import pyarrow as pa
from apache_beam.utils import shared

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import join
from corpusmill.core.stats import KEPT
from corpusmill.engine.passes import Outcomes, _local_size, piece_name
from corpusmill.engine.stage import OutputOptions, run_build
from corpusmill.engine.step import STATS, StepAccount, acquire_filter
from corpusmill.io.documents import ParseDocument, read_document_records
from corpusmill.io.files import atomic_write, write_text_atomic
from corpusmill.tokenize.tokenized import BATCH, SCHEMA, TOKENS_FILE, token_batch
from corpusmill.tokenize.tokenizer import Tokenize, TokenizedDoc, describe_model

TOKENS_PER_FILE = 100_000  # documents per tokens file
COUNTS = "counts"


@dataclasses.dataclass
class TokensConfig:
    files: Dict[str, List[str]]
    tokenizer: str
    output: str
    overwrite: bool = False
    domain_model: Optional[str] = None  # mix_by domain: documents go to the pool of their domain, not their source
    pools: Optional[List[str]] = None  # the domain pools the mixture has


class _TokenFile:
    """One Arrow IPC file of tokenized documents, written a batch at a time through an atomic name."""

    def __init__(self, path: str):
        self._context = atomic_write(path)
        self._writer = pa.ipc.new_file(self._context.__enter__(), SCHEMA)
        self._docs: List[TokenizedDoc] = []
        self.documents = 0

    def add(self, doc: TokenizedDoc) -> None:
        self._docs.append(doc)
        self.documents += 1
        if len(self._docs) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        part, self._docs = self._docs, []
        self._writer.write_batch(token_batch(part))

    def close(self) -> None:
        if self._docs or not self.documents:
            self._flush()
        self._writer.close()
        self._context.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        try:
            self._context.__exit__(type(exc), exc, exc.__traceback__)
        except BaseException:  # noqa: BLE001 - the temporary file is gone; the task's error is raised
            pass


class _TokenizeFile(beam.DoFn):
    """``(piece, path, source)`` -> that file's documents tokenized into ``OUT/<group>/part-PPPPPP-KKKK.arrow``;
    tagged: stats rows, sampled dropped documents, and ``(group, (documents, tokens, bytes))`` counts."""

    def __init__(self, out_dir: str, steps: Sequence[tuple], handle: shared.Shared):
        self.out_dir, self.steps, self.handle = out_dir, list(steps), handle
        self._accounts = {name: StepAccount(name, filt) for name, filt in self.steps}

    def setup(self):
        from corpusmill.core.progress import Tally

        self._holders = [acquire_filter(self.handle, name, filt) for name, filt in self.steps]
        for (name, _filt), holder in zip(self.steps, self._holders):
            self._accounts[name].live = holder.filter
        self._outcomes = Outcomes(self.out_dir, "tokens", False, 100)
        self._input = Tally("")

    def start_bundle(self):
        for account in self._accounts.values():
            account.start_bundle()
        self._counts: Dict[str, list] = {}

    def process(self, element):
        index, path, source = element
        self._outcomes.open_piece(index)
        files: Dict[str, list] = {}  # group -> [its file number, the open file]
        try:
            batch: list = []
            for pair in self._documents(path, source):
                batch.append(pair)
                if len(batch) >= Tokenize.batch_size:
                    self._tokenize(batch, index, files)
                    batch = []
            self._tokenize(batch, index, files)
            for _k, open_file in files.values():
                open_file.close()
            self._outcomes.close_piece()
        except BaseException as exc:
            for _k, open_file in files.values():
                open_file.abort(exc)
            self._outcomes.abort(exc)
            raise
        self._input.advance(_local_size(path))
        return []

    def _documents(self, path: str, source: str):
        read = self._accounts[f"read_{source}"]
        domain = self._accounts.get("domain")
        for record in read_document_records(path):
            outcome, value = read.route(record, read.verdict(record))
            if outcome != KEPT:
                self._outcomes.route(outcome, value)
                continue
            pair = (value, source)
            if domain is not None:
                outcome, value = domain.route(pair, domain.verdict(pair), read.size_out)
                if outcome != KEPT:
                    self._outcomes.route(outcome, value)
                    continue
                pair = value
            yield pair

    def _tokenize(self, batch: list, index: int, files: Dict[str, list]) -> None:
        if not batch:
            return
        account = self._accounts["tokenize"]
        for pair, verdict in zip(batch, account.verdicts(batch)):
            outcome, value = account.route(pair, verdict)
            if outcome != KEPT:
                self._outcomes.route(outcome, value)
                continue
            entry = files.get(value.source)
            if entry is None:
                entry = files[value.source] = [0, None]
            elif entry[1].documents >= TOKENS_PER_FILE:
                entry[1].close()
                entry[0], entry[1] = entry[0] + 1, None
            if entry[1] is None:
                entry[1] = _TokenFile(
                    join(self.out_dir, value.source, f"part-{piece_name(index)}-{entry[0]:04d}.arrow")
                )
            entry[1].add(value)
            acc = self._counts.setdefault(value.source, [0, 0, 0])
            acc[0] += 1
            acc[1] += value.n_tokens
            acc[2] += value.nbytes

    def finish_bundle(self):
        from apache_beam.transforms.window import GlobalWindows

        for account in self._accounts.values():
            for row in account.stats_rows():
                yield beam.pvalue.TaggedOutput(STATS, GlobalWindows.windowed_value(row))
        self._input.flush()
        for record in self._outcomes.sample():
            yield beam.pvalue.TaggedOutput("dropped", GlobalWindows.windowed_value(record))
        for group, counts in sorted(self._counts.items()):
            yield beam.pvalue.TaggedOutput(COUNTS, GlobalWindows.windowed_value((group, tuple(counts))))
        self._counts = {}


def write_tokens(cfg: TokensConfig, beam_args: Sequence[str] = ()) -> dict:
    """Tokenize every source once into ``OUT/<source>/part-FFFFFF-KKKK.arrow`` (id, source, tokens, bytes; in
    input order); ``OUT/tokens.json`` records the tokenizer and the counts. Returns tokens.json. With
    ``domain_model`` a ``domain`` step first names each document's pool (corpusmill.filters.domain), and
    the files are ``OUT/<domain>/``."""
    tok = describe_model(cfg.tokenizer)
    names = sorted(cfg.pools if cfg.domain_model else cfg.files)
    pieces = [
        (i, path, source)
        for i, (source, path) in enumerate((source, path) for source in sorted(cfg.files) for path in cfg.files[source])
    ]

    def write_summary(rows, out_dir):
        got = dict(rows)
        write_text_atomic(
            join(out_dir, TOKENS_FILE),
            json.dumps(
                {
                    "tokenizer_sha256": tok["sha256"],
                    "vocab_size": tok["vocab_size"],
                    "sources": {n: dict(zip(("documents", "tokens", "bytes"), got.get(n, (0, 0, 0)))) for n in names},
                },
                indent=2,
                sort_keys=True,
            )
            + "\n",
        )

    def build(p, run):
        from corpusmill.core.progress import expect_input

        steps = [(f"read_{source}", ParseDocument(source)) for source in sorted(cfg.files)]
        if cfg.domain_model:
            from corpusmill.filters.domain import DomainLabel

            steps.append(("domain", DomainLabel(cfg.domain_model, cfg.pools)))
        steps.append(("tokenize", Tokenize(cfg.tokenizer)))
        expect_input([path for _i, path, _s in pieces])
        out = (
            p
            | "Files" >> beam.Create(pieces)
            | "Tokenize"
            >> beam.ParDo(_TokenizeFile(run.out_dir, steps, shared.Shared())).with_outputs(STATS, "dropped", COUNTS)
        )
        run.streamed(steps, out[STATS], out["dropped"])
        (
            out[COUNTS]
            | "SumTokens" >> beam.CombinePerKey(beam.combiners.TupleCombineFn(sum, sum, sum))
            | "AllTokens" >> beam.combiners.ToList()
            | "WriteTokensSummary" >> beam.Map(write_summary, run.out_dir)
        )

    run_build(OutputOptions(output=cfg.output, overwrite=cfg.overwrite), beam_args, build)
    return read_tokens_summary(cfg.output)


def read_tokens_summary(tokens_dir: str) -> dict:
    try:
        with open(join(tokens_dir, TOKENS_FILE), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise CorpusmillError(
            f"{tokens_dir}: not a tokens directory of a corpusmill run ({TOKENS_FILE}: {exc})"
        ) from None


def token_files(tokens_dir: str, sources: Sequence[str], what: str = "source") -> Dict[str, List[str]]:
    """``{source: [its tokens files]}`` under a tokens directory (every named source must be there)."""
    out = {}
    for name in sources:
        found = sorted(glob.glob(join(tokens_dir, name, "part-*.arrow")))
        if not found and what == "domain":
            raise CorpusmillError(
                f"{tokens_dir}: the domain classifier put no document in domain {name!r}; give "
                f"sources with such documents, or take {name!r} out of the domains"
            )
        if not found:
            raise CorpusmillError(
                f"{tokens_dir}: no tokenized documents for source {name!r} (a source the run that "
                f"tokenized them did not have)"
            )
        out[name] = found
    return out
