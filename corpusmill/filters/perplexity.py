"""Perplexity under a Wikipedia-trained n-gram model, and head/middle/tail buckets, as cc_net does it.

A language model directory holds, per language ``xx`` (cc_net's file names)::

    xx.sp.model    SentencePiece model
    xx.arpa.bin    KenLM binary 5-gram model over SentencePiece pieces

(``corpusmill train-lm`` writes both.) A document's perplexity is computed line by line: each line is
normalized (:func:`normalize_for_lm`: lowercase, accents and digits folded, Unicode punctuation to ASCII),
cut into pieces, and scored with KenLM (with sentence boundaries); then

    perplexity = 10 ** (-sum(line log10 scores) / sum(pieces per line + 1))

rounded to one decimal, as in cc_net. Lower is more Wikipedia-like.

Buckets come from a per-language percentile table (``corpusmill cutoffs``): ``head`` below the 30th
percentile, ``middle`` below the 60th, ``tail`` otherwise; ``all`` for a document whose language has
no model or no cutoffs.
"""

from __future__ import annotations

import csv
import functools
import os
import re
import shutil
import sys
import unicodedata
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from corpusmill.core.errors import CorpusmillError
from corpusmill.filters.base import Filter, Verdict, drop, keep

SP_SUFFIX = ".sp.model"
LM_SUFFIX = ".arpa.bin"
BUCKETS = ("head", "middle", "tail", "all")
DEFAULT_KEEP_BUCKETS = ("head", "middle", "all")
HEAD_PERCENTILE, TAIL_PERCENTILE = 30, 60
# A line longer than this is tokenized and scored in pieces (see Perplexity.line_score).
CHUNK_CHARS = 100_000
_KENLM_MAGIC = b"mmap lm http://kheafield.com/code"


# -- cc_net's text normalizer ----------------------------------------------------------------------
_UNICODE_PUNCT = {
    "，": ",",
    "。": ".",
    "、": ",",
    "„": '"',
    "”": '"',
    "“": '"',
    "«": '"',
    "»": '"',
    "１": '"',
    "」": '"',
    "「": '"',
    "《": '"',
    "》": '"',
    "´": "'",
    "∶": ":",
    "：": ":",
    "？": "?",
    "！": "!",
    "（": "(",
    "）": ")",
    "；": ";",
    "–": "-",
    "—": " - ",
    "．": ". ",
    "～": "~",
    "’": "'",
    "…": "...",
    "━": "-",
    "〈": "<",
    "〉": ">",
    "【": "[",
    "】": "]",
    "％": "%",
    "►": "-",
}
_UNICODE_PUNCT_RE = re.compile(f"[{''.join(_UNICODE_PUNCT)}]")
_DIGIT_RE = re.compile(r"\d")
_NON_PRINTING_RE = re.compile(f"[{''.join(map(chr, list(range(0, 32)) + list(range(127, 160))))}]")


_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")


@functools.lru_cache(maxsize=1)
def _combining_marks() -> Dict[int, None]:
    """str.translate table deleting every nonspacing mark (category Mn): the accents NFD splits off."""
    return {cp: None for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Mn"}


def _strip_accents(text: str) -> str:
    table = _combining_marks()
    # only non-ASCII runs can hold marks; translating just those is several times faster on Latin text
    return _NON_ASCII_RE.sub(lambda m: m.group(0).translate(table), unicodedata.normalize("NFD", text))


def normalize_for_lm(line: str) -> str:
    """cc_net's ``text_normalizer.normalize``: the form text is in when the LM is trained and applied."""
    line = line.strip()
    if not line:
        return line
    line = line.lower()
    if not line.isascii():  # ASCII has no accents to strip
        line = _strip_accents(line)
    line = _DIGIT_RE.sub("0", line)
    line = _UNICODE_PUNCT_RE.sub(lambda m: _UNICODE_PUNCT[m.group(0)], line)
    return _NON_PRINTING_RE.sub("", line)


# -- KenLM command-line tools ----------------------------------------------------------------------
def find_kenlm_binary(name: str) -> str:
    """``lmplz`` / ``build_binary``: next to the running Python (the venv's bin/), else on PATH."""
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    if found:
        return found
    raise CorpusmillError(
        f"the KenLM tool `{name}` was not found next to {sys.executable} or on PATH; run `make kenlm-bin` "
        f"(it compiles lmplz and build_binary from the kenlm sdist into .venv/bin)"
    )


# -- model files -----------------------------------------------------------------------------------
def model_paths(lm_dir: str, lang: str) -> Tuple[str, str]:
    return os.path.join(lm_dir, lang + SP_SUFFIX), os.path.join(lm_dir, lang + LM_SUFFIX)


def lm_languages(lm_dir: str) -> List[str]:
    """Languages with a SentencePiece model in ``lm_dir`` (each must also have its KenLM model)."""
    if not os.path.isdir(lm_dir):
        raise CorpusmillError(f"--lm-dir {lm_dir}: no such directory; train one with `corpusmill train-lm`")
    langs = sorted(name[: -len(SP_SUFFIX)] for name in os.listdir(lm_dir) if name.endswith(SP_SUFFIX))
    if not langs:
        raise CorpusmillError(
            f"--lm-dir {lm_dir} holds no language model (expected <lang>{SP_SUFFIX} and <lang>{LM_SUFFIX}); "
            f"train one with `corpusmill train-lm --lang xx --input REF --output {lm_dir}`"
        )
    return langs


def load_sentencepiece(path: str):
    import sentencepiece

    if not os.path.isfile(path):
        raise CorpusmillError(f"SentencePiece model {path} does not exist; train it with `corpusmill train-lm`")
    sp = sentencepiece.SentencePieceProcessor()
    try:
        sp.Load(path)
    except Exception as exc:  # noqa: BLE001
        raise CorpusmillError(
            f"cannot load SentencePiece model {path}: {exc}; is it a .sp.model file from "
            f"`corpusmill train-lm`? Retrain it if it is damaged"
        ) from None
    return sp


def check_kenlm_file(path: str) -> None:
    """A cheap start-up check (the model may be gigabytes): exists, KenLM binary or ARPA header."""
    if not os.path.isfile(path):
        raise CorpusmillError(f"KenLM model {path} does not exist; train it with `corpusmill train-lm`")
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not (head.startswith(_KENLM_MAGIC) or head.lstrip().startswith(b"\\data\\")):
        raise CorpusmillError(
            f"{path} is not a KenLM model (neither a KenLM binary nor an ARPA file); "
            f"retrain it with `corpusmill train-lm`"
        )


def load_kenlm(path: str):
    import kenlm

    check_kenlm_file(path)
    try:
        return kenlm.Model(path)
    except Exception as exc:  # noqa: BLE001 - kenlm raises OSError/RuntimeError with KenLM's message
        raise CorpusmillError(
            f"cannot load KenLM model {path}: {exc}; the file is damaged or truncated, "
            f"retrain it with `corpusmill train-lm`"
        ) from None


def validate_lm_dir(lm_dir: str, languages: Optional[Sequence[str]] = None) -> List[str]:
    """Check every model of ``lm_dir`` before any work; returns its languages.

    SentencePiece models are small and loaded; a KenLM model is checked by its header and loaded lazily
    (memory-mapped), which is cheap even for cc_net-sized models and catches truncated files.
    """
    import kenlm

    langs = lm_languages(lm_dir)
    if languages:
        langs = [lang for lang in langs if lang in set(languages)]
    for lang in langs:
        sp_path, lm_path = model_paths(lm_dir, lang)
        load_sentencepiece(sp_path)
        check_kenlm_file(lm_path)
        config = kenlm.Config()
        config.load_method = kenlm.LoadMethod.LAZY
        try:
            kenlm.Model(lm_path, config)
        except Exception as exc:  # noqa: BLE001
            raise CorpusmillError(
                f"cannot load KenLM model {lm_path}: {exc}; the file is damaged or "
                f"truncated, retrain it with `corpusmill train-lm`"
            ) from None
    return langs


# -- scoring ---------------------------------------------------------------------------------------
def _split_long(line: str, size: int) -> List[str]:
    """Cut a very long line into parts of at most ``size`` characters, at spaces where there are any."""
    parts, start, n = [], 0, len(line)
    while start < n:
        end = min(start + size, n)
        if end < n:
            space = line.rfind(" ", start + size // 2, end)
            if space > start:
                end = space
        parts.append(line[start:end])
        start = end
    return parts


class LanguageModel:
    """One language's SentencePiece + KenLM pair, loaded."""

    def __init__(self, sp_path: str, lm_path: str):
        self.sp = load_sentencepiece(sp_path)
        self.lm = load_kenlm(lm_path)

    def pieces(self, line: str) -> List[str]:
        return self.sp.EncodeAsPieces(normalize_for_lm(line))

    def line_score(self, line: str, chunk_chars: int = CHUNK_CHARS) -> Tuple[float, int]:
        """(log10 probability, number of pieces + 1) of one line.

        A line over ``chunk_chars`` characters is normalized, tokenized and scored part by part (cut at
        spaces), the sentence start given only to the first part and the sentence end only to the last:
        the piece count is the same and memory stays bounded; the model loses its context at each cut.
        """
        if len(line) <= chunk_chars:
            pieces = self.sp.EncodeAsPieces(normalize_for_lm(line))
            return self.lm.score(" ".join(pieces), bos=True, eos=True), len(pieces) + 1
        parts = _split_long(line, chunk_chars)
        total, count = 0.0, 1
        for i, part in enumerate(parts):
            pieces = self.sp.EncodeAsPieces(normalize_for_lm(part))
            total += self.lm.score(" ".join(pieces), bos=i == 0, eos=i == len(parts) - 1)
            count += len(pieces)
        return total, count

    def perplexity(self, text: str) -> float:
        log_score, length = 0.0, 0
        for line in text.split("\n"):
            s, n = self.line_score(line)
            log_score += s
            length += n
        return round(10.0 ** (-log_score / length), 1)


class Perplexity(Filter):
    """The ``perplexity`` step: annotates ``perplexity`` for documents in a language with a model.

    Documents in other languages pass unannotated (their bucket is ``all``), unless ``require_model``,
    which drops them as ``no_model`` (used by ``corpusmill cutoffs``). Needs ``metadata['language']``
    (the ``lid`` step sets it); a document without one counts as ``default_language`` if given (and is
    annotated with it).
    """

    clean_output = True  # cuts, joins or annotates clean text (Filter.clean_output)

    name = "perplexity"
    transient = ("_models",)
    model_files = ("lm_dir",)

    def __init__(
        self,
        lm_dir: str,
        languages: Optional[Sequence[str]] = None,
        require_model: bool = False,
        default_language: Optional[str] = None,
    ):
        self.lm_dir = lm_dir
        self.languages = sorted(languages) if languages else None
        self.require_model = require_model
        self.default_language = default_language
        self._models: Optional[Dict[str, LanguageModel]] = None

    def model_subset(self, attr: str):
        if self.languages is None:
            return None
        return [name for lang in self.languages for name in (lang + SP_SUFFIX, lang + LM_SUFFIX)]

    def setup(self) -> None:
        if self._models is None:
            langs = lm_languages(self.lm_dir)
            if self.languages is not None:
                langs = [lang for lang in langs if lang in self.languages]
            self._models = {lang: LanguageModel(*model_paths(self.lm_dir, lang)) for lang in langs}

    def model_for(self, lang: str) -> Optional[LanguageModel]:
        if self._models is None:
            self.setup()
        return self._models.get(lang)

    def __call__(self, doc) -> Verdict:
        lang = doc.metadata.get("language")
        if not lang and self.default_language:
            lang = self.default_language
            doc = doc.annotate(language=lang)
        model = self.model_for(lang or "")
        if model is None:
            return drop("no_model", doc) if self.require_model else keep(doc)
        return keep(doc.annotate(perplexity=model.perplexity(doc.text)))


# -- cutoffs and buckets ---------------------------------------------------------------------------
Cutoffs = Dict[str, List[float]]  # language -> perplexity at percentiles 0..100


def percentile_table(values: Iterable[float]) -> List[float]:
    """Perplexity at percentiles 0, 1, ..., 100 (numpy's linear interpolation), rounded to 0.1."""
    import numpy as np

    arr = np.sort(np.asarray(list(values), dtype=np.float64))
    if arr.size == 0:
        raise ValueError("no values to compute percentiles from")
    return [round(float(x), 1) for x in np.percentile(arr, list(range(101)))]


def cutoffs_csv(table: Mapping[str, Sequence[float]]) -> str:
    """The cutoffs file: a ``percentile`` column (0..100) and one column per language, as cc_net's."""
    langs = sorted(table)
    rows = [",".join(["percentile"] + langs)]
    for p in range(101):
        rows.append(",".join([str(p)] + [f"{table[lang][p]:.1f}" for lang in langs]))
    return "\n".join(rows) + "\n"


def read_cutoffs(path: str) -> Cutoffs:
    """Read a cutoffs CSV, with a clear error naming the file and line for anything malformed."""
    if not os.path.isfile(path):
        raise CorpusmillError(f"cutoffs file {path} does not exist; make one with `corpusmill cutoffs`")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or not rows[0] or rows[0][0] not in ("percentile", "") or len(rows[0]) < 2:  # "": cc_net's file
        raise CorpusmillError(
            f"{path}: not a cutoffs file (the header must be 'percentile,<lang>,...' or cc_net's "
            f"',<lang>,...'); "
            f"make one with `corpusmill cutoffs`"
        )
    langs = rows[0][1:]
    table: Cutoffs = {lang: [] for lang in langs}
    body = [r for r in rows[1:] if r]
    if len(body) != 101:
        raise CorpusmillError(f"{path}: expected 101 rows (percentiles 0..100), found {len(body)}")
    for lineno, row in enumerate(body, 2):
        try:
            if int(row[0]) != lineno - 2 or len(row) != len(langs) + 1:
                raise ValueError
            for lang, value in zip(langs, row[1:]):
                table[lang].append(float(value))
        except ValueError:
            raise CorpusmillError(
                f"{path}:{lineno}: malformed row {row!r}; expected '{lineno - 2},' then {len(langs)} numbers"
            ) from None
    for lang, values in table.items():
        if any(b < a for a, b in zip(values, values[1:])):
            raise CorpusmillError(f"{path}: the column for {lang!r} is not non-decreasing; not a percentile table")
    return table


def bucket_of(perplexity: Optional[float], lang_cutoffs: Optional[Sequence[float]]) -> str:
    if perplexity is None or perplexity < 0 or not lang_cutoffs:
        return "all"
    if perplexity < lang_cutoffs[HEAD_PERCENTILE]:
        return "head"
    if perplexity < lang_cutoffs[TAIL_PERCENTILE]:
        return "middle"
    return "tail"


def parse_buckets(value: Optional[str | Sequence[str]]) -> Tuple[str, ...]:
    if value is None:
        return DEFAULT_KEEP_BUCKETS
    items = [x.strip() for x in value.split(",")] if isinstance(value, str) else [x.strip() for x in value]
    items = [x for x in items if x]
    bad = [x for x in items if x not in BUCKETS]
    if bad or not items:
        raise CorpusmillError(
            f"--keep-buckets {','.join(items)!r}: use a comma-separated subset of {', '.join(BUCKETS)}"
        )
    return tuple(b for b in BUCKETS if b in items)


class PerplexityBucket(Filter):
    """The ``bucket`` step: annotates ``bucket``; drops buckets not in ``keep`` as ``bucket_<name>``;
    counts each language's documents per bucket (``counters``: ``en_head``, ``en_middle``, ``en_tail``).

    The (small) cutoffs table is read when the filter is made and travels with it.
    """

    clean_output = True  # cuts, joins or annotates clean text (Filter.clean_output)

    name = "bucket"
    scores = ("perplexity",)

    def __init__(
        self, cutoffs_path: str, keep: Sequence[str] = DEFAULT_KEEP_BUCKETS, cutoffs: Optional[Cutoffs] = None
    ):
        self.cutoffs_path = cutoffs_path  # where the table came from (a remote path stays remote)
        self.cutoffs = cutoffs if cutoffs is not None else read_cutoffs(cutoffs_path)
        self.keep = frozenset(parse_buckets(keep))

    def thresholds(self):
        """The head/middle and middle/tail perplexities of each language."""
        return {
            "perplexity": {
                lang: [table[HEAD_PERCENTILE], table[TAIL_PERCENTILE]]
                for lang, table in sorted(self.cutoffs.items())
                if table
            }
        }

    def __call__(self, doc) -> Verdict:
        lang = doc.metadata.get("language", "")
        bucket = bucket_of(doc.metadata.get("perplexity"), self.cutoffs.get(lang))
        doc = doc.annotate(bucket=bucket)
        counts = {f"{lang or 'none'}_{bucket}": 1}  # every bucket counted per language, kept or not
        if bucket not in self.keep:
            return drop(f"bucket_{bucket}", doc, counts=counts)
        return keep(doc, counts=counts)
