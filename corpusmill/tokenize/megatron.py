"""Packed shards as Megatron-LM's indexed dataset (``PREFIX.bin`` + ``PREFIX.idx``), which Megatron's
``GPTDataset`` (and NeMo) blend and cut to their own sequence length at training time.

The rows are read in packing order (the shards' row shuffle undone, :func:`original_row_order`) and cut
where documents start: each document copy, as the rows hold it (BOS, its ids, EOS), is one sequence and
one document of the dataset, so the tokens of the export, in order, are exactly the tokens of the rows.

The format (megatron-core ``indexed_dataset.py``): ``.bin`` is the sequences' token ids back to back in
the index's dtype; ``.idx`` is ``b"MMIDIDX\\x00\\x00"``, version ``<Q`` 1, dtype code ``<B`` (1 uint8, 2
int8, 3 int16, 4 int32, 5 int64, 6 float64, 7 float32, 8 uint16), sequence count ``<Q``, document count
``<Q``, then the sequence lengths (int32), the sequence byte offsets into ``.bin`` (int64) and the
document indices (int64: 0, then the index one past each document's last sequence).
"""

from __future__ import annotations

import os
import struct
from typing import Dict

import numpy as np

from corpusmill.core.errors import CorpusmillError

HEADER = b"MMIDIDX\x00\x00"
DTYPE_CODES = {
    np.dtype(np.uint8): 1,
    np.dtype(np.int8): 2,
    np.dtype(np.int16): 3,
    np.dtype(np.int32): 4,
    np.dtype(np.int64): 5,
    np.dtype(np.float64): 6,
    np.dtype(np.float32): 7,
    np.dtype(np.uint16): 8,
}


def export_megatron(shards_dir: str, prefix: str, overwrite: bool = False) -> Dict[str, int]:
    """Write ``prefix.bin`` and ``prefix.idx`` from a (complete) shard directory; returns the counts."""
    from corpusmill.core.shuffle import original_row_order
    from corpusmill.tokenize.shards import ShardDataset

    for suffix in (".bin", ".idx"):
        if os.path.exists(prefix + suffix) and not overwrite:
            raise CorpusmillError(f"{prefix}{suffix} exists; choose another --output prefix or pass --overwrite")
    ds = ShardDataset(shards_dir)  # refuses a directory without _SUCCESS, checks every shard's sha256
    if not len(ds):
        raise CorpusmillError(f"{shards_dir}: no rows to export")
    shuffled = "shuffle" in ds.manifest
    order = original_row_order(len(ds), ds.manifest["seed"]) if shuffled else np.arange(len(ds))
    dtype = np.dtype(ds[0][0].dtype)
    lengths = []
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    tmp_bin, tmp_idx = prefix + ".bin.tmp", prefix + ".idx.tmp"
    current = 0  # tokens of the sequence being written
    with open(tmp_bin, "wb") as out:
        for pos in order:
            tokens, starts = ds[int(pos)]
            cuts = [int(s) for s in starts]
            edges = ([0] if not cuts or cuts[0] != 0 else []) + cuts + [len(tokens)]
            for a, b in zip(edges, edges[1:]):
                if a in cuts and current:  # a document starts: the one before is complete
                    lengths.append(current)
                    current = 0
                out.write(np.asarray(tokens[a:b], dtype=dtype).tobytes())
                current += b - a
        if current:
            lengths.append(current)
    pointers = np.zeros(len(lengths), dtype=np.int64)
    if lengths:
        pointers[1:] = np.cumsum(np.asarray(lengths[:-1], dtype=np.int64)) * dtype.itemsize
    with open(tmp_idx, "wb") as idx:
        idx.write(HEADER)
        idx.write(struct.pack("<Q", 1))
        idx.write(struct.pack("<B", DTYPE_CODES[dtype]))
        idx.write(struct.pack("<Q", len(lengths)))
        idx.write(struct.pack("<Q", len(lengths) + 1))
        idx.write(np.asarray(lengths, dtype=np.int32).tobytes())
        idx.write(pointers.tobytes())
        idx.write(np.arange(len(lengths) + 1, dtype=np.int64).tobytes())  # one sequence per document
    os.replace(tmp_bin, prefix + ".bin")
    os.replace(tmp_idx, prefix + ".idx")
    return {"sequences": len(lengths), "tokens": int(sum(lengths)), "rows": len(ds)}
