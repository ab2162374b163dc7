"""The mixer and the shard writer on real documents: achieved mixture, epochs, packing, determinism."""

from __future__ import annotations

import collections
import filecmp
import os
import shutil

import numpy as np
import pyarrow as pa
import pytest
import sentencepiece as spm
import yaml

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import read_output
from corpusmill.mixers.manifest import load_manifest
from corpusmill.mixers.plan import (
    bucket_of,
    cut_in_bucket,
    doc_hash,
    find_boundaries,
    in_fraction,
    original_row_order,
    plan_mixture,
)
from corpusmill.pipelines.mix import ShardConfig, read_counts, source_files, write_mixed_shards
from corpusmill.pipelines.recipe import run_recipe
from corpusmill.tokenize import ShardDataset, unpack
from corpusmill.tokenize.tokenizer import sha256_file

MIX = os.path.join(os.path.dirname(__file__), "data", "mixing")
SEQ_LEN = 128

MANIFEST = {
    "name": "mixtest",
    "seed": 7,
    "seq_len": SEQ_LEN,
    # the largest budget wiki_fr can fill within 2.45 passes: about 1.7M tokens
    "budget_tokens": "max",
    "tokenizer": {"vocab_size": 1000, "sample_chars": 300_000},
    "shards": {"rows_per_shard": 1000, "batch_rows": 64, "pack_group_tokens": 200_000},
    "sources": {
        "wiki_en": {"weight": 0.6, "documents": os.path.join(MIX, "wiki_en")},
        "wiki_fr": {"weight": 0.15, "epochs": 2.45, "documents": os.path.join(MIX, "wiki_fr")},
        "code": {"weight": 0.25, "documents": os.path.join(MIX, "code")},
    },
}


def write_manifest_yaml(tmp_path, data, name="m.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mix")
    data = dict(MANIFEST, output=str(tmp / "out"))
    result = run_recipe(write_manifest_yaml(tmp, data), log=lambda *_: None)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(result.shards_dir, "tokenizer.model"))
    return result, sp


@pytest.fixture(scope="module")
def documents(mixed):
    """Every document recovered from the shards (rows put back in packing order, then unpacked)."""
    result, _ = mixed
    ds = ShardDataset(result.shards_dir)
    order = original_row_order(len(ds), ds.manifest["seed"])
    rows = np.stack([ds[int(p)][0] for p in order])
    bounds = [ds[int(p)][1] for p in order]
    return unpack(rows, bounds, bos_id=1, eos_id=2), rows, bounds


@pytest.fixture(scope="module")
def source_docs(mixed):
    _, sp = mixed
    return {
        name: {d.id: tuple(sp.encode(d.text)) for d in read_output(os.path.join(MIX, name))}
        for name in MANIFEST["sources"]
    }


def appearances(documents, source_docs):
    by_tokens = {toks: (name, doc_id) for name, docs in source_docs.items() for doc_id, toks in docs.items()}
    counts = collections.Counter()
    unknown = 0
    for doc in documents[0]:
        key = by_tokens.get(tuple(doc.tolist()))
        if key is None:
            unknown += 1
        else:
            counts[key] += 1
    return counts, unknown


# ---------------------------------------------------------------------------------------------------
# the mixture
# ---------------------------------------------------------------------------------------------------
def test_achieved_mixture_within_half_a_point(mixed):
    result, _ = mixed
    man = result.shards_manifest
    assert man["budget_tokens"] >= 1_000_000
    mixture = man["mixture"]
    for name, spec in MANIFEST["sources"].items():
        assert abs(mixture[name]["share"] - spec["weight"]) < 0.005, (name, mixture[name])
        assert abs(mixture[name]["tokens"] - mixture[name]["target_tokens"]) < 0.005 * man["budget_tokens"]
    # every token of every row belongs to exactly one source
    assert sum(man["tokens_per_source"].values()) == man["rows"] * (SEQ_LEN + 1) == man["tokens"]
    assert man["tokenizer_sha256"] == man["tokenizer"]["sha256"]
    assert man["tokenizer_sha256"] == sha256_file(os.path.join(result.shards_dir, "tokenizer.model"))
    assert man["tokenizer_sha256"] == sha256_file(os.path.join(result.manifest.output, "tokenizer", "tokenizer.model"))


def test_epochs_repeat_whole_passes_plus_a_fraction(mixed, documents, source_docs):
    result, _ = mixed
    mixture = result.shards_manifest["mixture"]
    # wiki_fr is the source that bounds the budget: exactly its cap of 2.45 passes
    assert mixture["wiki_fr"]["epochs_target"] == pytest.approx(2.45, abs=1e-6)
    assert mixture["wiki_fr"]["epochs"] == pytest.approx(2.45, abs=0.01)
    counts, unknown = appearances(documents, source_docs)
    assert unknown <= result.plan.pack_groups  # only documents cut by a group's dropped tail
    for name, docs in source_docs.items():
        sp = result.plan.sources[name]
        seen = [counts[(name, doc_id)] for doc_id in docs]
        # every document is in every whole pass, some also in the fractional one (a cut one may miss one)
        assert min(seen) >= sp.full_passes - 1 and max(seen) <= sp.full_passes + 1, name
        assert sum(s >= sp.full_passes for s in seen) >= len(seen) - unknown
        tokens = sum(counts[(name, d)] * (len(t) + 2) for d, t in docs.items())
        assert tokens / sp.source_tokens == pytest.approx(sp.epochs, abs=0.03), name
    fr = [counts[("wiki_fr", d)] for d in source_docs["wiki_fr"]]
    assert sum(fr) / len(fr) == pytest.approx(2.45, abs=0.05)  # "appears about 2.45 times"


def test_fraction_is_the_exact_hash_prefix(mixed, documents, source_docs):
    """Beam's histogram + boundary-bucket selection equals the brute-force definition: sort every
    document by hash(seed, id, pass), take the prefix whose tokens are closest to the target."""
    result, _ = mixed
    counts, _ = appearances(documents, source_docs)
    seed = result.plan.seed
    for name, docs in source_docs.items():
        sp = result.plan.sources[name]
        entries = sorted((doc_hash(seed, d, sp.full_passes), d, len(t) + 2) for d, t in docs.items())
        cum, best, best_k = 0, sp.fraction_tokens, 0
        for k, (_, _, n) in enumerate(entries, 1):
            cum += n
            if abs(cum - sp.fraction_tokens) < best:
                best, best_k = abs(cum - sp.fraction_tokens), k
        expected = {d for _, d, _ in entries[:best_k]}
        got = {d for d in docs if counts[(name, d)] == sp.full_passes + 1}
        assert len(got ^ expected) <= result.plan.pack_groups, name  # cut tails aside, the same documents
        assert len(expected) > 10
        # the two-level search (histogram, then one bucket) finds that same prefix
        hist = collections.Counter()
        for h, _, n in entries:
            hist[(name, bucket_of(h))] += n
        bucket, need = find_boundaries(hist.items(), {name: sp.fraction_tokens})[name]
        cut = cut_in_bucket([e for e in entries if bucket_of(e[0]) == bucket], need)
        chosen = {d for h, d, _ in entries if in_fraction(h, d, (bucket, need), cut)}
        assert chosen == expected


# ---------------------------------------------------------------------------------------------------
# packing
# ---------------------------------------------------------------------------------------------------
def test_pack_unpack_round_trip(mixed, documents, source_docs):
    result, _ = mixed
    docs, rows, bounds = documents
    all_tokens = {toks for per in source_docs.values() for toks in per.values()}
    complete = [d for d in docs if tuple(d.tolist()) in all_tokens]
    man = result.shards_manifest
    assert len(complete) == sum(s["documents_complete"] for s in man["mixture"].values())
    for r, starts in enumerate(bounds):
        assert (rows[r][starts] == 1).all()  # every recorded start is a BOS
    assert int((rows == 1).sum()) == sum(len(b) for b in bounds)
    # fixed rows per shard, and the shards open with plain pyarrow
    assert [s["rows"] for s in man["shards"][:-1]] == [1000] * (len(man["shards"]) - 1)
    first = os.path.join(result.shards_dir, man["shards"][0]["file"])
    table = pa.ipc.open_file(pa.memory_map(first)).read_all()
    assert table.num_rows == 1000 and table.schema.field("tokens").type == pa.list_(pa.uint16(), SEQ_LEN + 1)


def test_multiprocessing_runner_gives_identical_shards(mixed, tmp_path):
    result, _ = mixed
    m = result.manifest
    files = {s.name: source_files(s.name, s.documents) for s in m.sources}
    out = str(tmp_path / "mp")
    write_mixed_shards(
        ShardConfig(
            files=files,
            tokenizer=os.path.join(m.output, "tokenizer", "tokenizer.model"),
            output=out,
            plan=result.plan,
            rows_per_shard=m.shards.rows_per_shard,
            batch_rows=m.shards.batch_rows,
            # what the recipe records beside the shards (its name, and the pools met by a few documents)
            extra={
                "recipe": m.name,
                **({"repetition_warnings": result.plan.few_documents} if result.plan.few_documents else {}),
            },
        ),
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    )
    names = sorted(f for f in os.listdir(result.shards_dir) if f.endswith(".arrow") or f == "manifest.json")
    assert len(names) > 5
    match, mismatch, errors = filecmp.cmpfiles(result.shards_dir, out, names, shallow=False)
    assert mismatch == [] and errors == [] and match == names


def test_checksum_mismatch_is_detected(mixed, tmp_path):
    result, _ = mixed
    copy = tmp_path / "shards"
    shutil.copytree(result.shards_dir, copy)
    victim = copy / result.shards_manifest["shards"][3]["file"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, inside the token data
    victim.write_bytes(bytes(data))
    with pytest.raises(CorpusmillError, match="sha256 .* does not match"):
        ShardDataset(str(copy))
    assert len(ShardDataset(str(copy), verify=False)) == result.shards_manifest["rows"]


# ---------------------------------------------------------------------------------------------------
# the manifest and the plan
# ---------------------------------------------------------------------------------------------------
def _with(tmp_path, **changes):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in MANIFEST.items()}
    data["sources"] = {k: dict(v) for k, v in MANIFEST["sources"].items()}
    data["output"] = str(tmp_path / "out")
    for key, value in changes.items():
        if "." in key:
            src, field = key.split(".")
            if value is None:
                data["sources"][src].pop(field, None)
            else:
                data["sources"][src][field] = value
        else:
            data[key] = value
    return write_manifest_yaml(tmp_path, data)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"wiki_en.weight": 0.5}, "sources.*.weight: the weights sum to 0.9"),
        ({"code.documents": "/nonexistent/corpus"}, "sources.code.documents: /nonexistent/corpus does not exist"),
        ({"wiki_en.wieght": 0.6}, "sources.wiki_en.wieght: unknown key"),
        ({"code.weight": None}, "sources.code.weight: missing"),
        ({"code.processor": "ccnet"}, "sources.code: give exactly one of 'documents'"),
        ({"budget_tokens": "lots"}, "budget_tokens: expected a number of tokens or 'max'"),
        ({"seq_len": 0}, "seq_len: must be at least 1"),
        # numbers no data set holds (issue 26): one line, not 5e25 passes and a MemoryError
        ({"budget_tokens": 1e30}, "budget_tokens: must be at most 1,000,000,000,000,000, got 1e+30"),
        ({"seq_len": 1e9}, "seq_len: must be at most 1,048,576"),
        ({"wiki_fr.epochs": 1e20}, "sources.wiki_fr.epochs: must be at most 1000"),
        ({"code.holdout": 0.7}, "sources.code.holdout: expected the share of its documents held out, in [0, 0.5)"),
    ],
)
def test_manifest_errors_name_the_field(tmp_path, changes, field):
    with pytest.raises(CorpusmillError) as err:
        load_manifest(_with(tmp_path, **changes))
    assert field in str(err.value)


def test_budget_a_source_cannot_fill(mixed, tmp_path):
    result, _ = mixed
    counts = read_counts(os.path.join(result.manifest.output, "counts"))["sources"]
    m = load_manifest(_with(tmp_path, budget_tokens=5_000_000))
    with pytest.raises(CorpusmillError) as err:
        plan_mixture(m, counts)
    msg = str(err.value)
    assert "sources.wiki_fr.epochs" in msg and "above its cap of 2.45" in msg
    # the message's suggested budget is the one 'max' picks, and that one plans
    assert f"at most {result.plan.budget_tokens:,}" in msg
    ok = plan_mixture(load_manifest(_with(tmp_path, budget_tokens=result.plan.budget_tokens)), counts)
    assert ok.sources["wiki_fr"].epochs == pytest.approx(2.45, abs=1e-5)


def test_a_budget_no_source_can_hold_is_refused_at_plan_time(mixed, tmp_path):
    """Without an epochs cap, a budget that asks 1e9 passes of a source is one line naming the field and
    the largest budget that plans (issue 26: budget_tokens 1e30 ran 5e25 epochs into a MemoryError)."""
    result, _ = mixed
    counts = read_counts(os.path.join(result.manifest.output, "counts"))["sources"]
    m = load_manifest(_with(tmp_path, budget_tokens=10**15, **{"wiki_fr.epochs": None}))
    with pytest.raises(CorpusmillError) as err:
        plan_mixture(m, counts)
    msg = str(err.value)
    assert "passes over its" in msg and "above the 1000 any mix writes" in msg, msg
    fits = int(msg.split("lower budget_tokens to at most ")[1].split(", or")[0].replace(",", ""))
    plan_mixture(load_manifest(_with(tmp_path, budget_tokens=fits, **{"wiki_fr.epochs": None})), counts)


def test_epochs_only_manifest(mixed, tmp_path):
    result, _ = mixed
    counts = read_counts(os.path.join(result.manifest.output, "counts"))["sources"]
    path = _with(
        tmp_path,
        budget_tokens=None,
        **{
            "wiki_en.weight": None,
            "wiki_fr.weight": None,
            "code.weight": None,
            "wiki_en.epochs": 1.1,
            "wiki_fr.epochs": 2.45,
            "code.epochs": 0.64,
        },
    )
    data = yaml.safe_load(open(path, encoding="utf-8"))
    data.pop("budget_tokens")
    path = write_manifest_yaml(tmp_path, data, "epochs.yaml")
    plan = plan_mixture(load_manifest(path), counts)
    assert plan.mode == "epochs"
    for name, epochs in (("wiki_en", 1.1), ("wiki_fr", 2.45), ("code", 0.64)):
        sp = plan.sources[name]
        assert sp.target_tokens == round(epochs * counts[name]["tokens"])
        assert sp.full_passes == int(epochs) and sp.fraction_tokens == sp.target_tokens - int(epochs) * sp.source_tokens
    assert plan.budget_tokens == sum(s.target_tokens for s in plan.sources.values())
    assert sum(s.weight for s in plan.sources.values()) == pytest.approx(1.0)


def test_llama1_manifest_carries_the_paper_numbers():
    root = os.path.join(os.path.dirname(__file__), "..", "manifests")
    m = load_manifest(os.path.join(root, "llama1.yaml"))
    got = {s.name: (s.weight, s.epochs) for s in m.sources}
    assert got == {
        "cc": (0.67, 1.10),
        "c4": (0.15, 1.06),
        "github": (0.045, 0.64),
        "wikipedia": (0.045, 2.45),
        "books": (0.045, 2.23),
        "arxiv": (0.025, 1.06),
        "stackexchange": (0.02, 1.03),
    }
    assert (m.budget_tokens, m.seq_len, m.tokenizer.vocab_size) == (1_400_000_000_000, 2048, 32000)
    # with RedPajama v1's token counts (RECIPE.md) C4 cannot give 15% of 1.4T within 1.06 passes;
    # the largest budget that fits every cap is GitHub's: 0.64 x 59B / 0.045
    redpajama = {"cc": 878, "c4": 175, "github": 59, "books": 26, "arxiv": 28, "wikipedia": 24, "stackexchange": 20}
    counts = {k: {"tokens": v * 10**9, "documents": 1} for k, v in redpajama.items()}
    with pytest.raises(
        CorpusmillError,
        match=r"sources\.c4\.epochs: .* above its cap of 1\.06; lower budget_tokens "
        r"to at most 839,111,111,111",
    ):
        plan_mixture(m, counts)
    assert load_manifest(os.path.join(root, "demo.yaml")).mode == "weights"


def test_a_source_that_falls_to_zero_tokens_stops_the_run(mixed, tmp_path):
    """Issue 17: a source with a weight whose target is under half a document got 0 tokens, silently."""
    result, _ = mixed
    counts = read_counts(os.path.join(result.manifest.output, "counts"))["sources"]
    m = result.manifest
    files = {s.name: source_files(s.name, s.documents) for s in m.sources}
    tokenizer = os.path.join(m.output, "tokenizer", "tokenizer.model")

    def shards(out, **changes):
        plan = plan_mixture(load_manifest(_with(tmp_path, **changes)), counts)
        return write_mixed_shards(
            ShardConfig(
                files=files,
                tokenizer=tokenizer,
                output=str(out),
                plan=plan,
                rows_per_shard=m.shards.rows_per_shard,
                batch_rows=m.shards.batch_rows,
            )
        )

    small = {
        "budget_tokens": 30_000,
        "wiki_en.weight": 0.599,
        "wiki_fr.weight": 0.4,
        "code.weight": 0.001,
        "wiki_fr.epochs": None,
    }
    avg = counts["code"]["tokens"] / counts["code"]["documents"]
    assert 0.001 * 30_000 < avg / 2  # code's target is 30 tokens, under half of its average document
    with pytest.raises(CorpusmillError) as err:
        shards(tmp_path / "zero", **small)
    msg = str(err.value)
    assert "sources.code: weight 0.001 but 0 tokens in the shards" in msg
    assert f"a budget_tokens of at least {int(-(-avg // 0.001)):,}" in msg
    assert not (tmp_path / "zero").exists()  # complete or absent: the failed run leaves nothing to train on
    # allowed knowingly: written, with the problem on record
    written = shards(tmp_path / "allowed", allow_off_target=True, **small)
    assert written["mixture"]["code"]["tokens"] == 0 and "sources.code" in written["mixture_warnings"][0]
    # a tolerance that is not a share is refused by name
    with pytest.raises(CorpusmillError, match="share_tolerance: expected a share in"):
        load_manifest(_with(tmp_path, share_tolerance=5))


def test_held_out_documents_never_reach_a_training_row(mixed, tmp_path):
    """Issue 17: a source's holdout sets documents aside before any repetition or packing, into
    shards/eval/<source>/; none of them is in a training row, and the trainer reports each source's loss."""
    import dataclasses
    import json as _json

    from corpusmill.mixers.plan import held_out
    from corpusmill.train.configs import load_config
    from corpusmill.train.loop import train

    _, sp = mixed
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in MANIFEST.items()}
    data["sources"] = {k: dict(v, holdout=0.05) for k, v in MANIFEST["sources"].items()}
    result = run_recipe(write_manifest_yaml(tmp_path, dict(data, output=str(tmp_path / "run"))), log=lambda *_: None)
    man = result.shards_manifest
    seed = man["seed"]
    train_docs = {tuple(d.tolist()) for d in unpack(*_rows_in_order(result.shards_dir), bos_id=1, eos_id=2)}
    for name in MANIFEST["sources"]:
        docs = read_output(os.path.join(MIX, name))
        held = [d for d in docs if held_out(seed, d.id, 0.05)]
        assert 0 < len(held) < len(docs) * 0.15
        assert man["held_out"][name]["documents"] == len(held) == result.plan.sources[name].holdout_documents
        for d in held:  # by document: not one held-out document is in the training rows
            assert tuple(sp.encode(d.text)) not in train_docs, (name, d.id)
        kept = [d for d in docs if not held_out(seed, d.id, 0.05)]
        assert sum(tuple(sp.encode(d.text)) in train_docs for d in kept) > 0.9 * len(kept)
        # the eval set holds the held-out documents, once each and whole (issue 29: the last row is filled up
        # with EOS, not cut; the padding is what the manifest says), but those seen in training
        ev = ShardDataset(os.path.join(result.shards_dir, "eval", name))
        pad = ev.padding(np.arange(len(ev)))
        assert pad[:-1].sum() == 0 and pad[-1] == sum(int(e["padding"]) for e in ev.shard_entries) < SEQ_LEN + 1
        last = ev[len(ev) - 1][0]
        assert (pad[-1] == 0 or (last[-int(pad[-1]) :] == 2).all()) and pad[-1] < len(last)
        flat = np.concatenate([ev[i][0] for i in range(len(ev))])[: len(ev) * (SEQ_LEN + 1) - int(pad[-1])]
        starts = [i * (SEQ_LEN + 1) + p for i in range(len(ev)) for p in ev[i][1]] + [len(flat)]
        eval_docs = collections.Counter(tuple(flat[a + 1 : b - 1].tolist()) for a, b in zip(starts, starts[1:]))
        found = sum(eval_docs[tuple(sp.encode(d.text))] for d in held)
        dirty = ev.manifest["contamination"]["contaminated"]
        assert found == len(held) - dirty and max(eval_docs.values()) == 1 and sum(eval_docs.values()) == found
    # Hugging Face opens the directory as it is: the dataset card names train and validation (issue 29)
    import datasets

    hf = datasets.load_dataset(result.shards_dir, cache_dir=str(tmp_path / "hf-cache"))
    assert set(hf) == {"train", "validation"} and len(hf["train"]) == man["rows"]
    assert len(hf["validation"]) == sum(
        len(ShardDataset(os.path.join(result.shards_dir, "eval", n))) for n in MANIFEST["sources"]
    )
    # the trainer evaluates each source's held-out set and names it
    model, tr = load_config("tiny")
    tr = dataclasses.replace(
        tr, steps=2, eval_every=1, ckpt_every=0, log_every=1000, seq_len=SEQ_LEN, batch_tokens=4 * SEQ_LEN, eval_rows=8
    )
    train(dataclasses.replace(model, max_seq_len=SEQ_LEN), tr, result.shards_dir, str(tmp_path / "train"), stream=None)
    logs = [_json.loads(line) for line in open(tmp_path / "train" / "train_log.jsonl")]
    evals = [r for r in logs if "eval_loss_by_source" in r]
    assert evals and set(evals[-1]["eval_loss_by_source"]) == set(MANIFEST["sources"])
    assert evals[-1]["eval_kind"] == "held-out documents"


def _rows_in_order(shards_dir):
    ds = ShardDataset(shards_dir)
    order = original_row_order(len(ds), ds.manifest["seed"])
    return np.stack([ds[int(p)][0] for p in order]), [ds[int(p)][1] for p in order]


def test_megatron_export_of_mixed_shards_is_in_packing_order(mixed, tmp_path):
    from corpusmill.tokenize.megatron import export_megatron

    result, _ = mixed
    got = export_megatron(result.shards_dir, str(tmp_path / "mix"))
    rows, _bounds = _rows_in_order(result.shards_dir)
    tokens = np.fromfile(str(tmp_path / "mix.bin"), dtype=rows.dtype)
    np.testing.assert_array_equal(tokens, rows.reshape(-1))
    assert got["sequences"] > len(MANIFEST["sources"]) * 10


def test_a_second_mixture_repacks_the_stored_tokens_without_sentencepiece(mixed, tmp_path, monkeypatch):
    """Issue 17: tokenize once; another seq_len and another mixture (an annealing phase) over the same
    documents is a re-pack of RUN/tokens (tokens_from), with SentencePiece never called."""
    from corpusmill.tokenize import tokenizer as tk

    result, sp = mixed

    def refuse(*_a, **_k):
        raise AssertionError("SentencePiece ran again")

    monkeypatch.setattr(tk.SentencePieceTokenizer, "encode", refuse)
    monkeypatch.setattr(tk.SentencePieceTokenizer, "encode_many", refuse)
    anneal = {
        "name": "anneal",
        "seed": 7,
        "seq_len": 64,
        "budget_tokens": 200_000,
        "tokens_from": result.manifest.output,
        "shards": {"rows_per_shard": 500, "batch_rows": 64, "pack_group_tokens": 100_000},
        "sources": {"wiki_en": {"weight": 0.8}, "code": {"weight": 0.2}},  # a subset, new weights
        "output": str(tmp_path / "anneal"),
    }
    again = run_recipe(write_manifest_yaml(tmp_path, anneal), log=lambda *_: None)
    man = again.shards_manifest
    assert man["seq_len"] == 64 and set(man["mixture"]) == {"wiki_en", "code"}
    assert abs(man["mixture"]["code"]["share"] - 0.2) < 0.01
    assert man["tokenizer_sha256"] == result.shards_manifest["tokenizer_sha256"]
    assert "tokens" not in again.ran and not os.path.exists(tmp_path / "anneal" / "tokens")
    # the documents in the new rows are the first run's tokenized documents
    source = {tuple(sp.encode(d.text)) for name in ("wiki_en", "code") for d in read_output(os.path.join(MIX, name))}
    docs = unpack(*_rows_in_order(again.shards_dir), bos_id=1, eos_id=2)
    whole = [tuple(d.tolist()) for d in docs]
    assert sum(w in source for w in whole) > 0.8 * len(whole)
    # a source the tokens do not have is named
    anneal["sources"]["books"] = {"weight": 0.1}
    anneal["sources"]["wiki_en"]["weight"] = 0.7
    with pytest.raises(CorpusmillError, match="no tokenized documents for source 'books'"):
        run_recipe(
            write_manifest_yaml(tmp_path, dict(anneal, output=str(tmp_path / "b")), "b.yaml"), log=lambda *_: None
        )


def test_a_share_met_by_repeating_a_few_documents_is_said(mixed, tmp_path):
    """Issue 28: the llama3 demo's math share was 5 documents repeated 3.54 times, silently. The plan names
    every pool whose share is met by repeating fewer than min_distinct_documents documents, with its epochs."""
    result, _ = mixed
    counts = read_counts(os.path.join(result.manifest.output, "counts"))["sources"]
    docs_fr = int(counts["wiki_fr"]["documents"])
    plan = plan_mixture(load_manifest(_with(tmp_path, min_distinct_documents=docs_fr + 1)), counts)
    fr = plan.sources["wiki_fr"]
    assert fr.epochs > 1 and any(
        line.startswith(
            f"sources.wiki_fr: its 15.0% share is met by repeating {docs_fr} distinct documents {fr.epochs:.2f} times"
        )
        for line in plan.few_documents
    ), plan.few_documents
    assert plan_mixture(load_manifest(_with(tmp_path, min_distinct_documents=1)), counts).few_documents == []
    with pytest.raises(CorpusmillError, match="min_distinct_documents: must be at least 1"):
        load_manifest(_with(tmp_path, min_distinct_documents=0))


def test_held_out_documents_seen_in_training_are_left_out_of_the_eval_set(tmp_path):
    """Issue 29, item 6: held-out sets are disjoint by id but the web repeats itself. Five training
    Wikipedia extracts are copied, a sentence changed, under ids the holdout takes: each copy is found by
    its 32-token windows, left out of the eval set and counted in the manifest; the others stay."""
    import dataclasses as dc

    from corpusmill.io.documents import write_documents_file
    from corpusmill.mixers.contamination import THRESHOLD
    from corpusmill.mixers.plan import held_out

    seed, share = MANIFEST["seed"], 0.1
    docs = read_output(os.path.join(MIX, "wiki_en"))
    trained = [d for d in docs if not held_out(seed, d.id, share) and len(d.text) > 800][:5]
    assert len(trained) == 5
    copies, n = [], 0
    for d in trained:
        while not held_out(seed, f"copy-{n}", share):
            n += 1
        sentences = d.text.split(". ")
        sentences[1] = "This sentence was changed in the copy"
        copies.append(dc.replace(d, id=f"copy-{n}", text=". ".join(sentences)))
        n += 1
    src = tmp_path / "wiki_en"
    src.mkdir()
    write_documents_file(str(src / "part-00000.jsonl.gz"), docs + copies, "jsonl")
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in MANIFEST.items()}
    data["sources"] = {"wiki_en": {"weight": 1.0, "documents": str(src), "holdout": share}}
    data["budget_tokens"] = 200_000
    result = run_recipe(write_manifest_yaml(tmp_path, dict(data, output=str(tmp_path / "run"))), log=lambda *_: None)
    ev = ShardDataset(os.path.join(result.shards_dir, "eval", "wiki_en"))
    report = ev.manifest["contamination"]
    held = [d for d in docs + copies if held_out(seed, d.id, share)]
    assert report["documents"] == len(held) and report["contaminated"] >= len(copies)
    assert report["seen_share"] > report["seen_share_kept"] and report["seen_share_kept"] < THRESHOLD
    sp = spm.SentencePieceProcessor(model_file=os.path.join(result.shards_dir, "tokenizer.model"))
    rows = np.stack([ev[i][0] for i in range(len(ev))])
    eval_docs = {tuple(x.tolist()) for x in unpack(rows, [ev[i][1] for i in range(len(ev))], bos_id=1, eos_id=2)}
    assert not any(tuple(sp.encode(c.text)) in eval_docs for c in copies)  # every copy left out
    clean = [d for d in held if not d.id.startswith("copy-")]
    assert (
        sum(tuple(sp.encode(d.text)) in eval_docs for d in clean)
        >= len(clean) - report["contaminated"] + len(copies) - 2
    )
    assert result.shards_manifest["held_out"]["wiki_en"]["documents"] == len(held)
