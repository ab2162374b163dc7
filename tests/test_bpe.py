"""Llama 3's byte-level BPE (issue 18): trained deterministically from a sample of the sources, exact round
trip on real multilingual text and code, refused when the sample cannot hold the vocabulary, a whole
recipe on it (tokens, shards, a model trained), and the exports transformers and tiktoken read."""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os

import pytest
import yaml
from helpers import DATA

from corpusmill.cli import main as cli_main
from corpusmill.tokenize.bpe import BOS, EOS, LLAMA3_PATTERN, NUM_SPECIAL, is_bpe
from corpusmill.tokenize.shards import ShardDataset
from corpusmill.tokenize.tokenizer import describe_model, load_tokenizer

WIKI = os.path.join(DATA, "mixing", "wiki_en")
CODE = os.path.join(DATA, "mixing", "code")


def udhr():
    return [json.loads(line)["text"] for line in open(os.path.join(DATA, "udhr.jsonl"), encoding="utf-8")]


def code_files():
    out = []
    for path in sorted(glob.glob(os.path.join(DATA, "github", "repos", "**", "*.*"), recursive=True)):
        try:
            out.append(open(path, encoding="utf-8").read())
        except (UnicodeDecodeError, IsADirectoryError):
            continue
    return out


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    root = tmp_path_factory.mktemp("bpe")
    argv = [
        "train-tokenizer",
        "--kind",
        "bpe",
        "--input",
        f"wiki={WIKI}",
        "--input",
        f"code={CODE}",
        "--vocab-size",
        "3000",
        "--sample-chars",
        "3000000",
    ]
    assert cli_main(argv + ["--output", str(root / "a")]) == 0
    assert cli_main(argv + ["--output", str(root / "b")]) == 0
    return root


def test_training_is_deterministic_and_has_llama3s_layout(bpe):
    a, b = str(bpe / "a" / "tokenizer.model"), str(bpe / "b" / "tokenizer.model")
    assert is_bpe(a) and open(a, "rb").read() == open(b, "rb").read()
    info = json.load(open(bpe / "a" / "corpusmill_tokenizer.json"))
    assert info["kind"] == "bpe" and info["vocab_size"] == 3000 and info["pattern"] == LLAMA3_PATTERN
    assert info == {**describe_model(a), "options": info["options"], "sample": info["sample"]}
    tok = load_tokenizer(a)
    # Llama 3's layout: the BPE first, then the 256 special tokens, begin/end of text the first two
    assert (tok.bos_id, tok.eos_id) == (3000 - NUM_SPECIAL, 3000 - NUM_SPECIAL + 1)
    assert tok.tok.id_to_token(tok.bos_id) == BOS and tok.tok.id_to_token(tok.eos_id) == EOS


def test_exact_round_trip_on_72_languages_and_code(bpe):
    tok = load_tokenizer(str(bpe / "a" / "tokenizer.model"))
    texts = udhr() + code_files() + ["tabs\tand  spaces\r\nCRLF\n\n\nand \u00a0nbsp, emoji \U0001f600, \u200b"]
    assert len(texts) > 72 + 10
    for text in texts:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert tok.bos_id not in ids.tolist() and tok.eos_id not in ids.tolist()
    # numbers split in runs of at most three digits (the pattern), letters never glued to digits
    pieces = [tok.tok.id_to_token(i) for i in tok.encode("in 1234567 years").tolist()]
    assert max(len(p.strip("\u0120")) for p in pieces if p.strip("\u0120").isdigit()) <= 3


def test_a_sample_too_small_for_the_vocabulary_is_refused(tmp_path, capsys):
    code = cli_main(
        [
            "train-tokenizer",
            "--kind",
            "bpe",
            "--input",
            WIKI,
            "--vocab-size",
            "60000",
            "--sample-chars",
            "200000",
            "--output",
            str(tmp_path / "t"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "too small for --vocab-size 60000" in err and "learned" in err
    assert not os.path.exists(tmp_path / "t" / "_SUCCESS")
    assert (
        cli_main(
            [
                "train-tokenizer",
                "--kind",
                "bpe",
                "--input",
                WIKI,
                "--vocab-size",
                "400",
                "--output",
                str(tmp_path / "u"),
            ]
        )
        == 2
    )


def test_a_recipe_on_the_bpe_then_a_model_and_its_exports(bpe, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import load_tiktoken_bpe

    from corpusmill.pipelines.recipe import run_recipe
    from corpusmill.train.configs import load_config
    from corpusmill.train.export import export_hf, export_meta, load_trained
    from corpusmill.train.loop import train

    manifest = {
        "output": str(tmp_path / "run"),
        "seed": 3,
        "seq_len": 128,
        "budget_tokens": "max",
        "tokenizer": {"kind": "bpe", "vocab_size": 3000, "sample_chars": 3_000_000},
        "sources": {
            "wiki": {"weight": 0.8, "epochs": 1.0, "documents": WIKI},
            "code": {"weight": 0.2, "epochs": 2.0, "documents": CODE},
        },
    }
    path = tmp_path / "bpe.yaml"
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    result = run_recipe(str(path), log=lambda *_: None)
    man = result.shards_manifest
    model_file = os.path.join(result.shards_dir, "tokenizer.model")
    tok = load_tokenizer(model_file)
    assert man["tokenizer"]["kind"] == "bpe" and man["vocab_size"] == 3000
    ds = ShardDataset(result.shards_dir)
    tokens, starts = ds[0]
    assert tokens[starts[0]] == tok.bos_id and len(ds) == man["rows"] > 0
    # a row's first document decodes to text of the sources
    end = list(tokens[starts[0] + 1 :]).index(tok.eos_id) + starts[0] + 1 if tok.eos_id in tokens else len(tokens)
    assert len(tok.decode(tokens[starts[0] + 1 : end])) > 20

    model_cfg, tr = load_config("tiny")
    model_cfg = dataclasses.replace(model_cfg, vocab_size=3000, max_seq_len=128)
    tr = dataclasses.replace(tr, steps=3, seq_len=128, batch_tokens=4 * 128, eval_every=0, ckpt_every=3, log_every=1000)
    train(model_cfg, tr, result.shards_dir, str(tmp_path / "model"), stream=None)
    model, cfg, tokenizer, _ = load_trained(str(tmp_path / "model"))
    assert open(tokenizer, "rb").read() == open(model_file, "rb").read()

    texts = udhr()[:30] + code_files()[:5]
    hf_dir = export_hf(model, cfg, tokenizer, str(tmp_path / "hf"))
    assert not os.path.exists(os.path.join(hf_dir, "tokenizer.model"))
    hf_tok = transformers.AutoTokenizer.from_pretrained(hf_dir)
    for text in texts:
        ids = tok.encode(text).tolist()
        assert hf_tok(text).input_ids == [tok.bos_id] + ids
        assert hf_tok.decode(ids) == text
    hf = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    ids = torch.tensor([[tok.bos_id] + tok.encode(texts[0]).tolist()[:60]])
    with torch.no_grad():
        assert (model(ids) - hf(ids).logits).abs().max().item() <= 1e-4

    # continued pretraining from the export: its tokenizer.json is checked against the shards' BPE
    tr1 = dataclasses.replace(tr, steps=1, ckpt_every=0)
    assert train(model_cfg, tr1, result.shards_dir, str(tmp_path / "again"), stream=None, init_from=hf_dir)["step"] == 1

    meta_dir = export_meta(model, cfg, tokenizer, str(tmp_path / "meta"))
    ranks = load_tiktoken_bpe(os.path.join(meta_dir, "tokenizer.model"))
    assert len(ranks) == 3000 - NUM_SPECIAL
    enc = tiktoken.Encoding(
        "corpusmill", pat_str=LLAMA3_PATTERN, mergeable_ranks=ranks, special_tokens={BOS: tok.bos_id, EOS: tok.eos_id}
    )
    for text in texts:
        assert enc.encode(text, disallowed_special=()) == tok.encode(text).tolist(), text[:40]


def test_the_trainer_takes_uint32_shards_of_a_128k_vocabulary(tmp_path):
    """Llama 3's 128,256 ids do not fit uint16: such shards are uint32, and the trainer reads them."""
    pytest.importorskip("torch")
    from helpers import build_shards as _build
    from helpers import random_docs as _docs

    from corpusmill.train.configs import load_config
    from corpusmill.train.loop import train

    vocab = 128256
    (tmp_path / "shards").mkdir()
    rows, _, _ = _build(tmp_path / "shards", _docs(60, vocab, seed=4), vocab=vocab)
    assert rows.dtype.name == "uint32" and int(rows.max()) >= 65536
    model_cfg, tr = load_config("tiny")
    model_cfg = dataclasses.replace(model_cfg, vocab_size=vocab)
    tr = dataclasses.replace(
        tr, steps=2, seq_len=64, batch_tokens=4 * 64, warmup_steps=1, eval_every=0, ckpt_every=0, log_every=1000
    )
    summary = train(model_cfg, tr, str(tmp_path / "shards"), str(tmp_path / "run"), stream=None)
    assert summary["step"] == 2 and summary["loss"] == pytest.approx(math.log(vocab), rel=0.1)  # at chance


def test_hugging_face_loads_the_trained_bpe_as_it_is(bpe):
    """Issue 29: train-tokenizer's tokenizer.json is Hugging Face's (corpusmill's metadata is
    corpusmill_tokenizer.json): AutoTokenizer.from_pretrained(OUT) loads it and encodes as corpusmill does."""
    transformers = pytest.importorskip("transformers")

    hf = transformers.AutoTokenizer.from_pretrained(str(bpe / "a"))
    tok = load_tokenizer(str(bpe / "a" / "tokenizer.model"))
    for text in ["The quick brown fox jumps over the lazy dog.", "def f(x):\n    return x ** 2  # ünïcödé"]:
        assert hf(text)["input_ids"] == [tok.bos_id] + tok.encode(text).tolist()
    # Llama 3's layout: ignore_merges (a pre-token in the vocabulary is that token, as tiktoken encodes),
    # and the BOS / EOS map AutoTokenizer reads
    spec = json.loads((bpe / "a" / "tokenizer.json").read_text())
    assert spec["model"]["ignore_merges"] is True
    assert (hf.bos_token, hf.eos_token) == ("<|begin_of_text|>", "<|end_of_text|>")
    assert (hf.bos_token_id, hf.eos_token_id) == (tok.bos_id, tok.eos_id)
