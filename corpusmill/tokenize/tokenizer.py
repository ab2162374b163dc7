"""The LLaMA tokenizer recipe with SentencePiece, and the ``tokenize`` step. No Beam here (the Llama 3
byte-level BPE: :mod:`corpusmill.tokenize.bpe`; :func:`load_tokenizer` opens either).

LLaMA 1/2: SentencePiece BPE, 32k vocabulary, every number split into digits, unknown UTF-8 falls
back to bytes. :data:`LLAMA_TRAINER_OPTIONS` are the trainer options of LLaMA's released
``tokenizer.model`` (its ``trainer_spec``), except the vocabulary size and the thread count, which are
options. Training is deterministic: the sentences are fed in a fixed order through an iterator and the
model is written from memory, so no file name ends up inside the model and the same sample gives the
same bytes (and the same sha256) on any machine.

:class:`Tokenize` is the step the mixer and the shard writer run: it keeps only the model's *path* and
loads the model once per worker in :meth:`Tokenize.setup`.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from typing import Any, Iterable, List

import numpy as np

from corpusmill.core.errors import CorpusmillError
from corpusmill.core.files import sha256_file as core_sha256_file
from corpusmill.filters.base import Filter, Verdict, drop, keep
from corpusmill.tokenize.shards import token_dtype

MODEL_FILE = "tokenizer.model"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2

# LLaMA's trainer_spec (vocab_size and num_threads are set per call).
LLAMA_TRAINER_OPTIONS = dict(
    model_type="bpe",
    split_digits=True,
    byte_fallback=True,
    character_coverage=0.99995,
    unk_id=UNK_ID,
    bos_id=BOS_ID,
    eos_id=EOS_ID,
    pad_id=-1,
    normalization_rule_name="identity",
    add_dummy_prefix=True,
    remove_extra_whitespaces=False,
    allow_whitespace_only_pieces=True,
    max_sentencepiece_length=16,
    # LLaMA used the default 4192 bytes; long web paragraphs would be skipped silently, so longer here.
    max_sentence_length=16384,
    input_sentence_size=0,  # the sample is drawn by corpusmill; SentencePiece must not resample it
    shuffle_input_sentence=False,
    minloglevel=2,
)

_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")


sha256_file = core_sha256_file  # the tokenizer model's sha goes into every manifest that uses it


def train_sentencepiece(sentences: Iterable[str], vocab_size: int, *, threads: int = 8, sample_note: str = "") -> bytes:
    """Train a LLaMA-style BPE model on ``sentences`` (one line each); returns the serialized model.

    ``threads`` changes speed only, but it is recorded in the model, so it is fixed rather than taken
    from the machine (the same sample gives the same sha256 everywhere). A sample too small for
    ``vocab_size`` is a :class:`CorpusmillError` that says how large a vocabulary it can hold.
    """
    import sentencepiece as spm

    if vocab_size < 256 + 3 + 1:
        raise CorpusmillError(
            f"--vocab-size {vocab_size}: byte fallback needs 256 byte pieces plus unk/bos/eos; use at least 260"
        )
    buf = io.BytesIO()
    count = [0]

    def counted():
        for line in sentences:
            count[0] += 1
            yield line

    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=counted(),
            model_writer=buf,
            vocab_size=int(vocab_size),
            num_threads=int(threads),
            **LLAMA_TRAINER_OPTIONS,
        )
    except RuntimeError as exc:
        msg = str(exc)
        m = _TOO_HIGH.search(msg)
        if m:
            raise CorpusmillError(
                f"the tokenizer sample{sample_note} is too small for --vocab-size {vocab_size}: SentencePiece can "
                f"build at most {m.group(2)} pieces from its {count[0]} lines; raise --sample-chars (or give "
                f"more input), or lower --vocab-size"
            ) from None
        if count[0] == 0 or "empty" in msg.lower():
            raise CorpusmillError(f"the tokenizer sample{sample_note} is empty: the inputs hold no text") from None
        raise CorpusmillError(f"SentencePiece training failed{sample_note}: {msg}") from None
    return buf.getvalue()


class SentencePieceTokenizer:
    """A SentencePiece model by path; the processor is loaded lazily and never pickled."""

    def __init__(self, model_path: str):
        self.model_path = model_path
        self._sp = None

    def __getstate__(self):
        return {"model_path": self.model_path, "_sp": None}

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def sp(self):
        if self._sp is None:
            self._sp = load_sentencepiece(self.model_path)
        return self._sp

    @property
    def vocab_size(self) -> int:
        return int(self.sp.vocab_size())

    @property
    def bos_id(self) -> int:
        return int(self.sp.bos_id())

    @property
    def eos_id(self) -> int:
        return int(self.sp.eos_id())

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` (no BOS/EOS), as the smallest unsigned dtype for this vocabulary."""
        return np.asarray(self.sp.encode(text), dtype=token_dtype(self.vocab_size))

    def encode_many(self, texts: List[str], threads: int = 0) -> List[np.ndarray]:
        """:meth:`encode` of each text, in one SentencePiece call on ``threads`` threads (0: all cores)."""
        dtype = token_dtype(self.vocab_size)
        return [
            np.asarray(ids, dtype=dtype) for ids in self.sp.encode(texts, num_threads=threads or (os.cpu_count() or 1))
        ]

    def decode(self, ids) -> str:
        return self.sp.decode([int(i) for i in ids])


def load_tokenizer(path: str):
    """The tokenizer in a model file: a SentencePiece model, or a byte-level BPE (``tokenizers`` JSON,
    :mod:`corpusmill.tokenize.bpe`); both give ``vocab_size``, ``bos_id``, ``eos_id``, ``encode``,
    ``encode_many`` and ``decode``."""
    from corpusmill.tokenize.bpe import BPETokenizer, is_bpe

    if not os.path.exists(path):
        load_sentencepiece(path)  # the message that says how to make one
    if is_bpe(path):
        tok = BPETokenizer(path)
        tok.tok  # noqa: B018 - a broken file fails here, with its name
        return tok
    tok = SentencePieceTokenizer(path)
    tok.sp  # noqa: B018
    return tok


def load_sentencepiece(path: str):
    import sentencepiece as spm

    if not os.path.exists(path):
        raise CorpusmillError(
            f"tokenizer model {path} does not exist; train one with `corpusmill train-tokenizer` "
            f"or fix tokenizer.model in the manifest"
        )
    try:
        sp = spm.SentencePieceProcessor(model_file=path)
    except Exception as exc:  # noqa: BLE001
        raise CorpusmillError(f"cannot load SentencePiece model {path}: {exc}") from None
    if sp.bos_id() < 0 or sp.eos_id() < 0:
        raise CorpusmillError(
            f"SentencePiece model {path} has no BOS/EOS pieces (bos_id={sp.bos_id()}, "
            f"eos_id={sp.eos_id()}); the shards need both"
        )
    return sp


@dataclasses.dataclass(slots=True)
class TokenizedDoc:
    """A document's token ids (no BOS/EOS) and where it came from; what flows after the tokenize step."""

    id: str
    source: str  # the mixture's source name (the manifest key), not the document's own source field
    tokens: np.ndarray
    nbytes: int = 0  # UTF-8 bytes of the text, for stats.json

    @property
    def n_tokens(self) -> int:
        """Tokens this document takes in a row: BOS + ids + EOS."""
        return int(self.tokens.size) + 2


class Tokenize(Filter):
    """The ``tokenize`` step: ``(Document, source_name)`` -> :class:`TokenizedDoc`.

    Drops documents with no text (``empty_text``); an exception (a broken model, a text SentencePiece
    cannot take) becomes a dead-letter record naming the document.
    """

    name = "tokenize"
    model_files = ("model_path",)

    batch_size = 256  # SentencePiece encodes a list in one call, on its own threads

    def __init__(self, model_path: str, threads: int = 0):
        self.model_path = model_path
        self.tokenizer = None
        self.threads = threads  # 0: every core (SentencePiece's own threads)

    def setup(self) -> None:
        self.tokenizer = load_tokenizer(self.model_path)  # once per worker

    def __call__(self, element: Any) -> Verdict:
        doc, source = element
        if not doc.text.strip():
            return drop("empty_text", doc)
        return keep(TokenizedDoc(doc.id, source, self.tokenizer.encode(doc.text), doc.nbytes))

    def call_batch(self, elements: List[Any]) -> List[Verdict]:
        todo = [i for i, (doc, _source) in enumerate(elements) if doc.text.strip()]
        ids = self.tokenizer.encode_many([elements[i][0].text for i in todo], self.threads)
        out: List[Verdict] = [drop("empty_text", doc) for doc, _source in elements]
        for i, tokens in zip(todo, ids):
            doc, source = elements[i]
            out[i] = keep(TokenizedDoc(doc.id, source, tokens, doc.nbytes))
        return out


def describe_model(path: str) -> dict:
    """What a manifest records about a tokenizer: its sha256, vocabulary size and special ids (a BPE
    also its ``kind``, pattern and merges)."""
    from corpusmill.tokenize.bpe import describe_bpe, is_bpe

    if os.path.exists(path) and is_bpe(path):
        load_tokenizer(path)
        return describe_bpe(path, sha256_file(path))
    sp = load_sentencepiece(path)
    return {
        "sha256": sha256_file(path),
        "vocab_size": int(sp.vocab_size()),
        "bos_id": int(sp.bos_id()),
        "eos_id": int(sp.eos_id()),
        "unk_id": int(sp.unk_id()),
    }
