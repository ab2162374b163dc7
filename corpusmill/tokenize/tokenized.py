"""Tokenized documents, stored once: Arrow IPC files of ``(id, source, tokens, nbytes)``.

The recipe tokenizes every source once (``RUN/tokens/<source>/part-NNNNN.arrow``); the token counts,
the mixer and the shard writer read these files and never run SentencePiece again, so another
``seq_len`` or another mixture (an annealing phase over the same documents, ``tokens_from`` in a
manifest) is a re-pack, not a re-tokenization. ``tokens`` is a list of uint32 ids without BOS/EOS.
"""

from __future__ import annotations

from typing import Iterable, Iterator, List

import numpy as np
import pyarrow as pa

from corpusmill.filters.base import Filter, Verdict, keep
from corpusmill.tokenize.tokenizer import TokenizedDoc

SCHEMA = pa.schema(
    [("id", pa.string()), ("source", pa.string()), ("tokens", pa.list_(pa.uint32())), ("nbytes", pa.int64())]
)
BATCH = 4096
TOKENS_FILE = "tokens.json"  # beside the files: the tokenizer's sha256 and per-source counts


def token_batch(part: List[TokenizedDoc]) -> "pa.RecordBatch":
    """One record batch of tokenized documents (:data:`SCHEMA`)."""
    lengths = np.fromiter((d.tokens.size for d in part), dtype=np.int64, count=len(part))
    offsets = np.zeros(len(part) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat = (
        np.concatenate([d.tokens.astype(np.uint32, copy=False) for d in part]) if part else np.zeros(0, dtype=np.uint32)
    )
    tokens = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.uint32()))
    return pa.record_batch(
        [
            pa.array([d.id for d in part], pa.string()),
            pa.array([d.source for d in part], pa.string()),
            tokens,
            pa.array([d.nbytes for d in part], pa.int64()),
        ],
        schema=SCHEMA,
    )


def encode_tokens(docs: Iterable[TokenizedDoc], handle) -> None:
    """Write ``docs`` (in order) to ``handle`` as one Arrow IPC file."""
    docs = list(docs)
    with pa.ipc.new_file(handle, SCHEMA) as writer:
        for a in range(0, max(1, len(docs)), BATCH):
            writer.write_batch(token_batch(docs[a : a + BATCH]))


def decode_tokens(data: bytes) -> Iterator[TokenizedDoc]:
    """The documents of one tokens file's bytes, a batch at a time."""
    reader = pa.ipc.open_file(pa.BufferReader(data))
    for b in range(reader.num_record_batches):
        batch = reader.get_batch(b)
        ids, sources, nbytes = batch.column(0).to_pylist(), batch.column(1).to_pylist(), batch.column(3).to_pylist()
        lists = batch.column(2)
        offsets = lists.offsets.to_numpy()
        flat = lists.values.to_numpy(zero_copy_only=False)
        for i in range(batch.num_rows):
            yield TokenizedDoc(ids[i], sources[i], flat[offsets[i] : offsets[i + 1]].copy(), int(nbytes[i]))


class ReadTokens(Filter):
    """The ``read_tokens`` step: the stored tokenized documents as they come (it counts them)."""

    name = "read_tokens"

    def __call__(self, doc: TokenizedDoc) -> Verdict:
        return keep(doc)
