"""``corpusmill source <name>``: one sub-command per source processor.

Each module in SOURCE_MODULES exposes ``register_source(subparsers)`` and adds its own sub-command
(``wikipedia``, ``books``, ``arxiv``, ``c4``, ``github``, ``stackexchange``).
"""

from __future__ import annotations

import importlib

SOURCE_MODULES: list = [
    "corpusmill.stages.wikipedia",
    "corpusmill.stages.books",
    "corpusmill.stages.arxiv",
    "corpusmill.stages.c4",
    "corpusmill.stages.github",
    "corpusmill.stages.stackexchange",
]


def register(sub) -> None:
    parser = sub.add_parser("source", help="run a source processor (Wikipedia, Books, ArXiv, C4, GitHub, StackExchange)",
                            description="Run one source processor. Each writes documents, stats.json, _dropped/ "
                                        "and _failed/ like the CCNet stage.")
    sources = parser.add_subparsers(dest="source", metavar="SOURCE")
    sources.required = True
    for name in SOURCE_MODULES:
        importlib.import_module(name).register_source(sources)
