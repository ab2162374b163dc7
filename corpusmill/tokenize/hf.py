"""A tokenizer in Hugging Face's layout (no torch): tokenizer.json (the tokenizers JSON), its
tokenizer_config.json and special_tokens_map.json, so AutoTokenizer.from_pretrained(DIR) loads a
tokenizer corpusmill trained; the model exporter (corpusmill.train.export) and train-tokenizer write it."""

from __future__ import annotations

import json
from typing import Any, Dict

from corpusmill.tokenize.bpe import BOS as BOS_BPE
from corpusmill.tokenize.bpe import EOS as EOS_BPE
from corpusmill.tokenize.bpe import is_bpe


def _special_tokens(tokenizer: str) -> Dict[str, Any]:
    import sentencepiece as spm

    from corpusmill.tokenize.bpe import BPETokenizer

    if is_bpe(tokenizer):
        tok = BPETokenizer(tokenizer)
        return {"bos": (tok.bos_id, BOS_BPE), "eos": (tok.eos_id, EOS_BPE)}

    sp = spm.SentencePieceProcessor(model_file=tokenizer)
    ids = {"bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id(), "pad": sp.pad_id()}
    return {name: (i, sp.id_to_piece(i) if i >= 0 else None) for name, i in ids.items()}


def _write_json(path: str, value: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(value, fh, indent=2, sort_keys=True)
        fh.write("\n")


def hf_bpe_json(tokenizer: str) -> str:
    """The byte-level BPE with Llama 3's post-processor (BOS before every text), as ``transformers``
    loads Meta's Llama 3 ``tokenizer.json``."""
    from tokenizers import Tokenizer, processors

    tok = Tokenizer.from_file(tokenizer)
    bos = tok.token_to_id(BOS_BPE)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_BPE} $A", pair=f"{BOS_BPE} $A {BOS_BPE} $B", special_tokens=[(BOS_BPE, bos)]
    )
    return tok.to_str()


def tiktoken_ranks(tokenizer: str) -> str:
    """Meta's Llama 3 ``tokenizer.model``: one ``base64(token bytes) rank`` line per BPE token (tiktoken's
    format); the special tokens are not in it (Meta's code adds them after the ranks)."""
    import base64

    from tokenizers import pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    to_byte = {c: b for b, c in _byte_level_table().items()}
    assert set(to_byte) == set(alphabet)
    with open(tokenizer, encoding="utf-8") as fh:
        vocab = json.load(fh)["model"]["vocab"]
    lines = []
    for token, rank in sorted(vocab.items(), key=lambda kv: kv[1]):
        raw = bytes(to_byte[c] for c in token)
        lines.append(f"{base64.b64encode(raw).decode('ascii')} {rank}\n")
    return "".join(lines)


def _byte_level_table() -> Dict[int, str]:
    """GPT-2's byte -> printable character table, which byte-level BPE tokens are written in."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\xa1"), ord("\xac") + 1))
        + list(range(ord("\xae"), ord("\xff") + 1))
    )
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def hf_tokenizer_json(tokenizer: str) -> str:
    """The SentencePiece BPE model as a Hugging Face ``tokenizers`` file (``tokenizer.json``), built from
    its pieces alone: the merges are every split of a piece into two pieces, ranked by the piece (BPE
    pieces are in merge order), as Hugging Face's Llama converter ranks them. LLaMA's normalization
    (identity, a dummy-prefix space, spaces as U+2581), byte fallback, BOS added.

    Written so ``AutoTokenizer`` never converts ``tokenizer.model`` itself: that needs the protobuf
    schema transformers bundles, which does not load with the protobuf that Apache Beam pins."""
    import sentencepiece as spm
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
    from tokenizers.models import BPE

    sp = spm.SentencePieceProcessor(model_file=tokenizer)
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    vocab = {p: i for i, p in enumerate(pieces)}
    special = {i for i in range(len(pieces)) if sp.is_control(i) or sp.is_unknown(i)}
    merges = []
    for rank, piece in enumerate(pieces):
        if rank in special or sp.is_byte(rank):
            continue
        splits = [(piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        merges += [(vocab[a], vocab[b], rank, a, b) for a, b in splits]
    merges.sort(key=lambda m: (m[2], m[0], m[1]))
    unk = sp.id_to_piece(sp.unk_id())
    tok = Tokenizer(
        BPE(vocab=vocab, merges=[(a, b) for _, _, _, a, b in merges], unk_token=unk, fuse_unk=True, byte_fallback=True)
    )
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens([AddedToken(pieces[i], special=True, normalized=False) for i in sorted(special)])
    bos = sp.id_to_piece(sp.bos_id())
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, sp.bos_id())]
    )
    return tok.to_str(pretty=False)


def write_hf_tokenizer(tokenizer: str, out_dir: str, model_max_length: int, special=None) -> None:
    """Write ``tokenizer`` (a SentencePiece model or corpusmill's byte-level BPE) into ``out_dir`` as Hugging
    Face loads it: ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json`` (and, for
    SentencePiece, ``tokenizer.model`` when it is not there already)."""
    import os
    import shutil

    special = special or _special_tokens(tokenizer)
    tokens = {f"{name}_token": piece for name, (i, piece) in special.items() if piece is not None}
    _write_json(os.path.join(out_dir, "special_tokens_map.json"), tokens)
    if is_bpe(tokenizer):  # Llama 3's layout: the tokenizers JSON is tokenizer.json, BOS added by its template
        text, config = hf_bpe_json(tokenizer), {"tokenizer_class": "PreTrainedTokenizerFast"}
    else:  # LLaMA's: the SentencePiece model beside its tokenizers JSON
        target = os.path.join(out_dir, "tokenizer.model")
        if os.path.abspath(tokenizer) != os.path.abspath(target):
            shutil.copyfile(tokenizer, target)
        text = hf_tokenizer_json(tokenizer)
        config = {
            "tokenizer_class": "LlamaTokenizerFast",
            "add_bos_token": True,
            "add_eos_token": False,
            "legacy": True,
        }
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as fh:
        fh.write(text)
    config.update({"clean_up_tokenization_spaces": False, "model_max_length": model_max_length, **tokens})
    _write_json(os.path.join(out_dir, "tokenizer_config.json"), config)
