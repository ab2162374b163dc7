"""The ``corpusmill`` command.

Each command lives next to the code it runs: a module listed in ``COMMAND_MODULES`` exposes
``register(subparsers)``, which adds its sub-command(s) with ``set_defaults(func=handler)``. Modules
must stay cheap to import (no torch, no models at import time): ``corpusmill --help`` imports them all.
A handler takes ``(args, beam_args)``: ``beam_args`` are the options the command did not recognise,
passed on to Beam as pipeline options (``--runner``, ``--direct_running_mode``, ``--project``, ...).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from corpusmill.core.errors import CorpusmillError

COMMAND_MODULES = [
    "corpusmill.stages.ccnet",
    "corpusmill.stages.quality",
    "corpusmill.cli._sources",
    "corpusmill.stages.tokenizer",
    "corpusmill.stages.recipe",
    "corpusmill.cli.train",
    "corpusmill.report.make",
    "corpusmill.stages.demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corpusmill",
        description="Build a LLaMA-style pretraining corpus on Apache Beam. "
                    "Options a command does not know are passed to Beam as pipeline options "
                    "(e.g. --runner DataflowRunner, --direct_running_mode multi_processing).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    if beam_args and not getattr(args, "accepts_beam_args", False):
        parser.error(f"unrecognized arguments: {' '.join(beam_args)}")
    try:
        return int(args.func(args, beam_args) or 0)
    except CorpusmillError as exc:
        print(f"corpusmill {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
