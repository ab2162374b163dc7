"""Each stage on its bundled real sample, as the hostile suite and the runner tests run them."""

from __future__ import annotations

import os
from typing import Dict, Sequence

import corpusmill

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")

# stage -> (fields other than output, the real sample it reads)
SOURCES: Dict[str, dict] = {
    "ccnet": {"input": [os.path.join(DATA, "warc", "pydocs.warc.gz")], "languages": ["en"]},
    "books": {"input": [os.path.join(DATA, "books", "milton")]},
    "wikipedia": {"input": [os.path.join(DATA, "wikipedia", "enwiki-sample-multistream.xml.bz2")]},
    "arxiv": {"input": [os.path.join(DATA, "arxiv", "papers"), os.path.join(DATA, "arxiv", "folders")]},
    "stackexchange": {"input": [os.path.join(DATA, "stackexchange")]},
    "github": {"mode": "local", "input": [os.path.join(DATA, "github", "repos")]},
    "c4 crawl": {
        "mode": "crawl",
        "input": [
            os.path.join(DATA, "warc", "pydocs.warc.gz"),
            os.path.join(DATA, "c4", "recrawl.warc.gz"),
            os.path.join(DATA, "c4", "sample.wet.gz"),
        ],
    },
    "c4 released": {"mode": "released", "input": [os.path.join(DATA, "c4", "c4-released-sample.json.gz")]},
}


def run_source(name: str, output: str, beam_args: Sequence[str] = (), **changes):
    """Run stage ``name`` (a key of SOURCES) into ``output``; ``changes`` replace its fields."""
    fields = dict(SOURCES[name], output=str(output), **changes)
    return corpusmill.run_stage(name.split()[0], list(beam_args), **fields)
