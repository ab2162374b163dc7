"""The ``corpusmill`` command: argument parsing only.

The command list comes from :mod:`corpusmill.stages.registry` without importing any stage, so
``corpusmill --help`` does not import Beam. ``corpusmill COMMAND ...`` imports that one stage, builds its
parser from the stage's typed config (one flag per field), and builds the config from, in rising
precedence, the defaults, ``--config FILE.yaml`` and the flags. Options the stage does not define must
be Beam pipeline options (``--runner``, ``--direct_running_mode``, ``--project``, ...); anything else is
an error. Every user error prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from corpusmill import __version__
from corpusmill.core.config import add_arguments, build, cli_values, close_matches
from corpusmill.core.errors import CorpusmillError
from corpusmill.stages.registry import COMMANDS


class UsageError(CorpusmillError):
    pass


class StrictParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) and that takes no abbreviations."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse's hook
        raise UsageError(message)


def _top_help() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = [f"usage: corpusmill COMMAND [options]   (corpusmill {__version__})", "",
             "Build a LLaMA-style pretraining corpus on Apache Beam, and train on it.", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "corpusmill COMMAND --help shows a command's options; every command that runs a pipeline also",
              "takes --config FILE.yaml (its options as YAML keys; flags override) and Beam pipeline options."]
    return "\n".join(lines)


def _command(argv: List[str]):
    """(command name, the rest of argv)."""
    first = argv[0]
    if first == "source":
        sources = sorted(c.split(" ", 1)[1] for c in COMMANDS if c.startswith("source "))
        if len(argv) < 2 or argv[1] in ("-h", "--help"):
            raise UsageError(f"source: name a source: {', '.join(sources)}")
        name = f"source {argv[1]}"
        if name not in COMMANDS:
            raise UsageError(f"unknown source {argv[1]!r}{close_matches(argv[1], sources)} "
                             f"(sources: {', '.join(sources)})")
        return name, argv[2:]
    if first not in COMMANDS:
        names = sorted(set(COMMANDS) | {"source"})
        raise UsageError(f"unknown command {first!r}{close_matches(first, names)} (commands: "
                         f"{', '.join(c for c in COMMANDS if not c.startswith('source '))}, source NAME)")
    return first, argv[1:]


def refuse_extra(parser: argparse.ArgumentParser, extra: List[str]) -> None:
    """Arguments a command without Beam options did not take: an error naming the first, with close matches."""
    if extra:
        flags = [s for a in parser._actions for s in a.option_strings]  # noqa: SLF001
        word = extra[0].split("=", 1)[0]
        raise UsageError(f"unknown option {word}{close_matches(word, flags)}" if word.startswith("-")
                         else f"unexpected argument {word!r}")


def stage_parser(name: str, stage) -> StrictParser:
    parser = StrictParser(prog=f"corpusmill {name}", description=stage.description or stage.summary,
                          epilog=stage.steps_help() if stage.steps_help else None)
    parser.add_argument("--config", metavar="FILE.yaml", default=None,
                        help="options as a YAML mapping (the same names, with _); flags given here override it")
    if stage.beam:  # how to run, not what to make: not part of the stage's config
        parser.add_argument("--workers", type=_positive, metavar="N", default=None,
                            help="worker processes of the local runner (default: this machine's cores, "
                                 f"{os.cpu_count()} here); the output is the same with any number")
        parser.add_argument("-v", "--verbose", action="store_true", help="show Beam's own INFO and WARNING lines")
    add_arguments(parser, stage.config, positional=stage.positional)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def run_command(name: str, args: List[str]) -> int:
    from corpusmill.stages.registry import load_stage

    stage = load_stage(name)
    if getattr(stage, "main", None) is not None:  # a command with its own parser (train)
        return int(stage.main(args) or 0)
    parser = stage_parser(name, stage)
    if stage.beam:
        namespace, extra = parser.parse_known_args(args)
    else:
        namespace, extra = parser.parse_known_args(args)
        refuse_extra(parser, extra)
    cfg = build(stage.config, cli=cli_values(stage.config, namespace), config_file=namespace.config)
    beam_args: List[str] = []
    if stage.beam:
        from corpusmill.engine.options import check_beam_args, quiet_beam, worker_args

        own = [s for a in parser._actions for s in a.option_strings]  # noqa: SLF001
        beam_args = check_beam_args(extra, own)
        beam_args = worker_args(namespace.workers, beam_args) + beam_args
        quiet_beam(namespace.verbose)
    result = stage.run(cfg, beam_args)
    if stage.show is not None:
        stage.show(cfg, result)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_help())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"corpusmill {__version__}")
        return 0
    name = argv[0]
    try:
        name, rest = _command(argv)
        return run_command(name, rest)
    except CorpusmillError as exc:
        message = str(exc)
        print(f"corpusmill {name}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
