"""One module per pipeline: its typed config, its step list and its Stage. See :mod:`corpusmill.pipelines.registry`."""

from __future__ import annotations

from typing import Callable, List, Sequence, Tuple


def listed(steps: Callable) -> Callable:
    """A Stage's ``steps`` (``corpusmill NAME --steps``) from its ``steps(cfg)`` list, with the user's
    ``--add-filter`` filters in place (Beam-free: listing imports no reader)."""
    from corpusmill.core.steps import table
    from corpusmill.filters.user import load_extra_filters

    def list_steps(cfg) -> List[Tuple[str, str, str]]:
        extra = load_extra_filters(cfg.add_filter, cfg.after, cfg.filter_arg) if cfg.add_filter else ()
        return table(steps(cfg), extra)

    return list_steps


def lazy(module: str, name: str):
    """A step's Beam-side part (a reader, a dedup's marks), imported when the step is made, so that a
    pipeline module and its step list import no Beam (``--help``, ``--steps`` stay fast)."""
    import importlib

    return getattr(importlib.import_module(module), name)


__all__: Sequence[str] = ("lazy", "listed")
