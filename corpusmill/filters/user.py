"""Your filters inside any stage (no Beam): ``--add-filter MODULE:CLASS[@STEP]`` with ``--filter-arg``
parameters, built here once per run and placed in the stage's step list (corpusmill.core.steps)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from corpusmill.core.config import close_matches
from corpusmill.core.errors import CorpusmillError
from corpusmill.core.plugins import import_object
from corpusmill.filters.base import Filter


def _scalar(value: Any) -> Any:
    """A command-line value as YAML would read it: a whole number, a number, true/false, or the text."""
    if not isinstance(value, str):
        return value
    for parse in (int, float):
        try:
            return parse(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def filter_params(params: Dict[str, Any], cls: type, count: int) -> Dict[str, Any]:
    """The ``--filter-arg`` values for filter class ``cls``: ``CLASS.key`` / ``name.key`` / ``CLASS: {key:
    value}`` for it; a bare ``key`` when it is the only filter added."""
    names = {cls.__name__, getattr(cls, "name", "") or cls.__name__}
    out = {}
    for key, value in (params or {}).items():
        owner, dot, field = str(key).rpartition(".")
        if isinstance(value, dict) and key in names:  # FILTER: {key: value} (a --config mapping)
            out.update({str(k): _scalar(v) for k, v in value.items()})
        elif dot and owner in names:
            out[field] = _scalar(value)
        elif not dot and not isinstance(value, dict) and count == 1:
            out[key] = _scalar(value)
    return out


def load_extra_filters(
    specs: Sequence[str], after: Optional[str], params: Optional[Dict[str, Any]] = None
) -> List[Tuple[Filter, Optional[str]]]:
    """``--add-filter MODULE:CLASS[@STEP]``: the user's Filter objects, built with their ``--filter-arg``
    parameters, and the step each runs after. A parameter no added filter takes is an error."""
    import inspect

    out, used = [], set()
    for spec in specs:
        path, _, step = spec.partition("@")
        obj = import_object(path, "--add-filter")
        if isinstance(obj, type):
            if not issubclass(obj, Filter):
                raise CorpusmillError(
                    f"--add-filter {path}: {obj.__name__} is not a corpusmill.filters.base.Filter "
                    f"subclass (see docs/extending.md)"
                )
            kwargs = filter_params(params or {}, obj, len(specs))
            takes = [p for p in inspect.signature(obj.__init__).parameters if p != "self"]
            for key in kwargs:
                if key not in takes:
                    raise CorpusmillError(
                        f"--filter-arg {key}: {obj.__name__} takes no parameter {key!r} (its "
                        f"parameters: {', '.join(takes) or 'none'}){close_matches(key, takes)}"
                    )
            used.update(k for k in (params or {}) if filter_params({k: params[k]}, obj, len(specs)))
            try:
                obj = obj(**kwargs)
            except TypeError as exc:
                raise CorpusmillError(
                    f"--add-filter {path}: cannot create it with {kwargs or 'no arguments'} "
                    f"({exc}); give its other __init__ parameters defaults or --filter-arg "
                    f"values"
                ) from None
        if not isinstance(obj, Filter):
            raise CorpusmillError(f"--add-filter {path}: expected a Filter class or instance, got {type(obj).__name__}")
        if not getattr(obj, "name", ""):
            raise CorpusmillError(f"--add-filter {path}: the filter has no name (set a class attribute name = ...)")
        out.append((obj, step or after))
    unused = [k for k in (params or {}) if k not in used]
    if unused:
        raise CorpusmillError(
            f"--filter-arg {unused[0]}: no --add-filter filter takes it (with several filters, "
            f"name one: CLASS.{str(unused[0]).rsplit('.', 1)[-1]}=VALUE)"
        )
    return out
