"""The recipe's token counts and shard writer on Beam (``corpusmill run`` runs them; see docs/mixing.md).

Tokenize once: the recipe's ``tokens`` stage (:mod:`corpusmill.pipelines.tokens`) tokenizes every
source's documents file by file and stores them; both pipelines here read those stored tokens (no
SentencePiece), each with its own output directory, stats.json and ``_SUCCESS``:

- :func:`count_tokens`: documents, tokens (with BOS/EOS) and bytes per source -> ``counts.json``;
  :func:`corpusmill.mixers.plan.plan_mixture` turns the counts into the plan (and checks the budget).
- :func:`write_mixed_shards`: draw every source's passes (whole passes plus an exact fraction, chosen by a
  hash of (seed, document id, pass)), assign each copy to a packing group by that hash, sort and pack each
  group into rows of ``seq_len + 1`` with document starts, number the rows, permute them with a keyed
  bijection and write shards of ``rows_per_shard`` rows with :func:`corpusmill.tokenize.shards.write_shard`;
  ``manifest.json`` records the shards, their sha256, the tokenizer's sha256 and the achieved mixture next
  to the target.

Given document directories instead of stored tokens (``files``, no ``tokens``), they tokenize as they read
(a ``tokenize`` step), as the benches and tests that call them directly do. Nothing depends on bundle
order: same documents, tokenizer and manifest give byte-identical shards on any runner. These are the
recipe's internal stages, not commands.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from typing import Dict, List, Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import join, list_output_files
from corpusmill.engine.run import Run
from corpusmill.engine.stage import OutputOptions, run_build
from corpusmill.io.documents import ParseDocument, ReadRawRecords, create_items
from corpusmill.io.files import check_outputs_complete, expand_inputs, write_text_atomic
from corpusmill.mixers.manifest import matches_groups
from corpusmill.mixers.plan import (
    MixPlan,
    bucket_of,
    check_mixture,
    cut_in_bucket,
    doc_hash,
    find_boundaries,
    held_out,
    in_fraction,
    row_layout,
    row_positions,
)
from corpusmill.pipelines.held_out import (  # noqa: F401 (EVAL_DIR: the eval sets' folder, named here too)
    EVAL_DIR,
    EVAL_GROUP_TOKENS,
    MIN_EVAL_ROWS,
    _without_contaminated,
    _write_eval_group,
)
from corpusmill.pipelines.tokens import (  # noqa: E402,F401 (the recipe's tokens stage: corpusmill.pipelines.tokens)
    TokensConfig,
    read_tokens_summary,
    token_files,
    write_tokens,
)
from corpusmill.tokenize.shards import mark_complete, pack_documents, write_dataset_card, write_manifest, write_shard
from corpusmill.tokenize.tokenized import ReadTokens, decode_tokens
from corpusmill.tokenize.tokenizer import (
    MODEL_FILE,
    Tokenize,
    describe_model,
    sha256_file,
)

COUNTS_FILE = "counts.json"


# ---------------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------------
def source_files(name: str, location: str, groups=None) -> List[str]:
    """The document files of one source: a corpusmill output directory (``part-*`` files, optionally
    only some group sub-directories) or a glob of document files."""
    if os.path.isdir(location):
        files = [f for f in list_output_files(location) if matches_groups(os.path.relpath(f, location), groups)]
        if not files and groups:
            subdirs = sorted(
                d
                for d in os.listdir(location)
                if os.path.isdir(os.path.join(location, d)) and not d.startswith(("_", "."))
            )
            raise CorpusmillError(
                f"sources.{name}.groups: {', '.join(groups)} match no sub-directory with document "
                f"files (part-*) under {location}; its sub-directories: "
                f"{', '.join(subdirs) or 'none (remove groups)'}"
            )
        if not files:
            raise CorpusmillError(f"sources.{name}: no document files (part-*) under {location}")
        try:
            check_outputs_complete(files)  # a half-written output is refused, never mixed
        except CorpusmillError as exc:
            raise CorpusmillError(f"sources.{name}: {exc}") from None
        return files
    try:
        return expand_inputs([location])
    except CorpusmillError as exc:
        if "matches no files" not in str(exc):
            raise CorpusmillError(f"sources.{name}: {exc}") from None
        raise CorpusmillError(f"sources.{name}: {location} matches no document files") from None


def read_sources(p: beam.Pipeline, run: Run, files: Dict[str, List[str]]) -> beam.PCollection:
    """``(Document, source name)`` for every document of every source; one ``read_<source>`` step each."""
    parts = []
    for name in sorted(files):
        raw = p | f"Read_{name}" >> ReadRawRecords(files[name])
        docs = run.step(raw, f"read_{name}", ParseDocument(name))
        parts.append(docs | f"Name_{name}" >> beam.Map(lambda d, n=name: (d, n)))
    return parts[0] if len(parts) == 1 else tuple(parts) | "AllSources" >> beam.Flatten()


def tokenized(p: beam.Pipeline, run: Run, cfg) -> beam.PCollection:
    """:class:`TokenizedDoc` of every source: read from the stored tokens (``cfg.tokens``, no
    SentencePiece), or tokenized from the documents (a ``tokenize`` step)."""
    if not cfg.tokens:
        return run.step(read_sources(p, run, cfg.files), "tokenize", Tokenize(cfg.tokenizer))
    paths = sorted(f for fs in cfg.tokens.values() for f in fs)
    keep = set(cfg.tokens)

    def read(path):
        with FileSystems.open(path, compression_type="uncompressed") as fh:
            data = fh.read()
        for doc in decode_tokens(data):
            if doc.source in keep:
                yield doc

    docs = create_items(p, paths, label="TokenFiles", spread=True) | "ReadTokens" >> beam.FlatMap(
        lambda box: read(box.value)
    )
    return run.step(docs, "read_tokens", ReadTokens())


def _sum_tuples():
    return beam.combiners.TupleCombineFn(sum, sum, sum)


# ---------------------------------------------------------------------------------------------------
# stage 1: token counts
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class CountConfig:
    files: Dict[str, List[str]]
    tokenizer: str
    output: str
    overwrite: bool = False
    holdout: Dict[str, float] = dataclasses.field(default_factory=dict)  # source -> share held out
    seed: int = 0
    tokens: Optional[Dict[str, List[str]]] = None  # tokenized documents (write_tokens): no SentencePiece here


def count_tokens(cfg: CountConfig, beam_args: Sequence[str] = ()) -> dict:
    """Run the count stage; returns counts.json's content. A source's held-out documents are counted
    apart (``holdout_documents``, ``holdout_tokens``): the plan mixes only the others."""
    tok = describe_model(cfg.tokenizer)
    names = sorted(cfg.tokens or cfg.files)
    holdout, seed = dict(cfg.holdout), cfg.seed

    def write_counts(rows, out_dir):
        got = dict(rows)
        sources = {}
        for name in names:
            docs, tokens, nbytes = got.get(name, (0, 0, 0))
            sources[name] = {
                "documents": docs,
                "tokens": tokens,
                "bytes": nbytes,
                "files": len((cfg.tokens or cfg.files)[name]),
            }
            if holdout.get(name):
                h_docs, h_tokens, _ = got.get(f"{name}\x00holdout", (0, 0, 0))
                sources[name].update(holdout=holdout[name], holdout_documents=h_docs, holdout_tokens=h_tokens)
        write_text_atomic(
            join(out_dir, COUNTS_FILE),
            json.dumps(
                {
                    "tokenizer_sha256": tok["sha256"],
                    "tokens_include": "BOS + ids + EOS per document",
                    "sources": sources,
                },
                indent=2,
                sort_keys=True,
            )
            + "\n",
        )

    def build(p, run):
        toks = tokenized(p, run, cfg)
        (
            toks
            | "PerSource"
            >> beam.Map(
                lambda t: (
                    t.source + ("\x00holdout" if held_out(seed, t.id, holdout.get(t.source, 0)) else ""),
                    (1, t.n_tokens, t.nbytes),
                )
            )
            | "SumPerSource" >> beam.CombinePerKey(_sum_tuples())
            | "AllCounts" >> beam.combiners.ToList()
            | "WriteCounts" >> beam.Map(write_counts, run.out_dir)
        )

    run_build(OutputOptions(output=cfg.output, overwrite=cfg.overwrite), beam_args, build)
    return read_counts(cfg.output)


def read_counts(out_dir: str) -> dict:
    with open(join(out_dir, COUNTS_FILE), encoding="utf-8") as fh:
        return json.load(fh)


# ---------------------------------------------------------------------------------------------------
# stage 2: draw, pack, shuffle, write
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ShardConfig:
    files: Dict[str, List[str]]
    tokenizer: str
    output: str
    plan: MixPlan
    rows_per_shard: int = 32768
    batch_rows: int = 1024
    extra: dict = dataclasses.field(default_factory=dict)  # merged into manifest.json (recipe name, skipped)
    overwrite: bool = False
    tokens: Optional[Dict[str, List[str]]] = None  # tokenized documents (write_tokens): no SentencePiece here


def _copies(item, seed, full, groups, boundaries, cuts):
    """Every copy of a document: passes 0..full-1, plus the fractional pass if drawn. Keyed by group."""
    t, h_frac = item
    for p in range(full[t.source]):
        h = doc_hash(seed, t.id, p)
        yield h % groups, (h, t.id, p, t.source, t.tokens)
    if h_frac is not None and in_fraction(h_frac, t.id, boundaries.get(t.source), cuts.get(t.source)):
        yield h_frac % groups, (h_frac, t.id, full[t.source], t.source, t.tokens)


class _PackGroup(beam.DoFn):
    """One packing group -> its rows, each keyed by the shard its shuffled position falls in."""

    def __init__(self, seq_len: int, bos: int, eos: int, vocab_size: int, seed: int):
        self.seq_len, self.bos, self.eos, self.vocab_size, self.seed = seq_len, bos, eos, vocab_size, seed

    def process(self, item, layout):
        group, copies = item
        ordered = sorted(copies, key=lambda c: (c[0], c[1], c[2]))
        rows, bounds = pack_documents(
            [c[4] for c in ordered], self.seq_len, self.bos, self.eos, vocab_size=self.vocab_size
        )
        n = rows.shape[0]
        if n != layout.group_rows.get(group, 0):
            raise RuntimeError(f"packing group {group}: {n} rows, the layout expected {layout.group_rows.get(group)}")
        kept, start = n * layout.width, 0
        per_source: Dict[str, List[int]] = {}
        for c in ordered:
            length = int(c[4].size) + 2
            written = min(max(kept - start, 0), length)
            start += length
            acc = per_source.setdefault(c[3], [0, 0, 0])
            acc[0] += written
            acc[1] += 1 if written else 0
            acc[2] += 1 if written == length else 0
        for source, (tokens, docs, complete) in sorted(per_source.items()):
            yield beam.pvalue.TaggedOutput("stats", (source, (tokens, docs, complete)))
        yield beam.pvalue.TaggedOutput("stats", ("", (start - kept, 0, 0)))  # tail tokens dropped
        if n:
            positions = row_positions(layout.offsets[group], n, layout.total_rows, self.seed)
            for r in range(n):
                pos = int(positions[r])
                yield pos // layout.rows_per_shard, (pos, rows[r], bounds[r])


def _write_one_shard(item, out_dir, batch_rows, layout):
    shard, entries = item
    entries = sorted(entries, key=lambda e: e[0])
    first = shard * layout.rows_per_shard
    expected = min(layout.rows_per_shard, layout.total_rows - first)
    if len(entries) != expected or entries[0][0] != first:
        raise RuntimeError(
            f"shard {shard}: {len(entries)} rows from position {entries[0][0]}, expected {expected} from {first}"
        )
    rows = np.stack([e[1] for e in entries])
    info = write_shard(join(out_dir, layout.shard_name(shard)), rows, [e[2] for e in entries], batch_rows=batch_rows)
    info["index"] = int(shard)
    return info


def _mixture(plan: MixPlan, stats: Dict[str, tuple]) -> Dict[str, dict]:
    written_total = sum(stats.get(s, (0, 0, 0))[0] for s in plan.sources) or 1
    out = {}
    for name, sp in sorted(plan.sources.items()):
        tokens, docs, complete = stats.get(name, (0, 0, 0))
        out[name] = {
            "weight": round(sp.weight, 10),
            "share": round(tokens / written_total, 10),
            "target_tokens": sp.target_tokens,
            "tokens": int(tokens),
            "epochs_target": round(sp.epochs, 10),
            "epochs_cap": sp.epochs_cap,
            "epochs": round(tokens / sp.source_tokens, 10),
            "documents": int(docs),
            "documents_complete": int(complete),
            "source_documents": sp.source_documents,
            "source_tokens": sp.source_tokens,
            "full_passes": sp.full_passes,
            "fraction_tokens": sp.fraction_tokens,
        }
    return out


def check_written_mixture(plan: MixPlan, out_dir: str) -> None:
    """After the shards are written, before they are marked complete: a source at 0 tokens or off its
    weight stops the run (the shards are not committed), unless ``allow_off_target``, which prints the
    problems and records them in manifest.json as ``mixture_warnings``."""
    path = join(out_dir, "manifest.json")
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    problems = check_mixture(plan, manifest.get("mixture", {}))
    if not problems:
        return
    if not plan.allow_off_target:
        raise CorpusmillError(
            "the mixture misses its weights (set allow_off_target: true to write it anyway): " + "; ".join(problems)
        )
    for line in problems:
        print(f"mix: warning: {line}", file=sys.stderr)
    manifest["mixture_warnings"] = problems
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    os.replace(tmp, path)


def write_mixed_shards(cfg: ShardConfig, beam_args: Sequence[str] = ()) -> dict:
    """Run the shard stage; returns manifest.json's content."""
    if "://" in cfg.output:
        raise CorpusmillError(
            f"shards output {cfg.output}: shards are written to a local (or mounted) directory; "
            f"copy them to object storage afterwards"
        )
    plan = cfg.plan
    tok = describe_model(cfg.tokenizer)
    seed, seq_len, groups = plan.seed, plan.seq_len, plan.pack_groups
    width = seq_len + 1
    unknown = sorted(set(plan.sources) - set(cfg.tokens or cfg.files))
    if unknown:
        raise CorpusmillError(f"the plan names source(s) {', '.join(unknown)} that have no document files")
    full = {s: sp.full_passes for s, sp in plan.sources.items()}
    fractions = {s: sp.fraction_tokens for s, sp in plan.sources.items()}
    rows_per_shard, batch_rows = cfg.rows_per_shard, cfg.batch_rows

    def write_manifest_file(infos, source_stats, layout, out_dir):
        stats = dict(source_stats)
        mixture = _mixture(plan, stats)
        extra = dict(cfg.extra)
        extra.update(
            {
                "budget_tokens": plan.budget_tokens,
                "mixing_mode": plan.mode,
                "share_tolerance": plan.share_tolerance,  # how far a share may be off its weight
                "mixture": mixture,
                "tokens_per_source": {k: v["tokens"] for k, v in mixture.items()},
                "rows_per_shard": rows_per_shard,
                "batch_rows": batch_rows,
                "packing": {
                    "groups": groups,
                    "tail_tokens_dropped": int(stats.get("", (0,))[0]),
                    "order": "documents sorted by hash(seed, id, pass) within a group; BOS doc EOS",
                },
                "shuffle": {
                    "method": "feistel",
                    "rows": layout.total_rows,
                    "inverse": "corpusmill.mixers.plan.original_row_order(rows, seed)",
                },
                "tokenizer": {"file": MODEL_FILE, **tok},
            }
        )
        if holdout:
            extra["held_out"] = {
                s: {
                    "holdout": plan.sources[s].holdout,
                    "documents": plan.sources[s].holdout_documents,
                    "tokens": plan.sources[s].holdout_tokens,
                    "dir": f"{EVAL_DIR}/{s}",
                }
                for s in sorted(holdout)
            }
        write_manifest(
            out_dir,
            sorted(infos, key=lambda i: i["index"]),
            seq_len=seq_len,
            vocab_size=tok["vocab_size"],
            tokenizer_sha256=tok["sha256"],
            seed=seed,
            extra=extra,
        )

    holdout = {s: sp.holdout for s, sp in plan.sources.items() if sp.holdout > 0}

    def write_eval_manifests(results, out_dir, contamination):
        by_source: Dict[str, list] = {}
        for source, info in results:
            by_source.setdefault(source, [])
            if info is not None:
                by_source[source].append(info)
        for source in sorted(holdout):
            infos = sorted(by_source.get(source, []), key=lambda i: i["index"])
            sp = plan.sources[source]
            dirty = contamination.get(source, {}).get("contaminated", 0)
            left = f" ({dirty} left out: seen in training)" if dirty else ""
            if not infos and plan.allow_empty_holdout:
                print(
                    f"mix: warning: sources.{source}: no eval set (its held-out documents{left} fill no row); they "
                    f"stay out of training (allow_empty_holdout)",
                    file=sys.stderr,
                )
                continue
            if not infos:
                raise CorpusmillError(
                    f"sources.{source}.holdout {sp.holdout:g}: its {sp.holdout_documents} held-out "
                    f"document(s){left}, {sp.holdout_tokens:,} tokens, do not fill one row of "
                    f"seq_len + 1 = {seq_len + 1}; hold out more"
                )
            rows = sum(int(i["rows"]) for i in infos)
            if rows < MIN_EVAL_ROWS:
                print(
                    f"mix: warning: the held-out set of {source} is {rows} rows of {seq_len + 1} tokens, from "
                    f"{sp.holdout_documents - dirty} documents{left}: under {MIN_EVAL_ROWS} rows its loss is "
                    f"noise; raise sources.{source}.holdout",
                    file=sys.stderr,
                )
            write_manifest(
                join(out_dir, EVAL_DIR, source),
                infos,
                seq_len=seq_len,
                vocab_size=tok["vocab_size"],
                tokenizer_sha256=tok["sha256"],
                seed=seed,
                extra={
                    "source": source,
                    "holdout": sp.holdout,
                    "documents": sp.holdout_documents - dirty,  # in this eval set
                    "held_out_documents": sp.holdout_documents,  # set aside, the contaminated ones included
                    "held_out": "documents set aside before any repetition or packing: none of them "
                    "is in a training row, and none has 10% of its tokens in a 32-token window seen in one",
                    "contamination": contamination.get(source, {}),
                    "tokenizer": {"file": join("..", "..", MODEL_FILE), **tok},
                },
            )

    def build(p, run):
        toks = tokenized(p, run, cfg)
        if holdout:  # set aside before any pass is drawn: never in a training row
            parts = toks | "SplitHeldOut" >> beam.Partition(
                lambda t, _n: 1 if held_out(seed, t.id, holdout.get(t.source, 0.0)) else 0, 2
            )
            toks, held = parts[0], parts[1]
            held, contamination = _without_contaminated(toks, held)
            eval_groups = {s: max(1, -(-plan.sources[s].holdout_tokens // EVAL_GROUP_TOKENS)) for s in holdout}
            (
                held
                | "KeyHeldOut"
                >> beam.Map(
                    lambda t: (
                        (t.source, doc_hash(seed, t.id, 0) % eval_groups[t.source]),
                        (doc_hash(seed, t.id, 0), t.id, t.tokens),
                    )
                )
                | "GroupHeldOut" >> beam.GroupByKey()
                | "WriteEval"
                >> beam.Map(
                    _write_eval_group, run.out_dir, seq_len, tok["bos_id"], tok["eos_id"], tok["vocab_size"], batch_rows
                )
                | "AllEval" >> beam.combiners.ToList()
                | "EvalManifests" >> beam.Map(write_eval_manifests, run.out_dir, beam.pvalue.AsSingleton(contamination))
            )
        hashed = toks | "HashFraction" >> beam.Map(
            lambda t: (t, doc_hash(seed, t.id, full[t.source]) if fractions[t.source] > 0 else None)
        )

        # the fractional pass: token histogram over hash buckets -> boundary bucket -> exact cut in it
        boundaries = (
            hashed
            | "FractionTokens"
            >> beam.FlatMap(
                lambda th: [((th[0].source, bucket_of(th[1])), th[0].n_tokens)] if th[1] is not None else []
            )
            | "SumBuckets" >> beam.CombinePerKey(sum)
            | "Histogram" >> beam.combiners.ToList()
            | "Boundaries" >> beam.Map(find_boundaries, fractions)
        )
        bview = beam.pvalue.AsSingleton(boundaries)
        cuts = (
            hashed
            | "BoundaryDocs"
            >> beam.FlatMap(
                lambda th, b: (
                    [(th[0].source, (th[1], th[0].id, th[0].n_tokens))]
                    if th[1] is not None and th[0].source in b and bucket_of(th[1]) == b[th[0].source][0]
                    else []
                ),
                bview,
            )
            | "GroupBoundary" >> beam.GroupByKey()
            | "Cut" >> beam.Map(lambda kv, b: (kv[0], cut_in_bucket(kv[1], b[kv[0]][1])), bview)
        )
        copies = hashed | "Copies" >> beam.FlatMap(_copies, seed, full, groups, bview, beam.pvalue.AsDict(cuts))

        # rows per group -> global numbering
        layout = (
            copies
            | "CopyTokens" >> beam.Map(lambda kv: (kv[0], int(kv[1][4].size) + 2))
            | "SumGroups" >> beam.CombinePerKey(sum)
            | "GroupTokens" >> beam.combiners.ToList()
            | "Layout" >> beam.Map(lambda rows: row_layout(dict(rows), width, rows_per_shard))
        )
        lview = beam.pvalue.AsSingleton(layout)
        packed = (
            copies
            | "GroupCopies" >> beam.GroupByKey()
            | "Pack"
            >> beam.ParDo(
                _PackGroup(seq_len, tok["bos_id"], tok["eos_id"], tok["vocab_size"], seed), lview
            ).with_outputs("stats", main="rows")
        )
        infos = (
            packed.rows
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards" >> beam.Map(_write_one_shard, run.out_dir, batch_rows, lview)
            | "AllShards" >> beam.combiners.ToList()
        )
        source_stats = (
            packed.stats | "SumWritten" >> beam.CombinePerKey(_sum_tuples()) | "AllWritten" >> beam.combiners.ToList()
        )
        infos | "WriteManifest" >> beam.Map(
            write_manifest_file, beam.pvalue.AsSingleton(source_stats), lview, run.out_dir
        )

    def copy_tokenizer(out_dir):
        dst = join(out_dir, MODEL_FILE)
        shutil.copyfile(cfg.tokenizer, dst + ".tmp")
        os.replace(dst + ".tmp", dst)
        if sha256_file(dst) != tok["sha256"]:
            raise CorpusmillError(f"{cfg.tokenizer} changed while the shards were written; run again")
        check_written_mixture(plan, out_dir)
        for source in sorted(holdout):  # each eval set is a shard directory of its own, complete
            if os.path.exists(join(out_dir, EVAL_DIR, source, "manifest.json")):  # (none: allow_empty_holdout)
                mark_complete(join(out_dir, EVAL_DIR, source))
        with open(join(out_dir, "manifest.json"), encoding="utf-8") as fh:
            manifest = json.load(fh)
        evals = [s for s in sorted(holdout) if os.path.exists(join(out_dir, EVAL_DIR, s, "manifest.json"))]
        write_dataset_card(out_dir, manifest, [f"{EVAL_DIR}/{s}" for s in evals])

    run_build(OutputOptions(output=cfg.output, overwrite=cfg.overwrite), beam_args, build, before_done=copy_tokenizer)
    with open(join(cfg.output, "manifest.json"), encoding="utf-8") as fh:
        return json.load(fh)
