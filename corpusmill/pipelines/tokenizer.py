"""``corpusmill train-tokenizer``: a LLaMA-style SentencePiece BPE model from a sample of the sources.

The sample is drawn on Beam, deterministically and in mixture proportion: source ``s`` gets about
``weight_s * sample_chars`` characters, drawn line by line (SentencePiece trains on lines): the
non-empty lines whose ``hash(seed, document id, line number)`` falls under ``quota_s / chars_s`` (a
source smaller than its quota gives all of it; ``sample.json`` says so). Drawing lines rather than
documents keeps the proportions close even for a source of a few long documents. The sample is
written under ``OUT/sample/<source>/part-NNNNN.txt.gz`` in hash order, then SentencePiece trains on it
in that order with :data:`LLAMA_TRAINER_OPTIONS`. Outputs:
``tokenizer.model``, ``tokenizer.vocab`` (piece and score per line), ``corpusmill_tokenizer.json`` (sha256,
vocabulary size, special ids, options, the sample per source), stats.json and ``_SUCCESS``.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import os
import re
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Sequence

from corpusmill.core.config import option
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import join
from corpusmill.core.hashing import stable_hash
from corpusmill.core.outputs import OutputOptions
from corpusmill.core.stage import Stage
from corpusmill.tokenize import bpe
from corpusmill.tokenize.tokenizer import (
    LLAMA_TRAINER_OPTIONS,
    MODEL_FILE,
    describe_model,
    train_sentencepiece,
)

if TYPE_CHECKING:  # annotations only
    import apache_beam as beam

    from corpusmill.engine.run import Run

KINDS = ("sentencepiece", "bpe")
HF_MAX_LENGTH = 1 << 20  # tokenizer_config's model_max_length: the tokenizer has no context limit of its own
SAMPLE_DIR = "sample"
SAMPLE_INDEX = "sample.json"
INFO_FILE = "corpusmill_tokenizer.json"  # what was trained on, and how (tokenizer.json is Hugging Face's)
PART_CHARS = 16_000_000  # characters per sample file (one file is written by one worker)


@dataclasses.dataclass
class TokenizerConfig:
    files: Dict[str, List[str]]  # source name -> document files
    output: str
    weights: Optional[Dict[str, float]] = None  # sample shares; None: each source in proportion to its size
    epochs: Optional[Dict[str, float]] = None  # or: shares proportional to epochs x characters
    vocab_size: int = 32000
    sample_chars: int = 100_000_000
    seed: int = 0
    threads: int = 8
    overwrite: bool = False
    kind: str = "sentencepiece"  # or "bpe": Llama 3's byte-level BPE (corpusmill.tokenize.bpe)

    def validate(self) -> None:
        if not self.files:
            raise CorpusmillError("train-tokenizer: no inputs; give --input DIR (repeat for each source)")
        for mapping, what in ((self.weights, "--weights"), (self.epochs, "epochs")):
            if mapping is None:
                continue
            if set(mapping) != set(self.files):
                raise CorpusmillError(f"{what}: names {sorted(mapping)} do not match the inputs {sorted(self.files)}")
            if any(v <= 0 for v in mapping.values()):
                raise CorpusmillError(f"{what}: every value must be above 0, got {mapping}")
        if self.kind not in KINDS:
            raise CorpusmillError(f"tokenizer kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.kind == "sentencepiece" and self.vocab_size < 260:
            raise CorpusmillError(f"--vocab-size {self.vocab_size}: byte fallback needs at least 260 pieces")
        if self.kind == "bpe" and self.vocab_size < bpe.MIN_VOCAB:
            raise CorpusmillError(
                f"--vocab-size {self.vocab_size}: a byte-level BPE needs the 256 bytes and "
                f"{bpe.NUM_SPECIAL} special tokens; use at least {bpe.MIN_VOCAB}"
            )
        if self.sample_chars < 1:
            raise CorpusmillError("--sample-chars must be at least 1")


def _rates(chars_rows, cfg_weights, cfg_epochs, sample_chars) -> Dict[str, float]:
    """Per source: the share of its documents to draw (by hash), from its characters and its weight."""
    chars = {name: c for name, c in chars_rows if c > 0}
    if not chars:
        return {}
    if cfg_weights is not None:
        total_w = sum(cfg_weights[n] for n in chars)
        quota = {n: sample_chars * cfg_weights[n] / total_w for n in chars}
    elif cfg_epochs is not None:
        total = sum(cfg_epochs[n] * chars[n] for n in chars)
        quota = {n: sample_chars * cfg_epochs[n] * chars[n] / total for n in chars}
    else:
        total = sum(chars.values())
        quota = {n: sample_chars * chars[n] / total for n in chars}
    return {n: min(1.0, quota[n] / chars[n]) for n in chars}


def _lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        line = line.strip()
        if line:
            yield line


def _draw(pair, seed, parts, rates):
    doc, name = pair
    rate = rates.get(name, 0.0)
    for i, line in enumerate(_lines(doc.text)):
        h = stable_hash(f"{seed}\x00{doc.id}\x00{i}")
        if h < rate * 2.0**64:
            yield (name, h % parts), (h, doc.id, i, line)


def _write_part(item, out_dir):
    from corpusmill.io.files import atomic_write

    (name, part), lines = item
    lines = sorted(lines)
    rel = f"{SAMPLE_DIR}/{name}/part-{part:05d}.txt.gz"
    chars = 0
    with atomic_write(join(out_dir, *rel.split("/"))) as handle:
        with gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0, compresslevel=6) as gz:
            for _, _, _, line in lines:
                gz.write(line.encode("utf-8", "surrogatepass") + b"\n")
                chars += len(line)
    return {
        "source": name,
        "file": rel,
        "documents": len({doc_id for _, doc_id, _, _ in lines}),
        "lines": len(lines),
        "chars": chars,
    }


def build_sample(p: beam.Pipeline, run: Run, cfg: TokenizerConfig) -> None:
    import apache_beam as beam

    from corpusmill.io.files import write_text_atomic
    from corpusmill.pipelines.mix import read_sources

    pairs = read_sources(p, run, cfg.files)
    chars = (
        pairs
        | "Chars" >> beam.Map(lambda dn: (dn[1], sum(len(line) for line in _lines(dn[0].text))))
        | "SumChars" >> beam.CombinePerKey(sum)
        | "AllChars" >> beam.combiners.ToList()
    )
    rates = chars | "Rates" >> beam.Map(_rates, cfg.weights, cfg.epochs, cfg.sample_chars)
    parts = max(1, math.ceil(cfg.sample_chars / PART_CHARS))
    out_dir = run.out_dir

    def write_index(written, chars_rows, rate_map):

        totals = dict(chars_rows)
        per: Dict[str, dict] = {}
        for w in sorted(written, key=lambda w: w["file"]):
            entry = per.setdefault(w["source"], {"documents": 0, "lines": 0, "chars": 0, "files": []})
            entry["documents"] += w["documents"]
            entry["lines"] += w["lines"]
            entry["chars"] += w["chars"]
            entry["files"].append(w["file"])
        for name in cfg.files:
            entry = per.setdefault(name, {"documents": 0, "lines": 0, "chars": 0, "files": []})
            entry["source_chars"] = int(totals.get(name, 0))
            entry["rate"] = round(rate_map.get(name, 0.0), 12)
            entry["whole_source"] = rate_map.get(name, 0.0) >= 1.0
        write_text_atomic(
            join(out_dir, SAMPLE_INDEX),
            json.dumps({"seed": cfg.seed, "sample_chars": cfg.sample_chars, "sources": per}, indent=2, sort_keys=True)
            + "\n",
        )

    (
        pairs
        | "Draw" >> beam.FlatMap(_draw, cfg.seed, parts, beam.pvalue.AsSingleton(rates))
        | "GroupParts" >> beam.GroupByKey()
        | "WritePart" >> beam.Map(_write_part, out_dir)
        | "AllParts" >> beam.combiners.ToList()
        | "WriteIndex" >> beam.Map(write_index, beam.pvalue.AsSingleton(chars), beam.pvalue.AsSingleton(rates))
    )


def _sample_lines(out_dir: str, index: dict) -> Iterator[str]:
    from corpusmill.io.files import open_text_lines as _open_lines

    for name in sorted(index["sources"]):
        for rel in index["sources"][name]["files"]:
            with _open_lines(join(out_dir, *rel.split("/"))) as lines:
                for line in lines:
                    yield line.rstrip("\n")


def train_tokenizer(cfg: TokenizerConfig, beam_args: Sequence[str] = ()) -> dict:
    """Draw the sample on Beam, train the model; returns corpusmill_tokenizer.json's content."""
    from corpusmill.engine.stage import run_build
    from corpusmill.io.files import atomic_write, write_text_atomic

    cfg.validate()

    def train(out_dir):

        with open(join(out_dir, SAMPLE_INDEX), encoding="utf-8") as fh:
            index = json.load(fh)
        chars = sum(s["chars"] for s in index["sources"].values())
        docs = sum(s["documents"] for s in index["sources"].values())
        note = f" ({chars:,} characters from {docs:,} documents)"
        path = join(out_dir, MODEL_FILE)
        if cfg.kind == "bpe":
            model = bpe.train_bpe(_sample_lines(out_dir, index), cfg.vocab_size, sample_note=note)
            with atomic_write(path) as handle:
                handle.write(model)
            vocab = json.loads(model)["model"]["vocab"]
            write_text_atomic(
                join(out_dir, "tokenizer.vocab"),
                "".join(f"{token}\t{i}\n" for token, i in sorted(vocab.items(), key=lambda kv: kv[1])),
            )
            options = {
                "kind": "bpe",
                "vocab_size": cfg.vocab_size,
                "pattern": bpe.LLAMA3_PATTERN,
                "special_tokens": bpe.NUM_SPECIAL,
                "min_frequency": 2,
            }
        else:
            model = train_sentencepiece(
                _sample_lines(out_dir, index), cfg.vocab_size, threads=cfg.threads, sample_note=note
            )
            with atomic_write(path) as handle:
                handle.write(model)
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_proto=model)
            write_text_atomic(
                join(out_dir, "tokenizer.vocab"),
                "".join(f"{sp.id_to_piece(i)}\t{sp.get_score(i):g}\n" for i in range(sp.vocab_size())),
            )
            options = {**LLAMA_TRAINER_OPTIONS, "vocab_size": cfg.vocab_size, "num_threads": cfg.threads}
        info = describe_model(path)
        info.update({"options": options, "sample": index})
        write_text_atomic(join(out_dir, INFO_FILE), json.dumps(info, indent=2, sort_keys=True) + "\n")
        from corpusmill.tokenize.hf import write_hf_tokenizer

        write_hf_tokenizer(path, out_dir, HF_MAX_LENGTH)  # AutoTokenizer.from_pretrained(OUT) loads it

    run_build(
        OutputOptions(output=cfg.output, overwrite=cfg.overwrite),
        beam_args,
        lambda p, run: build_sample(p, run, cfg),
        before_done=train,
    )
    with open(join(cfg.output, INFO_FILE), encoding="utf-8") as fh:
        return json.load(fh)


# -- CLI ---------------------------------------------------------------------------------------------
_NAME_RE = re.compile(r"[^a-z0-9_]+")


def parse_inputs(specs: Sequence[str], groups: Optional[List[str]] = None) -> Dict[str, List[str]]:
    """``NAME=PATH`` or ``PATH`` (named after its last directory) -> {name: document files}."""
    from corpusmill.pipelines.mix import source_files

    out: Dict[str, List[str]] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or "/" in name:
            path = spec
            name = _NAME_RE.sub("_", os.path.basename(os.path.normpath(spec)).lower()).strip("_") or "source"
        if name in out:
            raise CorpusmillError(f"--input {spec}: two inputs are named {name!r}; write NAME=PATH to tell them apart")
        out[name] = source_files(name, path, groups)
    return out


def parse_weights(text: Optional[str], names: List[str]) -> Optional[Dict[str, float]]:
    """``--weights 0.7,0.3`` (in --input order) or ``--weights wiki=0.7,code=0.3``."""
    if not text:
        return None
    items = [x.strip() for x in text.split(",") if x.strip()]
    try:
        if all("=" in x for x in items):
            weights = {k.strip(): float(v) for k, v in (x.split("=", 1) for x in items)}
        else:
            if len(items) != len(names):
                raise CorpusmillError(
                    f"--weights {text}: {len(items)} values for {len(names)} inputs ({', '.join(names)})"
                )
            weights = dict(zip(names, map(float, items)))
    except ValueError:
        raise CorpusmillError(f"--weights {text}: expected numbers, e.g. 0.7,0.3 or wiki=0.7,code=0.3") from None
    return weights


@dataclasses.dataclass(kw_only=True)
class TrainTokenizerConfig:
    """``corpusmill train-tokenizer``: the command's config (the stage itself runs a :class:`TokenizerConfig`)."""

    input: List[str] = option(
        required=True,
        metavar="[NAME=]DOCS",
        help="a corpusmill document directory (or glob of document files), one per source; "
        "the name defaults to the directory's name",
    )
    output: str = option(required=True, metavar="DIR", help="output directory")
    weights: Optional[List[str]] = option(
        None,
        sep=",",
        metavar="W",
        help="sample shares in --input order (0.67,0.15,...) or by name "
        "(cc=0.67,...); default: in proportion to each source's size",
    )
    groups: Optional[List[str]] = option(
        None, sep=",", metavar="G", help="only these sub-directories of each input (e.g. en); default: all"
    )
    kind: str = option(
        "sentencepiece",
        choices=KINDS,
        help="sentencepiece: LLaMA 1/2's SentencePiece BPE; bpe: Llama 3's byte-level BPE "
        "(tiktoken-style pattern, 256 special tokens; Llama 3's size: --vocab-size 128256)",
    )
    vocab_size: int = option(32000, min=260, help="vocabulary size (LLaMA's: 32000; Llama 3's: 128256)")
    sample_chars: int = option(100_000_000, min=1, help="characters in the training sample")
    seed: int = option(0, min=0, help="seed of the sample draw")
    threads: int = option(8, min=1, help="SentencePiece training threads; recorded in the model, so fixed")
    overwrite: bool = option(False, help="replace a non-empty output directory")


def run_train_tokenizer(cfg: TrainTokenizerConfig, beam_args: Sequence[str] = ()) -> dict:
    files = parse_inputs(cfg.input, cfg.groups)
    tcfg = TokenizerConfig(
        files=files,
        output=cfg.output,
        weights=parse_weights(",".join(cfg.weights) if cfg.weights else None, list(files)),
        vocab_size=cfg.vocab_size,
        sample_chars=cfg.sample_chars,
        seed=cfg.seed,
        threads=cfg.threads,
        overwrite=cfg.overwrite,
        kind=cfg.kind,
    )
    return train_tokenizer(tcfg, beam_args)


def _show(cfg: TrainTokenizerConfig, info: dict) -> None:
    for name, s in sorted(info["sample"]["sources"].items()):
        whole = " (the whole source)" if s["whole_source"] else ""
        print(f"sample {name:<16} {s['documents']:>9,} documents {s['chars']:>14,} characters{whole}")
    print(f"tokenizer: {os.path.join(cfg.output, MODEL_FILE)}  vocab {info['vocab_size']}  sha256 {info['sha256']}")


STAGE = Stage(
    name="train-tokenizer",
    config=TrainTokenizerConfig,
    run=run_train_tokenizer,
    show=_show,
    description="Draw a deterministic sample from the inputs (in mixture proportion) on Beam and train a "
    "SentencePiece BPE model with LLaMA's options: digits split, byte fallback. Writes "
    "OUT/tokenizer.model, tokenizer.vocab, corpusmill_tokenizer.json (with its sha256), Hugging Face's tokenizer.json "
    "and tokenizer_config.json, sample/, _meta/stats.json. "
    "Other options must be Beam pipeline options.",
)
