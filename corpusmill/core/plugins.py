"""Naming user code by import path: ``mypkg.filters:MaxDigitShare`` (a module, a colon, an attribute)."""

from __future__ import annotations

import importlib
import re
from typing import Any

from corpusmill.core.errors import CorpusmillError

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def is_import_path(name: str) -> bool:
    return ":" in name


def import_object(spec: str, what: str) -> Any:
    """The object ``module:attribute`` names; ``what`` says what it should be, for messages."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CorpusmillError(f"{what} {spec!r}: expected MODULE:NAME, e.g. mypkg.filters:MaxDigitShare")
    if not _DOTTED.fullmatch(module_name) or not _DOTTED.fullmatch(attr):
        raise CorpusmillError(
            f"{what} {spec!r}: expected MODULE:NAME with a dotted module name (mypkg.filters), "
            f"not a path; put its folder on PYTHONPATH"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CorpusmillError(
            f"{what} {spec!r}: cannot import module {module_name} ({exc}); is it installed or on PYTHONPATH?"
        ) from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n in dir(module) if not n.startswith("_"))
            from corpusmill.core.config import close_matches

            raise CorpusmillError(f"{what} {spec!r}: module {module_name} has no {part}{close_matches(part, names)}")
        obj = getattr(obj, part)
    return obj
