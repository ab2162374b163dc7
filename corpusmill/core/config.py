"""Typed stage configs: one dataclass per stage is the single source of truth for its CLI flags, its
YAML keys (``--config FILE.yaml``, a manifest's ``options``), its defaults, help text and validation.

    @dataclasses.dataclass(kw_only=True)
    class MyConfig:
        input: List[str] = option(required=True, help="input files", metavar="GLOB")
        min_length: int = option(300, min=0, help="drop shorter documents")
        languages: Optional[List[str]] = option(None, sep=",", help="keep these languages")

The field name is the YAML key; ``--min-length`` is its flag. Values are checked strictly and never
coerced: ``languages: en`` (a string where a list is expected), ``min_length: "300"``, ``true`` for a
number, a value out of range, an unknown key: each is a :class:`CorpusmillError` naming the file and
field (or the flag), what was expected, what was given, and close matches.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import typing
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from corpusmill.core.errors import CorpusmillError

MISSING = dataclasses.MISSING


def option(
    default: Any = MISSING,
    *,
    help: str = "",
    default_factory: Any = MISSING,
    required: bool = False,
    choices: Optional[Iterable[Any]] = None,
    min: Optional[float] = None,
    max: Optional[float] = None,
    above: Optional[float] = None,
    below: Optional[float] = None,
    sep: Optional[str] = None,
    metavar: Optional[str] = None,
    aliases: Tuple[str, ...] = (),
    cli: bool = True,
) -> Any:
    """A config field. ``min``/``max`` are inclusive bounds, ``above``/``below`` exclusive ones;
    ``sep`` lets the CLI also take a list as one ``a,b`` value; ``aliases`` are extra CLI flags."""
    meta = {
        "help": help,
        "required": required,
        "choices": tuple(choices) if choices is not None else None,
        "min": min,
        "max": max,
        "above": above,
        "below": below,
        "sep": sep,
        "metavar": metavar,
        "aliases": tuple(aliases),
        "cli": cli,
    }
    if required:
        default = None
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    if default is MISSING:
        raise TypeError("option() needs a default (or required=True)")
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def close_matches(word: str, candidates: Iterable[str]) -> str:
    found = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(found)}?" if found else ""


# ---------------------------------------------------------------------------------------------------
# types
# ---------------------------------------------------------------------------------------------------
def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return f"{_describe(inner[0])} or null" if len(inner) == 1 else " or ".join(map(_describe, inner))
    if origin in (list, List, tuple, Tuple):
        plural = {bool: "true/false values", int: "whole numbers", float: "numbers", str: "strings"}
        return f"a list of {plural.get(args[0], _describe(args[0]))}" if args else "a list"
    if origin in (dict, Dict):
        return f"a mapping of {_describe(args[0])} to {_describe(args[1])}"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(tp, str(tp))


def check_value(tp: Any, value: Any, where: str) -> Any:
    """``value`` if it is of type ``tp`` (a list for a tuple is turned into a tuple); else an error."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = CorpusmillError(f"{where}: expected {_describe(tp)}, got {value!r}")
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return check_value(arg, value, where)
            except CorpusmillError:
                continue
        raise bad
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        items = [check_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else list(value)
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return {
            check_value(args[0], k, f"{where} key"): check_value(args[1], v, f"{where}.{k}") for k, v in value.items()
        }
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported config type {tp!r}")


def _check_meta(meta: Mapping[str, Any], value: Any, where: str) -> None:
    if value is None:
        return
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        choices = meta.get("choices")
        if choices is not None and v not in choices:
            raise CorpusmillError(
                f"{where}: expected one of {', '.join(map(str, choices))}, got {v!r}"
                + close_matches(str(v), map(str, choices))
            )
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            for key, ok, text in (
                ("min", lambda x, b: x >= b, "at least"),
                ("max", lambda x, b: x <= b, "at most"),
                ("above", lambda x, b: x > b, "above"),
                ("below", lambda x, b: x < b, "below"),
            ):
                bound = meta.get(key)
                if bound is not None and not ok(v, bound):
                    raise CorpusmillError(f"{where}: expected a value {text} {bound:g}, got {v!r}")


def config_fields(cls) -> Dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def _hints(cls) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


# ---------------------------------------------------------------------------------------------------
# mappings (YAML, manifests, Python keyword arguments)
# ---------------------------------------------------------------------------------------------------
def from_mapping(cls, data: Mapping[str, Any], namer: Callable[[str], str] = str, *, context: str = ""):
    """Build and validate a ``cls`` from ``data``; ``namer(key)`` says where a key came from in messages
    (``"file.yaml: min_length"`` or ``"--min-length"``).
    Cross-field checks and model files are the stage's own ``validate()``, which its run calls."""
    fields = config_fields(cls)
    hints = _hints(cls)
    for key in data:
        if key not in fields:
            known = sorted(fields)
            raise CorpusmillError(
                f"{namer(key)}: unknown option{close_matches(key, known)} "
                f"(known{' to ' + context if context else ''}: {', '.join(known)})"
            )
    values = {}
    for name, field in fields.items():
        if name in data:
            value = check_value(hints[name], data[name], namer(name))
            _check_meta(field.metadata, value, namer(name))
            values[name] = value
        elif field.metadata.get("required"):
            raise CorpusmillError(f"{namer(name)}: missing; {field.metadata.get('help') or 'required'}")
    return cls(**values)


class _StrictLoader:
    """A YAML SafeLoader that refuses a key given twice in one mapping, and every alias (``*name``): a
    few hundred bytes of nested aliases expand to billions of nodes (a "billion laughs"), and no
    corpusmill file needs one."""

    @staticmethod
    def make():
        import yaml

        class Loader(yaml.SafeLoader):
            def compose_node(self, parent, index):
                if self.check_event(yaml.events.AliasEvent):
                    mark = self.peek_event().start_mark
                    raise CorpusmillError(
                        f"line {mark.line + 1}: a YAML alias (*{self.peek_event().anchor}); "
                        f"corpusmill's files take no anchors or aliases: write the value out"
                    )
                return yaml.SafeLoader.compose_node(self, parent, index)

        def construct_mapping(loader, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                key = loader.construct_object(key_node, deep=True)
                if key in seen:
                    raise CorpusmillError(
                        f"line {key_node.start_mark.line + 1}: key {key!r} is given twice "
                        f"(first on line {seen[key] + 1})"
                    )
                seen[key] = key_node.start_mark.line
            return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

        Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
        return Loader


def load_yaml(path: str, text: Optional[str] = None) -> Any:
    """A YAML file (or its ``text``), strictly: a duplicate key or an alias is an error naming the file
    and line."""
    import yaml

    try:
        if text is None:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        return yaml.load(text, Loader=_StrictLoader.make())  # noqa: S506 (a SafeLoader subclass)
    except FileNotFoundError:
        raise CorpusmillError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CorpusmillError(f"{path}: is a directory, not a YAML file") from None
    except CorpusmillError as exc:
        raise CorpusmillError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise CorpusmillError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None


def load_config_file(path: str) -> Dict[str, Any]:
    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CorpusmillError(f"{path}: expected a mapping of option names to values, got {type(data).__name__}")
    return data


# ---------------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------------
def _scalar_parser(tp: Any, flag: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if tp is int:
            try:
                return int(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if tp is float:
            try:
                value = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
            if not math.isfinite(value):
                raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
            return value
        return text

    parse.__name__ = getattr(tp, "__name__", "value")
    return parse


def _unwrap(tp: Any) -> Tuple[Any, bool]:
    """(the type inside Optional[...], whether None is allowed)."""
    if typing.get_origin(tp) is typing.Union:
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return inner[0], True
    return tp, False


def add_arguments(parser: argparse.ArgumentParser, cls, *, positional: Iterable[str] = ()) -> None:
    """One flag per field of ``cls`` (``--min-length``); absent flags leave no attribute, so a
    ``--config`` file's values and the defaults show through. Fields in ``positional`` are positional."""
    hints = _hints(cls)
    positional = set(positional)
    for name, field in config_fields(cls).items():
        meta = field.metadata
        if not meta.get("cli", True):
            continue
        tp, _ = _unwrap(hints[name])
        origin = typing.get_origin(tp)
        help_text = meta.get("help", "")
        if meta.get("required"):  # checked once --config is read (it may give the value): said here
            help_text = f"(required) {help_text}"
        elif field.default is not MISSING and field.default is not None and field.default != "":
            shown = field.default
            if isinstance(shown, bool):
                shown = "on" if shown else "off"
            help_text += f" (default: {shown})"
        elif field.default_factory is not MISSING:
            shown = field.default_factory()
            if shown:
                help_text += f" (default: {' '.join(map(str, shown)) if isinstance(shown, (list, tuple)) else shown})"
        choices = meta.get("choices")
        if choices:
            help_text += f" [{', '.join(map(str, choices))}]"
        help_text = help_text.replace("%", "%%")
        if name in positional:
            parser.add_argument(name, metavar=meta.get("metavar") or name.upper(), help=help_text)
            continue
        flags = [flag_of(name), *meta.get("aliases", ())]
        if tp is bool:
            parser.add_argument(
                *flags, dest=name, action="store_const", const=True, default=argparse.SUPPRESS, help=help_text
            )
            parser.add_argument(
                f"--no-{name.replace('_', '-')}",
                dest=name,
                action="store_const",
                const=False,
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )
        elif origin in (list, tuple, dict):
            item = typing.get_args(tp)[0] if origin is not dict else str
            parser.add_argument(
                *flags,
                dest=name,
                nargs="+",
                action="extend",
                default=argparse.SUPPRESS,
                type=str if meta.get("sep") else _scalar_parser(item, flags[0]),
                metavar=meta.get("metavar") or "VALUE",
                help=help_text,
            )
        else:
            parser.add_argument(
                *flags,
                dest=name,
                type=_scalar_parser(tp, flags[0]),
                default=argparse.SUPPRESS,
                metavar=meta.get("metavar") or name.upper(),
                help=help_text,
            )


def cli_values(cls, namespace: argparse.Namespace) -> Dict[str, Any]:
    """The fields given on the command line, in their config types (``a,b`` split where allowed)."""
    hints = _hints(cls)
    values = {}
    for name, field in config_fields(cls).items():
        if not hasattr(namespace, name):
            continue
        value = getattr(namespace, name)
        tp, _ = _unwrap(hints[name])
        origin = typing.get_origin(tp)
        if origin in (list, tuple) and field.metadata.get("sep"):
            sep = field.metadata["sep"]
            parse = _scalar_parser(typing.get_args(tp)[0], flag_of(name))
            try:
                value = [parse(part.strip()) for v in value for part in str(v).split(sep) if part.strip()]
            except argparse.ArgumentTypeError as exc:
                raise CorpusmillError(f"{flag_of(name)}: {exc}") from None
        if origin is dict:
            pairs = {}
            for item in value:
                key, eq, val = str(item).partition("=")
                if not eq or not key:
                    raise CorpusmillError(f"{flag_of(name)}: expected KEY=VALUE items, got {item!r}")
                pairs[key] = val
            value = pairs
        values[name] = value
    return values


def build(
    cls,
    *,
    cli: Optional[Dict[str, Any]] = None,
    config_file: Optional[str] = None,
    overrides: Optional[Dict[str, Any]] = None,
    context: str = "",
):
    """A validated ``cls`` from (lowest to highest precedence) its defaults, a YAML ``config_file``,
    Python ``overrides`` and ``cli`` values; each key is named in messages by where it came from."""
    data: Dict[str, Any] = {}
    origin: Dict[str, str] = {}
    if config_file:
        for key, value in load_config_file(config_file).items():
            data[key], origin[key] = value, f"{config_file}: {key}"
    for key, value in (overrides or {}).items():
        data[key], origin[key] = value, key
    for key, value in (cli or {}).items():
        data[key], origin[key] = value, flag_of(key)
    fields = config_fields(cls)

    def namer(key: str) -> str:
        if key in origin:
            return origin[key]
        return flag_of(key) if cli is not None and key in fields else key

    return from_mapping(cls, data, namer, context=context)


def to_dict(cfg) -> Dict[str, Any]:
    """The effective config (after defaults), for provenance and fingerprints."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
