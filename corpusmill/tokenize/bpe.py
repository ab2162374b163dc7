"""The Llama 3 tokenizer recipe: a byte-level BPE (tiktoken-style) trained with Hugging Face ``tokenizers``.
No Beam here.

Llama 3: a 128K vocabulary, 128,000 BPE tokens plus 256 special tokens (``<|begin_of_text|>`` = 128000,
``<|end_of_text|>`` = 128001, the rest reserved), text split before BPE by tiktoken's cl100k-style
pattern (:data:`LLAMA3_PATTERN`: contractions, letter runs with one leading non-letter, numbers in runs of
at most three digits, punctuation runs, newlines, spaces), every byte a base token so any text encodes
and decodes exactly, no normalization. :func:`train_bpe` builds the same layout for any size: the BPE
takes ``vocab_size - 256`` ids, then the 256 special tokens.

The model is one ``tokenizers`` JSON file; corpusmill stores it under the tokenizer's usual name
(``tokenizer.model``), and tells the two kinds apart by content (:func:`is_bpe`: JSON, not a
SentencePiece protobuf). ``transformers`` loads the same file as ``tokenizer.json``
(``corpusmill export --to hf``).
"""

from __future__ import annotations

import json
import os
from typing import Iterable, List

import numpy as np

from corpusmill.core.errors import CorpusmillError
from corpusmill.tokenize.shards import token_dtype

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
NUM_SPECIAL = 256  # Llama 3: begin/end of text, then reserved tokens
MIN_VOCAB = 256 + NUM_SPECIAL + 1


def special_tokens() -> List[str]:
    """Llama 3's 256 special tokens in id order (their names as in Meta's tokenizer)."""
    names = [
        BOS,
        EOS,
        "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>",
        "<|finetune_right_pad_id|>",
        "<|reserved_special_token_2|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eom_id|>",
        "<|eot_id|>",
        "<|python_tag|>",
    ]
    return names + [f"<|reserved_special_token_{i}|>" for i in range(3, 3 + NUM_SPECIAL - len(names))]


def is_bpe(path: str) -> bool:
    """Whether a tokenizer file is a ``tokenizers`` JSON (a SentencePiece model is a protobuf)."""
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip()
    return head.startswith(b"{")


def train_bpe(lines: Iterable[str], vocab_size: int, *, sample_note: str = "") -> bytes:
    """Train a Llama 3-style byte-level BPE on ``lines`` (fed in the given order); returns the JSON.

    A sample too small to learn ``vocab_size - 256`` BPE tokens is a :class:`CorpusmillError` naming how
    many it learned (``tokenizers`` would otherwise stop early and return a smaller vocabulary).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < MIN_VOCAB:
        raise CorpusmillError(
            f"--vocab-size {vocab_size}: a byte-level BPE needs the 256 bytes and Llama 3's "
            f"{NUM_SPECIAL} special tokens; use at least {MIN_VOCAB}"
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - NUM_SPECIAL,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    count = [0]

    def counted():
        for line in lines:
            count[0] += 1
            yield line

    tok.train_from_iterator(counted(), trainer=trainer)
    if count[0] == 0:
        raise CorpusmillError(f"the tokenizer sample{sample_note} is empty: the inputs hold no text")
    learned = tok.get_vocab_size()
    if learned < vocab_size - NUM_SPECIAL:
        raise CorpusmillError(
            f"the tokenizer sample{sample_note} is too small for --vocab-size {vocab_size}: byte-level BPE learned "
            f"{learned} tokens from its {count[0]} lines (pairs seen twice or more), {vocab_size - NUM_SPECIAL} "
            f"needed; raise --sample-chars (or give more input), or lower --vocab-size to {learned + NUM_SPECIAL}"
        )
    tok.add_special_tokens(special_tokens())
    # a pre-token that is itself in the vocabulary is that token, merges or not: tiktoken's rule (Meta's
    # Llama 3 encoder), which Llama 3's tokenizer.json states as ignore_merges
    tok.model.ignore_merges = True
    return tok.to_str().encode("utf-8")


class BPETokenizer:
    """A ``tokenizers`` byte-level BPE by path, with SentencePieceTokenizer's interface; loaded lazily,
    never pickled."""

    def __init__(self, model_path: str):
        self.model_path = model_path
        self._tok = None

    def __getstate__(self):
        return {"model_path": self.model_path, "_tok": None}

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def tok(self):
        if self._tok is None:
            self._tok = load_bpe(self.model_path)
        return self._tok

    @property
    def vocab_size(self) -> int:
        return int(self.tok.get_vocab_size(with_added_tokens=True))

    @property
    def bos_id(self) -> int:
        return int(self.tok.token_to_id(BOS))

    @property
    def eos_id(self) -> int:
        return int(self.tok.token_to_id(EOS))

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.tok.encode(text, add_special_tokens=False).ids, dtype=token_dtype(self.vocab_size))

    def encode_many(self, texts: List[str], threads: int = 0) -> List[np.ndarray]:
        dtype = token_dtype(self.vocab_size)
        return [np.asarray(e.ids, dtype=dtype) for e in self.tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids) -> str:
        return self.tok.decode([int(i) for i in ids], skip_special_tokens=False)


def load_bpe(path: str):
    from tokenizers import Tokenizer

    if not os.path.exists(path):
        raise CorpusmillError(
            f"tokenizer model {path} does not exist; train one with `corpusmill train-tokenizer "
            f"--kind bpe` or fix tokenizer.model in the manifest"
        )
    try:
        tok = Tokenizer.from_file(path)
    except Exception as exc:  # noqa: BLE001
        raise CorpusmillError(f"cannot load the BPE tokenizer {path}: {exc}") from None
    if tok.token_to_id(BOS) is None or tok.token_to_id(EOS) is None:
        raise CorpusmillError(f"BPE tokenizer {path} has no {BOS} / {EOS} tokens; the shards need both")
    return tok


def same_bpe(a: str, b: str) -> bool:
    """Whether two ``tokenizers`` files hold the same BPE: vocabulary, merges, added tokens and
    pre-tokenizer (a post-processor, which only adds BOS, may differ)."""

    def core(path):
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data["model"], data["added_tokens"], data["pre_tokenizer"]

    return core(a) == core(b)


def describe_bpe(path: str, sha256: str) -> dict:
    tok = BPETokenizer(path)
    with open(path, encoding="utf-8") as fh:
        model = json.load(fh)
    return {
        "sha256": sha256,
        "kind": "bpe",
        "vocab_size": tok.vocab_size,
        "bos_id": tok.bos_id,
        "eos_id": tok.eos_id,
        "unk_id": -1,
        "pattern": LLAMA3_PATTERN,
        "merges": len(model["model"]["merges"]),
    }
