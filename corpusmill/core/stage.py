"""What a stage is, to the registry, the CLI, manifests and the Python API (no Beam here).

A stage module defines its typed config (see :mod:`corpusmill.core.config`), a ``run(cfg, beam_args)``
that runs it to completion, and one ``Stage`` value that names them::

    STAGE = Stage(name="ccnet", config=CCNetConfig, run=run_ccnet, show=print_stats)

Its one-line summary is in the registry (corpusmill/pipelines/registry.py), written once.

``corpusmill <name>`` builds ``config`` from ``--config FILE.yaml`` and its flags, a manifest source
with ``processor: <name>`` from its ``options``, ``corpusmill.run_stage(name, **fields)`` from keyword
arguments: the same fields, the same checks.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence, Tuple


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    config: Optional[type]  # None for a command with its own parser (main)
    run: Callable[[Any, Sequence[str]], Any]
    summary: str = ""  # a user's stage (module:STAGE) may say it; a built-in one's is its registry line
    description: str = ""
    show: Optional[Callable[[Any, Any], None]] = None  # prints the result for the CLI
    beam: bool = True  # the command takes Beam pipeline options (--runner, ...)
    positional: Tuple[str, ...] = ()  # config fields given as positional arguments
    documents: bool = False  # writes corpusmill documents: usable as a manifest processor
    main: Optional[Callable[[Sequence[str]], int]] = None  # parses its own arguments (the trainer)
    steps_help: Optional[Callable[[], str]] = None  # the stage's steps, for --help (from its step list)
    # the steps a config runs, in order, as (name, kind, what it does): `corpusmill NAME --steps`
    steps: Optional[Callable[[Any], Sequence[Tuple[str, str, str]]]] = None
