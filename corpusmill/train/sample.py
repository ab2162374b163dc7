"""A small real-text shard set for tests, benchmarks and trying the trainer on a laptop.

Text: the docstrings of the Python standard library that runs this code (modules, classes, functions;
real English prose, always present, no download). Tokenizer: a SentencePiece BPE model trained on
that text with LLaMA's options (digits split, byte fallback), small vocabulary. Shards: packed with
:func:`corpusmill.tokenize.shards.pack_documents` and written with ``write_shard``.

No torch here. ``python -m corpusmill.train.sample OUT_DIR`` writes a set.
"""

from __future__ import annotations

import ast
import hashlib
import io
import os
import sys
import sysconfig
from typing import Dict, List, Optional

from corpusmill.tokenize.shards import mark_complete, pack_documents, write_manifest, write_shard

BOS_ID, EOS_ID = 1, 2


def stdlib_docstrings(max_chars: int = 600_000, min_chars: int = 200) -> List[str]:
    """Docstrings (at least ``min_chars`` long) of the stdlib's top-level modules, in file-name order."""
    root = sysconfig.get_paths()["stdlib"]
    docs: List[str] = []
    total = 0
    for name in sorted(os.listdir(root)):
        if not name.endswith(".py") or name.startswith(("_", "test")):
            continue
        try:
            with open(os.path.join(root, name), "r", encoding="utf-8") as fh:
                tree = ast.parse(fh.read())
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        nodes = [tree] + [
            n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ]
        for node in nodes:
            doc = ast.get_docstring(node)
            if doc and len(doc) >= min_chars:
                docs.append(doc)
                total += len(doc)
                if total >= max_chars:
                    return docs
    return docs


def train_tokenizer(texts: List[str], vocab_size: int = 1024) -> bytes:
    """A SentencePiece BPE model (serialized) with LLaMA's options: split digits, byte fallback, no
    normalization (identity), a dummy prefix, white space kept as it is."""
    import sentencepiece as spm  # noqa: PLC0415

    buf = io.BytesIO()
    lines = [line for t in texts for line in t.splitlines() if line.strip()]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=buf,
        vocab_size=vocab_size,
        model_type="bpe",
        split_digits=True,
        byte_fallback=True,
        character_coverage=0.9995,
        unk_id=0,
        bos_id=BOS_ID,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        eos_id=EOS_ID,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
        input_sentence_size=0,
    )
    return buf.getvalue()


def build_sample_shards(
    out_dir: str,
    *,
    seq_len: int = 64,
    vocab_size: int = 1024,
    rows_per_shard: int = 256,
    max_chars: int = 600_000,
    seed: int = 0,
    batch_rows: int = 64,
) -> Dict[str, object]:
    """Write shards + manifest.json (+ tokenizer.model) into ``out_dir``; return the manifest summary.

    Documents are shuffled deterministically (by a hash of their text and ``seed``) before packing, so
    the last shard (a natural held-out set) is not all from the last modules."""
    import sentencepiece as spm  # noqa: PLC0415

    os.makedirs(out_dir, exist_ok=True)
    texts = stdlib_docstrings(max_chars=max_chars)
    model = train_tokenizer(texts, vocab_size)
    with open(os.path.join(out_dir, "tokenizer.model"), "wb") as fh:
        fh.write(model)
    sp = spm.SentencePieceProcessor(model_proto=model)
    texts = sorted(texts, key=lambda t: hashlib.sha1(f"{seed}\0{t}".encode()).hexdigest())
    ids = sp.encode(texts)
    stats: Dict[str, int] = {}
    rows, bounds = pack_documents(ids, seq_len, BOS_ID, EOS_ID, vocab_size=sp.get_piece_size(), stats=stats)
    infos = []
    for k, a in enumerate(range(0, len(rows), rows_per_shard)):
        infos.append(
            write_shard(
                os.path.join(out_dir, f"shard-{k:05d}.arrow"),
                rows[a : a + rows_per_shard],
                bounds[a : a + rows_per_shard],
                batch_rows=batch_rows,
            )
        )
    write_manifest(
        out_dir,
        infos,
        seq_len=seq_len,
        vocab_size=sp.get_piece_size(),
        tokenizer_sha256=hashlib.sha256(model).hexdigest(),
        seed=seed,
        extra={
            "source": f"python {sys.version.split()[0]} stdlib docstrings",
            "documents": stats["documents"],
            "tokens_dropped": stats["tokens_dropped"],
        },
    )
    mark_complete(out_dir)
    return {
        "rows": int(len(rows)),
        "shards": len(infos),
        "documents": stats["documents"],
        "vocab_size": sp.get_piece_size(),
    }


def main(argv: Optional[List[str]] = None) -> int:
    import argparse  # noqa: PLC0415

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--vocab-size", type=int, default=1024)
    ap.add_argument("--rows-per-shard", type=int, default=256)
    ap.add_argument("--max-chars", type=int, default=600_000)
    a = ap.parse_args(argv)
    print(
        build_sample_shards(
            a.out_dir,
            seq_len=a.seq_len,
            vocab_size=a.vocab_size,
            rows_per_shard=a.rows_per_shard,
            max_chars=a.max_chars,
        )
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
