"""Training shards: packed token rows in Arrow IPC files, a manifest, and a zero-copy reader.

Format (one shard = one Arrow IPC *file*, uncompressed, memory-mappable)::

    tokens:     fixed_size_list<uint16 | uint32>[seq_len + 1]   not null
    doc_starts: list<int32>                                      not null

Every row holds ``seq_len + 1`` tokens (inputs are ``row[:-1]``, targets ``row[1:]``). Documents are
packed back to back (``BOS doc EOS BOS doc EOS ...``) and continue across rows. ``doc_starts`` lists
the positions in the row where a document begins (its BOS); a row that begins in the middle of a
document has no 0 in it. The token width is uint16 when the vocabulary has at most 65536 entries
(:func:`token_dtype`), uint32 otherwise.

Record batches hold a fixed number of rows (``corpusmill.batch_rows`` in the schema metadata; only
the last batch of a shard may be shorter), so row ``i`` of a shard is row ``i % batch_rows`` of batch
``i // batch_rows``: O(1) lookup without scanning.

``manifest.json`` next to the shards lists every shard with its row count, byte size and sha256, and
carries ``seq_len``, ``vocab_size``, ``token_dtype``, the tokenizer's sha256, the seed and whatever
the mixer adds (tokens per source, the achieved mixture).

:class:`ShardDataset` opens a shard directory, verifies the checksums, and gives ``ds[i] -> (tokens,
doc_starts)`` where ``tokens`` is a numpy view into the memory map (no copy).

Plain pyarrow reads a shard with ``pa.ipc.open_file(pa.memory_map(path))``. Hugging Face
``datasets.Dataset.from_file`` reads only the IPC *stream* format: use
:meth:`ShardDataset.export_stream` to write stream-format copies it can open.
"""

from __future__ import annotations

import bisect
import json
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import DONE_NAME, check_complete, completion_record, sha256_file, write_bytes_local

FORMAT_NAME = "corpusmill-shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DEFAULT_BATCH_ROWS = 1024
_META_BATCH_ROWS = b"corpusmill.batch_rows"
_META_SEQ_LEN = b"corpusmill.seq_len"
_META_FORMAT = b"corpusmill.format"


# ---------------------------------------------------------------------------------------------------
# dtype, packing
# ---------------------------------------------------------------------------------------------------
def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every token id fits (vocab_size <= 65536), else uint32."""
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    if vocab_size > 2**32:
        raise ValueError(f"vocab_size {vocab_size} does not fit uint32 token ids")
    return np.dtype(np.uint16) if vocab_size <= 65536 else np.dtype(np.uint32)


def pack_documents(
    doc_token_lists: Iterable[Sequence[int]],
    seq_len: int,
    bos_id: int,
    eos_id: int,
    *,
    vocab_size: Optional[int] = None,
    stats: Optional[Dict[str, int]] = None,
    pad_id: Optional[int] = None,
) -> Tuple[np.ndarray, List[List[int]]]:
    """Pack documents greedily into rows of ``seq_len + 1`` tokens.

    Each document becomes ``[BOS] + tokens + [EOS]``; these are concatenated in order and cut into rows;
    a document may continue into the next row. The last, partial row is dropped. Returns ``(rows,
    boundaries)``: ``rows`` has shape ``(n_rows, seq_len + 1)`` and dtype ``token_dtype(vocab_size)``
    (inferred from the largest id when ``vocab_size`` is None); ``boundaries[r]`` lists the positions in
    row ``r`` where a document starts.

    If ``stats`` is a dict, it receives ``documents``, ``tokens`` (BOS/EOS included), ``rows``,
    ``tokens_dropped`` (the dropped tail) and ``documents_dropped`` (documents that start in the tail).
    With ``pad_id`` the tail is kept: the last row is filled up with ``pad_id`` (``stats["padding"]``
    tokens, which an evaluation leaves out of the loss: held-out sets never cut a document).
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    width = seq_len + 1
    pieces: List[np.ndarray] = []
    lengths: List[int] = []
    bos = np.array([bos_id], dtype=np.int64)
    eos = np.array([eos_id], dtype=np.int64)
    for doc in doc_token_lists:
        arr = np.asarray(doc, dtype=np.int64).reshape(-1)
        pieces.extend((bos, arr, eos))
        lengths.append(arr.size + 2)
    flat = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    if flat.size and (flat.min() < 0):
        raise ValueError("token ids must be non-negative")
    if vocab_size is None:
        vocab_size = int(flat.max()) + 1 if flat.size else 1
    elif flat.size and int(flat.max()) >= vocab_size:
        raise ValueError(f"token id {int(flat.max())} is outside the vocabulary (size {vocab_size})")
    dtype = token_dtype(vocab_size)
    padding = 0
    if pad_id is not None and flat.size % width:
        padding = width - flat.size % width
        flat = np.concatenate([flat, np.full(padding, pad_id, dtype=np.int64)])
    n_rows = flat.size // width
    kept = n_rows * width
    rows = flat[:kept].astype(dtype).reshape(n_rows, width)
    starts = np.cumsum([0] + lengths[:-1], dtype=np.int64) if lengths else np.zeros(0, dtype=np.int64)
    starts_kept = starts[starts < kept]
    boundaries: List[List[int]] = [[] for _ in range(n_rows)]
    for row, pos in zip((starts_kept // width).tolist(), (starts_kept % width).tolist()):
        boundaries[row].append(pos)
    if stats is not None:
        stats.update(
            documents=len(lengths),
            tokens=int(flat.size - padding),
            rows=int(n_rows),
            tokens_dropped=int(flat.size - kept),
            documents_dropped=int(len(starts) - len(starts_kept)),
            padding=int(padding),
        )
    return rows, boundaries


def unpack(
    rows: np.ndarray, boundaries: Sequence[Sequence[int]], *, bos_id: Optional[int] = None, eos_id: Optional[int] = None
) -> List[np.ndarray]:
    """The inverse of :func:`pack_documents`: the documents' token arrays, in order.

    Rows are concatenated and split at the document starts. With ``bos_id`` / ``eos_id`` given, a
    leading BOS and a trailing EOS are stripped from each document (the last document, cut by the
    dropped tail, may have no EOS). If the first row begins inside a document, that fragment comes first.
    """
    rows = np.asarray(rows)
    if rows.ndim != 2:
        raise ValueError(f"rows must be 2-D, got shape {rows.shape}")
    if len(boundaries) != rows.shape[0]:
        raise ValueError(f"{len(boundaries)} boundary lists for {rows.shape[0]} rows")
    width = rows.shape[1]
    flat = rows.reshape(-1)
    cuts = [r * width + int(p) for r, starts in enumerate(boundaries) for p in starts]
    edges = ([0] if not cuts or cuts[0] != 0 else []) + cuts + [flat.size]
    starts = set(cuts)
    docs = []
    for a, b in zip(edges[:-1], edges[1:]):
        doc = flat[a:b]
        if bos_id is not None and a in starts and doc.size and doc[0] == bos_id:
            doc = doc[1:]
        if eos_id is not None and doc.size and doc[-1] == eos_id:
            doc = doc[:-1]
        docs.append(doc)
    return docs


# ---------------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------------
def _schema(dtype: np.dtype, seq_len: int, batch_rows: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("tokens", pa.list_(pa.from_numpy_dtype(dtype), seq_len + 1), nullable=False),
            pa.field("doc_starts", pa.list_(pa.int32()), nullable=False),
        ],
        metadata={
            _META_FORMAT: f"{FORMAT_NAME}/{FORMAT_VERSION}".encode(),
            _META_SEQ_LEN: str(seq_len).encode(),
            _META_BATCH_ROWS: str(batch_rows).encode(),
        },
    )


def write_shard(
    path: str, rows: np.ndarray, boundaries: Sequence[Sequence[int]], *, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Dict[str, Any]:
    """Write one shard (Arrow IPC file, uncompressed) atomically; return its manifest entry.

    ``rows``: shape ``(n, seq_len + 1)``, dtype uint16 or uint32. ``boundaries[r]``: document start
    positions in row ``r`` (sorted, within ``[0, seq_len]``). Record batches hold ``batch_rows`` rows
    (the last may be shorter). Returns ``{"file", "rows", "sha256", "bytes"}`` (``file`` is the base name).
    """
    rows = np.asarray(rows)
    if rows.ndim != 2 or rows.shape[1] < 2:
        raise ValueError(f"rows must have shape (n, seq_len + 1) with seq_len >= 1, got {rows.shape}")
    if rows.dtype not in (np.uint16, np.uint32):
        raise ValueError(f"rows must be uint16 or uint32 (see token_dtype), got {rows.dtype}")
    if len(boundaries) != rows.shape[0]:
        raise ValueError(f"{len(boundaries)} boundary lists for {rows.shape[0]} rows")
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    n, width = rows.shape
    seq_len = width - 1
    lengths = np.fromiter((len(b) for b in boundaries), dtype=np.int64, count=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    starts = np.fromiter((int(p) for b in boundaries for p in b), dtype=np.int64, count=int(offsets[-1]))
    if starts.size and (starts.min() < 0 or starts.max() > seq_len):
        raise ValueError(f"document starts must lie in [0, {seq_len}]")
    starts = starts.astype(np.int32)
    rows = np.ascontiguousarray(rows)

    schema = _schema(rows.dtype, seq_len, batch_rows)
    tmp = f"{path}.tmp-{os.getpid()}"
    with pa.OSFile(tmp, "wb") as sink:
        with pa.ipc.new_file(sink, schema) as writer:
            for a in range(0, n, batch_rows):
                b = min(n, a + batch_rows)
                toks = pa.FixedSizeListArray.from_arrays(pa.array(rows[a:b].reshape(-1)), width)
                offs = pa.array((offsets[a : b + 1] - offsets[a]).astype(np.int32))
                docs = pa.ListArray.from_arrays(offs, pa.array(starts[offsets[a] : offsets[b]]))
                writer.write_batch(pa.record_batch([toks, docs], schema=schema))
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    info = {"file": os.path.basename(path), "rows": int(n), "sha256": sha256_file(tmp), "bytes": os.path.getsize(tmp)}
    os.replace(tmp, path)
    return info


def write_manifest(
    out_dir: str,
    shard_infos: Sequence[Dict[str, Any]],
    *,
    seq_len: int,
    vocab_size: int,
    tokenizer_sha256: str,
    seed: int,
    extra: Optional[Dict[str, Any]] = None,
) -> str:
    """Write ``out_dir/manifest.json`` atomically (sorted keys, indent 2); return its path.

    ``extra`` (tokens per source, the achieved mixture, ...) is merged at the top level; it may not
    override the keys this function writes.
    """
    manifest: Dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "seq_len": int(seq_len),
        "vocab_size": int(vocab_size),
        "token_dtype": token_dtype(vocab_size).name,
        "tokenizer_sha256": tokenizer_sha256,
        "seed": int(seed),
        "shards": [dict(s) for s in shard_infos],
        "rows": int(sum(int(s["rows"]) for s in shard_infos)),
    }
    manifest["tokens"] = manifest["rows"] * (int(seq_len) + 1)
    for key, value in (extra or {}).items():
        if key in manifest:
            raise ValueError(f"write_manifest: extra key {key!r} would override a manifest field")
        manifest[key] = value
    path = os.path.join(out_dir, MANIFEST)
    write_bytes_local(path, (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode("utf-8"))
    return path


CARD = "README.md"


def write_dataset_card(out_dir: str, manifest: Dict[str, Any], eval_dirs: Sequence[str] = ()) -> str:
    """``out_dir/README.md``: a Hugging Face dataset card whose ``configs`` name the training shards (split
    ``train``) and each held-out set (split ``validation``: all of them; and a config per source), so
    ``datasets.load_dataset(out_dir)`` gives every split, not whichever files it finds first."""
    lines = ["---", "configs:", "- config_name: default", "  default: true", "  data_files:"]
    lines += ["  - split: train", '    path: "shard-*.arrow"']
    if eval_dirs:
        lines += ["  - split: validation", "    path:"]
        lines += [f'    - "{d}/shard-*.arrow"' for d in eval_dirs]
        for d in eval_dirs:
            name = d.rsplit("/", 1)[-1]
            lines += [
                f"- config_name: {name}",
                "  data_files:",
                "  - split: validation",
                f'    path: "{d}/shard-*.arrow"',
            ]
    lines += ["---", ""]
    rows, seq_len = manifest.get("rows", 0), manifest.get("seq_len", 0)
    lines += [
        f"# {manifest.get('recipe', 'corpusmill')} shards",
        "",
        f"Tokenized, packed training rows written by corpusmill: {rows:,} rows of `seq_len + 1` = {seq_len + 1} "
        f"token ids (`tokens`) with the positions where documents start (`doc_starts`); the mixture, the "
        f"tokenizer's sha256 and every shard's sha256 are in `manifest.json`, the tokenizer is "
        f"`tokenizer.model`.",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("PATH/TO/THIS/DIR")  # train; validation (the held-out documents, never in a training row)',
        "```",
        "",
    ]
    path = os.path.join(out_dir, CARD)
    write_bytes_local(path, "\n".join(lines).encode("utf-8"))
    return path


# ---------------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------------
class _Shard:
    """One memory-mapped shard; record batches are decoded to numpy views lazily and cached."""

    def __init__(self, path: str, seq_len: int, dtype: np.dtype, rows: int):
        self.path = path
        self.source = pa.memory_map(path, "r")
        try:
            self.reader = pa.ipc.open_file(self.source)
        except pa.ArrowInvalid as exc:
            raise CorpusmillError(f"{path}: not an Arrow IPC file ({exc}); re-run the shard writer") from None
        schema = self.reader.schema
        meta = schema.metadata or {}
        expected = pa.list_(pa.from_numpy_dtype(dtype), seq_len + 1)
        if (
            schema.names[:2] != ["tokens", "doc_starts"]
            or schema.field("tokens").type != expected
            or schema.field("doc_starts").type != pa.list_(pa.int32())
        ):
            raise CorpusmillError(
                f"{path}: schema {schema.to_string(show_schema_metadata=False)!r} is not "
                f"tokens: {expected}, doc_starts: list<int32> (the manifest's seq_len/vocab_size); "
                f"re-run the shard writer"
            )
        self.num_batches = self.reader.num_record_batches
        if _META_BATCH_ROWS in meta:
            self.batch_rows = int(meta[_META_BATCH_ROWS])
        else:  # written by another tool: trust the first batch, checked below per batch
            self.batch_rows = self.reader.get_batch(0).num_rows if self.num_batches else 1
        self.rows = rows
        full, last = divmod(rows, self.batch_rows)
        want = full + (1 if last else 0)
        if self.num_batches != want:
            raise CorpusmillError(
                f"{path}: {self.num_batches} record batches, expected {want} for {rows} rows of "
                f"{self.batch_rows}; re-run the shard writer"
            )
        self.width = seq_len + 1
        self.dtype = dtype
        self._cache: Dict[int, Tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def batch(self, b: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        hit = self._cache.get(b)
        if hit is not None:
            return hit
        rb = self.reader.get_batch(b)
        expect = min(self.batch_rows, self.rows - b * self.batch_rows)
        if rb.num_rows != expect:
            raise CorpusmillError(
                f"{self.path}: record batch {b} has {rb.num_rows} rows, expected {expect}; re-run the shard writer"
            )
        toks, docs = rb.column(0), rb.column(1)
        if toks.null_count or docs.null_count:
            raise CorpusmillError(f"{self.path}: null rows in record batch {b}; re-run the shard writer")
        values = toks.values  # the child array, not sliced by the list array's own offset
        flat = np.frombuffer(values.buffers()[1], dtype=self.dtype, count=values.offset + len(values))[values.offset :]
        first = toks.offset * self.width
        tokens = flat[first : first + len(toks) * self.width].reshape(-1, self.width)
        off_buf = docs.buffers()[1]
        offsets = np.frombuffer(off_buf, dtype=np.int32, count=len(docs) + 1 + docs.offset)[docs.offset :]
        dvals = docs.values
        starts = (
            np.frombuffer(dvals.buffers()[1], dtype=np.int32, count=len(dvals) + dvals.offset)[dvals.offset :]
            if len(dvals)
            else np.zeros(0, dtype=np.int32)
        )
        entry = (tokens, offsets, starts)
        self._cache[b] = entry
        return entry

    def row(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        b, j = divmod(i, self.batch_rows)
        tokens, offsets, starts = self.batch(b)
        return tokens[j], starts[offsets[j] : offsets[j + 1]]

    def close(self) -> None:
        self._cache.clear()
        self.reader = None
        self.source.close()


def mark_complete(out_dir: str) -> None:
    """Write ``out_dir/_SUCCESS`` (every file with size and sha256) once its shards and manifest are all
    written: :class:`ShardDataset` (the trainer) refuses a shard directory without it. The shard stage
    does this itself; call it after writing shards by hand (write_shard + write_manifest)."""
    record = completion_record(out_dir)
    write_bytes_local(os.path.join(out_dir, DONE_NAME), (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())


class ShardDataset:
    """Random access to the rows of a shard directory (see the module docstring for the format).

    ``ds[i]`` returns ``(tokens, doc_starts)``: ``tokens`` is a read-only numpy view of length
    ``seq_len + 1`` into the memory-mapped shard (no copy), ``doc_starts`` an int32 array. Lookup is
    O(1) in the shard's rows (fixed rows per record batch) and O(log shards) across shards.

    ``verify=True`` checks every shard's sha256 against the manifest on open (this reads every byte).
    ``shards`` selects a subset of the manifest's shards by index (e.g. a held-out shard for evaluation).
    """

    def __init__(self, out_dir: str, verify: bool = True, *, shards: Optional[Sequence[int]] = None):
        self.out_dir = os.fspath(out_dir)
        mpath = os.path.join(self.out_dir, MANIFEST)
        if os.path.isfile(mpath):  # complete or absent: a shard directory a killed run left is refused
            check_complete(self.out_dir, "shards", verify=False)  # (the shards' sha256 are checked below)
        try:
            with open(mpath, "r", encoding="utf-8") as fh:
                self.manifest: Dict[str, Any] = json.load(fh)
        except FileNotFoundError:
            raise CorpusmillError(
                f"{mpath}: no shard manifest; point at a directory written by the shard "
                f"writer (corpusmill.tokenize.shards.write_manifest)"
            ) from None
        except json.JSONDecodeError as exc:
            raise CorpusmillError(f"{mpath}: not valid JSON ({exc}); re-run the shard writer") from None
        for key in ("seq_len", "vocab_size", "shards"):
            if key not in self.manifest:
                raise CorpusmillError(f"{mpath}: field {key!r} missing; re-run the shard writer")
        if self.manifest.get("format", FORMAT_NAME) != FORMAT_NAME:
            raise CorpusmillError(f"{mpath}: format {self.manifest.get('format')!r} is not {FORMAT_NAME!r}")
        self.seq_len = int(self.manifest["seq_len"])
        self.vocab_size = int(self.manifest["vocab_size"])
        self.dtype = token_dtype(self.vocab_size)
        entries = list(self.manifest["shards"])
        if shards is not None:
            try:
                entries = [entries[i] for i in shards]
            except IndexError:
                raise CorpusmillError(
                    f"{mpath}: shard index out of range in {list(shards)} ({len(self.manifest['shards'])} shards)"
                ) from None
        self.shard_entries = entries
        self._shards: List[_Shard] = []
        self._open(verify)

    # -- opening -----------------------------------------------------------------------------------
    def _open(self, verify: bool) -> None:
        self._shards = []
        self._starts = [0]
        for entry in self.shard_entries:
            path = os.path.join(self.out_dir, entry["file"])
            if not os.path.exists(path):
                raise CorpusmillError(
                    f"{path}: shard listed in {MANIFEST} is missing; re-run the shard writer for {self.out_dir}"
                )
            if verify:
                size = os.path.getsize(path)
                if "bytes" in entry and size != int(entry["bytes"]):
                    raise CorpusmillError(
                        f"{path}: size {size} bytes, {MANIFEST} says {entry['bytes']}: the shard is "
                        f"truncated or was replaced; re-run the shard writer for {self.out_dir}"
                    )
                digest = sha256_file(path)
                if digest != entry.get("sha256"):
                    raise CorpusmillError(
                        f"{path}: sha256 {digest} does not match {MANIFEST} ({entry.get('sha256')}): the "
                        f"shard is corrupt or was replaced; re-run the shard writer for {self.out_dir}"
                    )
            shard = _Shard(path, self.seq_len, self.dtype, int(entry["rows"]))
            if (
                shard.reader.schema.metadata
                and int(shard.reader.schema.metadata.get(_META_SEQ_LEN, self.seq_len)) != self.seq_len
            ):
                raise CorpusmillError(f"{path}: seq_len differs from {MANIFEST}; re-run the shard writer")
            self._shards.append(shard)
            self._starts.append(self._starts[-1] + shard.rows)
        self._len = self._starts[-1]

    def padding(self, indices: np.ndarray) -> np.ndarray:
        """Per row: the padding tokens at its end (a held-out set's last row of a shard; 0 elsewhere)."""
        out = np.zeros(len(indices), dtype=np.int64)
        ends = {self._starts[k + 1] - 1: int(e.get("padding", 0)) for k, e in enumerate(self.shard_entries)}
        for j, i in enumerate(np.asarray(indices).tolist()):
            out[j] = ends.get(i, 0)
        return out

    def close(self) -> None:
        for shard in self._shards:
            shard.close()
        self._shards = []

    def __enter__(self) -> "ShardDataset":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # pickling (DataLoader workers, spawn): re-open the maps in the child without re-hashing.
    def __getstate__(self) -> Dict[str, Any]:
        return {"out_dir": self.out_dir, "manifest": self.manifest, "shard_entries": self.shard_entries}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.out_dir = state["out_dir"]
        self.manifest = state["manifest"]
        self.shard_entries = state["shard_entries"]
        self.seq_len = int(self.manifest["seq_len"])
        self.vocab_size = int(self.manifest["vocab_size"])
        self.dtype = token_dtype(self.vocab_size)
        self._open(verify=False)

    # -- access ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._len

    @property
    def num_tokens(self) -> int:
        return self._len * (self.seq_len + 1)

    @property
    def shard_paths(self) -> List[str]:
        return [s.path for s in self._shards]

    def locate(self, i: int) -> Tuple[int, int]:
        """(shard index, row within shard) of global row ``i``."""
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"row {i} out of range for {self._len} rows")
        s = bisect.bisect_right(self._starts, i) - 1
        return s, i - self._starts[s]

    def __getitem__(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        s, j = self.locate(int(i))
        return self._shards[s].row(j)

    def get_batch(self, indices: Sequence[int]) -> Tuple[np.ndarray, List[np.ndarray]]:
        """Rows ``indices`` stacked into a new ``(len(indices), seq_len + 1)`` array, and their starts."""
        out = np.empty((len(indices), self.seq_len + 1), dtype=self.dtype)
        starts = []
        for k, i in enumerate(indices):
            tokens, ds = self[i]
            out[k] = tokens
            starts.append(ds)
        return out, starts

    # -- Hugging Face route --------------------------------------------------------------------------
    def export_stream(self, dst_dir: str) -> List[str]:
        """Write Arrow IPC *stream* copies of the shards into ``dst_dir`` (plus a copy of the manifest).

        ``datasets.Dataset.from_file(path)`` opens each copy (it reads the stream format only); use
        ``datasets.concatenate_datasets`` for all of them. Returns the written paths, in shard order.
        """
        os.makedirs(dst_dir, exist_ok=True)
        paths = []
        for shard in self._shards:
            dst = os.path.join(dst_dir, os.path.basename(shard.path))
            tmp = f"{dst}.tmp-{os.getpid()}"
            reader = shard.reader
            with pa.OSFile(tmp, "wb") as sink:
                with pa.ipc.new_stream(sink, reader.schema) as writer:
                    for b in range(reader.num_record_batches):
                        writer.write_batch(reader.get_batch(b))
            os.replace(tmp, dst)
            paths.append(dst)
        manifest = dict(
            self.manifest,
            shards=list(self.shard_entries),
            ipc_format="stream",
            note="stream-format copies for datasets.Dataset.from_file; sha256 entries refer to the original IPC files",
        )
        write_bytes_local(
            os.path.join(dst_dir, MANIFEST), (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode("utf-8")
        )
        return paths

    def to_hf(self, cache_dir: str):
        """A ``datasets.Dataset`` over stream copies written to ``cache_dir`` (needs ``datasets``)."""
        try:
            import datasets  # noqa: PLC0415
        except ImportError:
            raise CorpusmillError("ShardDataset.to_hf needs the 'datasets' package (pip install datasets)") from None
        parts = [datasets.Dataset.from_file(p) for p in self.export_stream(cache_dir)]
        return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)

    def __repr__(self) -> str:
        return f"ShardDataset({self.out_dir!r}, rows={self._len}, seq_len={self.seq_len}, shards={len(self._shards)})"
