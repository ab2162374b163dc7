"""The LLaMA-style tokenizer: trained on Beam from a deterministic sample of real documents."""

from __future__ import annotations

import json
import os
import re
import unicodedata

import pytest
import sentencepiece as spm

from corpusmill.cli import main
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import read_output
from corpusmill.pipelines.tokenizer import TokenizerConfig, parse_inputs, train_tokenizer
from corpusmill.tokenize.tokenizer import MODEL_FILE, sha256_file, train_sentencepiece

DATA = os.path.join(os.path.dirname(__file__), "data")
MIX = os.path.join(DATA, "mixing")
WEIGHTS = {"wiki_en": 0.5, "wiki_fr": 0.3, "code": 0.2}
SAMPLE_CHARS = 240_000


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("tok") / "tokenizer")
    files = parse_inputs([os.path.join(MIX, name) for name in sorted(WEIGHTS)])
    info = train_tokenizer(
        TokenizerConfig(files=files, output=out, weights=WEIGHTS, vocab_size=1000, sample_chars=SAMPLE_CHARS, seed=3)
    )
    return out, info, spm.SentencePieceProcessor(model_file=os.path.join(out, MODEL_FILE))


def test_model_and_info(trained):
    out, info, sp = trained
    assert sp.vocab_size() == info["vocab_size"] == 1000
    assert info["sha256"] == sha256_file(os.path.join(out, MODEL_FILE))
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2)
    assert info["options"]["model_type"] == "bpe"
    assert info["options"]["split_digits"] is True and info["options"]["byte_fallback"] is True
    with open(os.path.join(out, "_meta/stats.json"), encoding="utf-8") as fh:
        stats = {s["step"]: s for s in json.load(fh)}
    for name in WEIGHTS:  # every input document is accounted for by its read step
        assert stats[f"read_{name}"]["kept"] == len(read_output(os.path.join(MIX, name)))
    assert os.path.exists(os.path.join(out, "_SUCCESS"))


def test_sample_follows_the_weights(trained):
    _, info, _ = trained
    sources = info["sample"]["sources"]
    for name, weight in WEIGHTS.items():
        s = sources[name]
        if s["whole_source"]:  # smaller than its quota: all of it
            assert s["chars"] <= weight * SAMPLE_CHARS
            continue
        # drawn line by line (a hash of seed, id and line number decides): within sampling noise of the quota
        assert s["chars"] == pytest.approx(weight * SAMPLE_CHARS, rel=0.2), name
    assert not sources["wiki_en"]["whole_source"] and not sources["wiki_fr"]["whole_source"]
    en_fr = sources["wiki_en"]["chars"] / sources["wiki_fr"]["chars"]
    assert en_fr == pytest.approx(WEIGHTS["wiki_en"] / WEIGHTS["wiki_fr"], rel=0.25)


def test_digits_are_split(trained):
    _, _, sp = trained
    # no piece of the vocabulary holds a digit next to anything but the word-start marker
    digit_pieces = [
        sp.id_to_piece(i)
        for i in range(sp.vocab_size())
        if not (sp.is_byte(i) or sp.is_control(i)) and any(c.isdigit() for c in sp.id_to_piece(i))
    ]
    assert digit_pieces and all(len(p.lstrip("\u2581")) == 1 for p in digit_pieces)
    # real numbers from the articles come out one digit per token
    years = [m for d in read_output(os.path.join(MIX, "wiki_en"))[:200] for m in re.findall(r"\b\d{4}\b", d.text)]
    assert len(years) > 50
    for year in years[:100]:
        pieces = [p for p in sp.encode(year, out_type=str) if p != "\u2581"]
        assert pieces == list(year)


def test_byte_fallback_on_cjk_and_emoji(trained):
    _, _, sp = trained
    with open(os.path.join(DATA, "udhr.jsonl"), encoding="utf-8") as fh:
        texts = {r["lang"]: r["text"] for r in map(json.loads, fh) if r["lang"] in ("ja", "zh", "ko", "th")}
    emoji = " ".join(unicodedata.lookup(n) for n in ("GRINNING FACE", "ROCKET", "RED APPLE", "PILE OF POO"))
    texts["emoji"] = f"Launch day {emoji} at 10:45"
    assert len(texts) == 5
    for lang, text in texts.items():
        ids = sp.encode(text)
        assert sp.unk_id() not in ids, lang  # nothing is unknown: unseen characters become bytes
        assert any(sp.is_byte(i) for i in ids), lang
        assert sp.decode(ids) == text, lang
    rocket = unicodedata.lookup("ROCKET").encode("utf-8")
    pieces = sp.encode(unicodedata.lookup("ROCKET"), out_type=str)
    assert [p for p in pieces if p.startswith("<0x")] == [f"<0x{b:02X}>" for b in rocket]


def test_same_sample_same_model_via_cli(trained, tmp_path, capsys):
    out, info, _ = trained
    again = str(tmp_path / "again")
    args = [
        "train-tokenizer",
        "--input",
        *[os.path.join(MIX, n) for n in sorted(WEIGHTS)],
        "--output",
        again,
        "--weights",
        ",".join(f"{n}={w}" for n, w in WEIGHTS.items()),
        "--vocab-size",
        "1000",
        "--sample-chars",
        str(SAMPLE_CHARS),
        "--seed",
        "3",
    ]
    assert main(args) == 0
    assert info["sha256"] in capsys.readouterr().out
    with open(os.path.join(out, "sample.json"), "rb") as a, open(os.path.join(again, "sample.json"), "rb") as b:
        assert a.read() == b.read()


def test_sample_too_small_for_vocab(tmp_path, capsys):
    args = [
        "train-tokenizer",
        "--input",
        os.path.join(MIX, "wiki_fr"),
        "--output",
        str(tmp_path / "t"),
        "--vocab-size",
        "32000",
        "--sample-chars",
        "20000",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "too small for --vocab-size 32000" in err and "at most" in err and "--sample-chars" in err
    assert not os.path.exists(tmp_path / "t" / "_SUCCESS")


def test_bad_inputs_are_clear(tmp_path):
    with pytest.raises(CorpusmillError, match="no document files"):
        parse_inputs([str(tmp_path)])
    with pytest.raises(CorpusmillError, match="260"):
        train_sentencepiece(iter(["a b c"]), 100)
    with pytest.raises(CorpusmillError, match="empty"):
        train_sentencepiece(iter([]), 1000)


def test_llama_vocabulary_is_the_default():
    import corpusmill

    cfg = corpusmill.stage_config("train-tokenizer", input=[os.path.join(MIX, "code")], output="x")
    assert cfg.vocab_size == 32000 == TokenizerConfig(files={}, output="x").vocab_size


def test_hugging_face_loads_the_trained_sentencepiece_as_it_is(trained):
    """Issue 29: AutoTokenizer.from_pretrained(train-tokenizer's output) works (tokenizer.json is Hugging
    Face's) and encodes as SentencePiece does, BOS first."""
    transformers = pytest.importorskip("transformers")

    out, _info, sp = trained
    hf = transformers.AutoTokenizer.from_pretrained(out)
    for text in ["The quick brown fox jumps over the lazy dog.", "Une phrase en français, avec des accents."]:
        assert hf(text)["input_ids"] == [sp.bos_id()] + sp.encode(text)
