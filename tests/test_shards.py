"""Arrow training shards: packing, writing, the manifest, and the zero-copy reader."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pyarrow as pa
import pytest
from helpers import BOS, EOS, build_shards, random_docs  # noqa: E402

from corpusmill.core.errors import CorpusmillError
from corpusmill.tokenize import ShardDataset
from corpusmill.tokenize.shards import (
    pack_documents,
    token_dtype,
    unpack,
)


def test_token_dtype():
    assert token_dtype(32000) == np.uint16
    assert token_dtype(65536) == np.uint16  # ids 0..65535 fit
    assert token_dtype(65537) == np.uint32
    assert token_dtype(128256) == np.uint32  # Llama 3


def test_pack_unpack_round_trip():
    docs = random_docs(60, 32000, seed=1) + [[]]  # an empty document still gets BOS/EOS
    seq_len = 50
    stats = {}
    rows, bounds = pack_documents(docs, seq_len, BOS, EOS, vocab_size=32000, stats=stats)
    assert rows.shape[1] == seq_len + 1 and rows.dtype == np.uint16
    total = sum(len(d) + 2 for d in docs)
    assert stats["tokens"] == total
    assert stats["tokens_dropped"] == total % (seq_len + 1) == total - rows.size
    # every row either starts a document at 0 or continues one
    flat = rows.reshape(-1)
    for r, starts in enumerate(bounds):
        assert starts == sorted(starts)
        for p in starts:
            assert rows[r, p] == BOS
    assert int((flat == BOS).sum()) == sum(len(b) for b in bounds)
    back = unpack(rows, bounds, bos_id=BOS, eos_id=EOS)
    kept_docs = len(docs) - stats["documents_dropped"]
    assert len(back) == kept_docs
    for orig, got in zip(docs[: kept_docs - 1], back[:-1]):
        assert got.tolist() == orig
    # the last document kept may be cut by the dropped tail: a prefix of the original
    last_orig, last_got = docs[kept_docs - 1], back[-1].tolist()
    assert last_orig[: len(last_got)] == last_got


def test_pack_uint32_and_vocab_check():
    rows, _ = pack_documents([[70000, 3, 4]], 3, BOS, EOS, vocab_size=128256)
    assert rows.dtype == np.uint32 and rows[0].tolist() == [BOS, 70000, 3, 4]
    with pytest.raises(ValueError, match="outside the vocabulary"):
        pack_documents([[70000]], 3, BOS, EOS, vocab_size=32000)


def test_random_access_equals_written(tmp_path):
    rows, bounds, infos = build_shards(tmp_path, random_docs(80, 32000, seed=2))
    assert len(infos) > 3 and rows.shape[0] % 7  # several shards, a short last shard
    ds = ShardDataset(str(tmp_path))
    assert len(ds) == rows.shape[0]
    assert ds.seq_len == 64 and ds.manifest["vocab_size"] == 32000
    assert ds.manifest["tokens_per_source"] == {"test": int(rows.size)}
    order = list(range(len(ds)))
    random.Random(0).shuffle(order)
    for i in order:
        tokens, starts = ds[i]
        assert tokens.shape == (65,) and tokens.dtype == np.uint16
        np.testing.assert_array_equal(tokens, rows[i])
        assert starts.dtype == np.int32 and starts.tolist() == bounds[i]
    np.testing.assert_array_equal(ds[-1][0], rows[-1])
    with pytest.raises(IndexError):
        ds[len(ds)]
    batch, starts = ds.get_batch([5, 0, 5])
    np.testing.assert_array_equal(batch, rows[[5, 0, 5]])
    # manifest: sorted keys, indent 2
    text = (tmp_path / "manifest.json").read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


def test_zero_copy_from_memory_map(tmp_path):
    build_shards(tmp_path, random_docs(30, 32000, seed=3))
    ds = ShardDataset(str(tmp_path))
    s, j = ds.locate(10)
    tokens, _ = ds[10]
    assert not tokens.flags.writeable and not tokens.flags.owndata
    # the view's memory lies inside the shard's mapping
    shard = ds._shards[s]
    size = os.path.getsize(shard.path)
    shard.source.seek(0)
    mapped = shard.source.read_buffer(size)  # zero-copy slice of the whole mapping
    assert mapped.address <= tokens.ctypes.data < mapped.address + size
    assert tokens.ctypes.data + tokens.nbytes <= mapped.address + size
    # and it is the same memory as the batch view it came from (no per-row copy)
    tokens2, _ = ds[10]
    assert np.shares_memory(tokens, tokens2)


def test_plain_pyarrow_opens_a_shard(tmp_path):
    rows, bounds, infos = build_shards(tmp_path, random_docs(30, 32000, seed=4))
    reader = pa.ipc.open_file(pa.memory_map(str(tmp_path / infos[0]["file"])))
    table = reader.read_all()
    assert table.schema.field("tokens").type == pa.list_(pa.uint16(), 65)
    assert table.schema.field("doc_starts").type == pa.list_(pa.int32())
    assert table.num_rows == infos[0]["rows"]
    np.testing.assert_array_equal(np.asarray(table.column("tokens").combine_chunks().values).reshape(-1, 65), rows[:7])
    assert table.column("doc_starts").to_pylist() == bounds[:7]
    # uncompressed, fixed rows per record batch
    assert reader.num_record_batches == 3
    assert [reader.get_batch(b).num_rows for b in range(3)] == [3, 3, 1]


def test_checksum_mismatch_is_a_clear_error(tmp_path):
    _, _, infos = build_shards(tmp_path, random_docs(30, 32000, seed=5))
    path = tmp_path / infos[1]["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte
    path.write_bytes(bytes(data))
    with pytest.raises(CorpusmillError) as err:
        ShardDataset(str(tmp_path))
    msg = str(err.value)
    assert infos[1]["file"] in msg and "sha256" in msg and "re-run the shard writer" in msg
    ShardDataset(str(tmp_path), verify=False)  # opt-out opens it anyway


def test_missing_shard_and_manifest(tmp_path):
    _, _, infos = build_shards(tmp_path, random_docs(30, 32000, seed=6))
    os.remove(tmp_path / infos[2]["file"])
    with pytest.raises(CorpusmillError, match=r"shard-00002.arrow is listed in _SUCCESS but is missing"):
        ShardDataset(str(tmp_path))
    with pytest.raises(CorpusmillError, match="no shard manifest"):
        ShardDataset(str(tmp_path / "nowhere"))


def test_a_shard_directory_without_its_completion_marker_is_refused(tmp_path):
    build_shards(tmp_path, random_docs(30, 32000, seed=6))
    assert len(ShardDataset(str(tmp_path))) > 0
    os.remove(tmp_path / "_SUCCESS")  # what a killed shard stage leaves: shards and a manifest, no marker
    with pytest.raises(CorpusmillError, match=r"incomplete corpusmill output \(no _SUCCESS"):
        ShardDataset(str(tmp_path))


def test_subset_pickle_and_no_temp_files(tmp_path):
    import pickle

    rows, _, infos = build_shards(tmp_path, random_docs(40, 32000, seed=7))
    assert sorted(os.listdir(tmp_path)) == sorted([i["file"] for i in infos] + ["manifest.json", "_SUCCESS"])
    last = ShardDataset(str(tmp_path), shards=[len(infos) - 1])
    assert len(last) == infos[-1]["rows"]
    np.testing.assert_array_equal(last[0][0], rows[sum(i["rows"] for i in infos[:-1])])
    clone = pickle.loads(pickle.dumps(last))
    np.testing.assert_array_equal(clone[0][0], last[0][0])


def test_export_stream(tmp_path):
    (tmp_path / "src").mkdir()
    rows, _, _ = build_shards(tmp_path / "src", random_docs(30, 32000, seed=8))
    ds = ShardDataset(str(tmp_path / "src"))
    paths = ds.export_stream(str(tmp_path / "hf"))
    got = []
    for p in paths:
        with pa.OSFile(p, "rb") as fh:
            table = pa.ipc.open_stream(fh).read_all()
        got.append(np.asarray(table.column("tokens").combine_chunks().values).reshape(-1, 65))
    np.testing.assert_array_equal(np.concatenate(got), rows)


def test_export_stream_opens_in_hf_datasets(tmp_path):
    datasets = pytest.importorskip("datasets", reason="the Hugging Face route needs `datasets`")
    rows, bounds, _ = build_shards(tmp_path, random_docs(30, 32000, seed=9))
    ds = ShardDataset(str(tmp_path))
    with pytest.raises(Exception):  # the reason export_stream exists: from_file wants a stream
        datasets.Dataset.from_file(ds.shard_paths[0])
    hf = ds.to_hf(str(tmp_path / "hf"))
    assert len(hf) == len(ds)
    hf.set_format("numpy")
    np.testing.assert_array_equal(np.stack(list(hf[:]["tokens"])), rows)
    assert [list(x) for x in hf["doc_starts"]] == bounds


def test_hf_datasets_reads_the_shards_as_they_are(tmp_path):
    """``datasets.load_dataset("arrow", data_files=...)`` reads the IPC files with no export (issue 17)."""
    datasets = pytest.importorskip("datasets", reason="the Hugging Face route needs `datasets`")
    (tmp_path / "s").mkdir()
    rows, bounds, _ = build_shards(tmp_path / "s", random_docs(30, 32000, seed=11))
    ds = ShardDataset(str(tmp_path / "s"))
    hf = datasets.load_dataset(
        "arrow", data_files=list(ds.shard_paths), split="train", cache_dir=str(tmp_path / "cache")
    )
    hf.set_format("numpy")
    np.testing.assert_array_equal(np.stack(list(hf[:]["tokens"])), rows)
    assert [list(x) for x in hf["doc_starts"]] == bounds


def test_uint32_shards_for_large_vocabularies(tmp_path):
    """A vocabulary over 65536 (Llama 3: 128256) is stored as uint32 and read back unchanged."""
    vocab = 128256
    docs = random_docs(40, vocab, seed=10)
    assert max(max(d) for d in docs if d) >= 65536  # ids that do not fit uint16
    rows, bounds, infos = build_shards(tmp_path, docs, vocab=vocab)
    assert rows.dtype == np.uint32
    ds = ShardDataset(str(tmp_path))
    assert ds.manifest["token_dtype"] == "uint32"
    reader = pa.ipc.open_file(pa.memory_map(str(tmp_path / infos[0]["file"])))
    assert reader.schema.field("tokens").type == pa.list_(pa.uint32(), 65)
    for i in range(len(ds)):
        tokens, starts = ds[i]
        assert tokens.dtype == np.uint32
        np.testing.assert_array_equal(tokens, rows[i])
        assert starts.tolist() == bounds[i]


def test_megatron_indexed_dataset_export_reads_back(tmp_path):
    """Issue 17: the shards as Megatron's .bin/.idx: one sequence per document copy, the rows' tokens in
    packing order; read back with megatron-core's own reader when it is installed, and by the format."""
    import struct

    from corpusmill.cli import main as cli_main
    from corpusmill.tokenize.megatron import export_megatron

    (tmp_path / "s").mkdir()
    docs = random_docs(40, 32000, seed=12)
    rows, bounds, _ = build_shards(tmp_path / "s", docs)
    prefix = str(tmp_path / "mg" / "corpus")
    got = export_megatron(str(tmp_path / "s"), prefix)
    assert got["tokens"] == rows.size and got["rows"] == len(rows)
    idx = open(prefix + ".idx", "rb").read()
    assert idx[:9] == b"MMIDIDX\x00\x00" and struct.unpack("<Q", idx[9:17])[0] == 1 and idx[17] == 8  # uint16
    n, ndocs = struct.unpack("<QQ", idx[18:34])
    lengths = np.frombuffer(idx, dtype=np.int32, count=n, offset=34)
    tokens = np.fromfile(prefix + ".bin", dtype=np.uint16)
    np.testing.assert_array_equal(tokens, rows.reshape(-1))  # (these shards are not shuffled)
    assert ndocs == n + 1 and lengths.sum() == tokens.size
    # every sequence starts where a row marks a document start (BOS), the first one aside if a row starts mid-document
    flat_starts = {r * rows.shape[1] + s for r, b in enumerate(bounds) for s in b}
    ends = np.cumsum(lengths)
    assert set(ends[:-1].tolist()) <= flat_starts and all(tokens[e] == BOS for e in ends[:-1])
    mc = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    ds = mc.IndexedDataset(prefix)
    assert len(ds) == n and np.array_equal(ds.document_indices, np.arange(n + 1))
    np.testing.assert_array_equal(np.concatenate([ds[i] for i in range(len(ds))]), tokens)
    assert cli_main(["export-shards", str(tmp_path / "s"), "--to", "megatron", "--output", prefix]) == 2  # exists
    assert cli_main(["export-shards", str(tmp_path / "s"), "--to", "megatron", "--output", prefix, "--overwrite"]) == 0
