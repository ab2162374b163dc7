"""A small custom source: plain-text files, one document per file, as a manifest processor."""

import dataclasses
from typing import List

import apache_beam as beam

from corpusmill.core.config import option
from corpusmill.core.document import Document
from corpusmill.core.stage import Stage
from corpusmill.engine.stage import OutputOptions, run_build, show_documents
from corpusmill.filters.base import Filter, drop, keep
from corpusmill.io.files import expand_inputs


@dataclasses.dataclass(kw_only=True)
class TextFilesConfig(OutputOptions):
    input: List[str] = option(required=True, metavar="GLOB", help="text files, one document each")
    min_chars: int = option(1, min=0, help="drop shorter files")


class ReadTextFile(Filter):
    name = "read"

    def __init__(self, min_chars: int):
        self.min_chars = min_chars

    def __call__(self, path):
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        doc = Document(id=path, source="textfiles", text=text, location=path)
        return keep(doc) if len(text) >= self.min_chars else drop("too_short", doc)


def run_textfiles(cfg: TextFilesConfig, beam_args=()):
    files = expand_inputs(cfg.input)

    def build(p, run):
        docs = run.step(p | beam.Create(files), "read", ReadTextFile(cfg.min_chars))
        run.write(docs)

    return run_build(cfg, beam_args, build)


TEXT_FILES = Stage(
    name="textfiles",
    config=TextFilesConfig,
    run=run_textfiles,
    show=show_documents,
    documents=True,
    summary="plain-text files, one document per file",
)
