"""A small strict loader from YAML mappings to typed dataclasses.

Errors name the field's dotted path, the valid keys or values, and a suggestion:
``distill.methd: unknown key; did you mean 'method'? valid keys: ...``. Supported field types:
str, int, float, bool, ``X | None``, ``Literal[...]``, ``list[X]``, ``dict[str, Any]`` and nested
dataclasses.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, TypeVar, Union

from admd_deploy.errors import UsageError

T = TypeVar("T")


class RecipeError(UsageError):
    """A recipe value is invalid; ``str()`` is the one-line message for the user (exit code 2)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


def _suggest(word: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def convert(tp: Any, value: Any, path: str) -> Any:
    """Convert and check ``value`` against type ``tp``; raise :class:`RecipeError` naming ``path``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return convert(arg, value, path)
            except RecipeError as err:
                errors.append(err)
        if len(errors) == 1 and isinstance(value, dict):  # `Section | None` given a mapping: the section's own error
            raise errors[0]
        raise RecipeError(path, f"expected {_describe(tp)}; got {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = _suggest(str(value), map(str, choices))
            raise RecipeError(path, f"must be one of {', '.join(map(str, choices))}; got {value!r}. {hint}".rstrip())
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise RecipeError(path, f"expected {_describe(tp)}; got {value!r}")
        (item,) = typing.get_args(tp)
        return [convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(path, f"expected a mapping; got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return load(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise RecipeError(path, f"expected true or false; got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(path, f"expected an integer; got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(path, f"expected a number; got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise RecipeError(path, f"expected a string; got {value!r}")
        return value
    raise TypeError(f"unsupported recipe field type {tp!r} at {path}")  # a bug in the schema, not user input


def load(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, strictly."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(path, f"expected a mapping of {', '.join(f.name for f in dataclasses.fields(cls))}; got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise RecipeError(where, f"unknown key; {_suggest(str(key), fields)}valid keys: {', '.join(fields)}")
        kwargs[key] = convert(hints[key], value, where)
    missing = [
        n for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        where = f"{path}.{missing[0]}" if path else missing[0]
        raise RecipeError(where, f"required ({_describe(hints[missing[0]])}); add it to the recipe")
    try:
        return cls(**kwargs)
    except RecipeError:
        raise
    except UsageError as err:  # __post_init__ checks across fields (a library's ValueError stays a bug, not input)
        msg = str(err)
        if msg.startswith(f"{path}."):
            raise RecipeError("", msg) from err
        head = msg.split(" ", 1)[0].split(".", 1)[0].rstrip(":")
        if path and head in fields:  # the message names one of this section's fields: give its full path
            raise RecipeError("", f"{path}.{msg}") from err
        raise RecipeError(path, msg) from err


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Apply an override ``a.b.c=value`` to nested mappings (created when missing)."""
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            raise RecipeError(dotted, f"{k!r} is not a section, cannot set {keys[-1]!r} inside it")
        node = child
    node[keys[-1]] = value


def dump(obj: Any) -> Any:
    """Plain-types form of a loaded recipe (for YAML/JSON and hashing)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: dump(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [dump(v) for v in obj]
    if isinstance(obj, dict):
        return {k: dump(v) for k, v in obj.items()}
    return obj
