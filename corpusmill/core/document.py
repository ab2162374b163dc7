"""The one record type that flows through every corpusmill pipeline.

A :class:`Document` is small, pickles cheaply (slots, plain fields) and has exactly one JSON form,
used by every reader and writer (JSONL and Parquet hold the same fields).

Ids are never random: :func:`make_id` derives them from the source name and the document's location
(input file and record offset, dump and page id, ...), so the same input always gives the same ids,
and sorting by id gives a reproducible order on any runner.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Mapping

# Field order of the JSON / Parquet form.
FIELDS = ("id", "source", "url", "timestamp", "location", "text", "metadata")


def make_id(source: str, location: str) -> str:
    """A stable document id: ``<source>-<24 hex digits of SHA-1(source, location)>``."""
    # surrogatepass: a location from a file name that is not UTF-8 still gives a stable id
    digest = hashlib.sha1(f"{source}\x00{location}".encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"{source}-{digest}"


@dataclasses.dataclass(slots=True)
class Document:
    """A text document and its provenance.

    id:        stable id (see :func:`make_id`).
    text:      the document text (UTF-8 string).
    source:    the source processor that produced it (``cc``, ``c4``, ``wikipedia``, ...).
    url:       where the text came from, if known.
    timestamp: ISO-8601 time the page was fetched / the revision was made, if known.
    location:  where the record sits in its input (``path@offset``, ``path:line``); dead-letter
               records name it, so a person can find the bad record.
    metadata:  annotations added by filters (language, language_score, perplexity, bucket,
               wiki_prob, title, ...); values must be JSON-serialisable.
    """

    id: str
    text: str
    source: str = ""
    url: str = ""
    timestamp: str = ""
    location: str = ""
    metadata: dict = dataclasses.field(default_factory=dict)

    # -- convenience -------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> "Document":
        """A copy with some fields changed (documents are treated as immutable by filters)."""
        return dataclasses.replace(self, **changes)

    def annotate(self, **values: Any) -> "Document":
        """A copy whose metadata has ``values`` added."""
        meta = dict(self.metadata)
        meta.update(values)
        return dataclasses.replace(self, metadata=meta)

    @property
    def nbytes(self) -> int:
        """UTF-8 size of the text (what stats.json counts as bytes)."""
        return len(self.text.encode("utf-8", "surrogatepass"))

    def repaired(self, metadata: bool = True) -> "tuple[Document, int]":
        """This document made writable as UTF-8 (:mod:`corpusmill.core.text`): lone surrogates become
        U+FFFD, a location's non-UTF-8 bytes ``\\xNN``; returns it (``self`` if nothing changed) and
        how many characters were replaced. ``metadata=False`` leaves metadata unchecked (the glue checks it
        where documents are made from input records; later steps' filters set their own values)."""
        from corpusmill.core.text import clean_value, has_surrogates, printable, replace_surrogates

        changes, total = {}, 0
        for name in ("id", "text", "source", "url", "timestamp"):
            value, n = replace_surrogates(getattr(self, name))
            if n:
                changes[name], total = value, total + n
        if has_surrogates(self.location):
            changes["location"], total = printable(self.location), total + 1
        if metadata and self.metadata:
            meta, n = clean_value(self.metadata)
            if n:
                changes["metadata"], total = meta, total + n
        return (dataclasses.replace(self, **changes), total) if changes else (self, 0)

    # -- the one JSON form -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "source": self.source,
            "url": self.url,
            "timestamp": self.timestamp,
            "location": self.location,
            "text": self.text,
            "metadata": self.metadata,
        }

    def to_json(self) -> str:
        """One line of JSON, keys in a fixed order, so equal documents give equal bytes."""
        return json.dumps(
            self.to_dict(), ensure_ascii=False, sort_keys=False, separators=(",", ":"), default=_json_default
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "") -> "Document":
        """Build a document from its JSON form; ``where`` names the record in error messages."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{where or 'record'}: expected a JSON object, got {type(data).__name__}")
        missing = [k for k in ("id", "text") if k not in data]
        if missing:
            raise ValueError(
                f"{where or 'record'}: missing field(s) {', '.join(missing)}; a corpusmill document "
                f"needs at least 'id' and 'text' (fields: {', '.join(FIELDS)})"
            )
        text = data["text"]
        if not isinstance(text, str):
            raise ValueError(f"{where or 'record'}: field 'text' must be a string, got {type(text).__name__}")
        meta = data.get("metadata") or {}
        if isinstance(meta, str):  # Parquet stores metadata as a JSON string
            meta = json.loads(meta)
        return cls(
            id=str(data["id"]),
            text=text,
            source=str(data.get("source") or ""),
            url=str(data.get("url") or ""),
            timestamp=str(data.get("timestamp") or ""),
            location=str(data.get("location") or ""),
            metadata=dict(meta),
        )

    @classmethod
    def from_json(cls, line: str, *, where: str = "") -> "Document":
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where or 'record'}: not valid JSON ({exc})") from None
        return cls.from_dict(data, where=where)


def _json_default(value: Any) -> Any:
    # numpy scalars and other number-likes sneak into metadata from models.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    raise TypeError(f"metadata value of type {type(value).__name__} is not JSON-serialisable")
