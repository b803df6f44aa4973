"""Typed parameter schemas: a frozen dataclass per method, validated field by field.

A method's parameters are a dataclass; :func:`validate` builds it from the request's
``params`` object and, on the first thing wrong, raises :class:`SchemaError` naming the
offending field (``params.port``, ``params.routes[2].prefix``).  :func:`describe` turns the
same dataclass into a JSON-Schema-like description for ``api.methods`` and docs/api.md.

Supported field types: ``str``, ``int``, ``float`` (an integer is accepted), ``bool``,
``None``, ``X | None``, ``Literal[...]``, ``list[X]``, ``dict[str, X]``, nested dataclasses
and ``object`` (any JSON value, passed through).  Field metadata may add ``doc``,
``min``/``max`` (numbers) and ``min_length``/``max_length`` (strings, lists).  A
``__post_init__`` may raise :class:`FieldError` to reject a value it finds wrong.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, Final, Literal, TypeVar, Union, get_args, get_origin

T = TypeVar("T")

MAX_DEPTH: Final = 32  # nested dataclass/list/dict levels; deeper is a hostile request


class SchemaError(Exception):
    """The value does not fit the schema; ``path`` names where."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class FieldError(ValueError):
    """Raised from a params dataclass's ``__post_init__`` to blame one field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclasses.dataclass(frozen=True, slots=True)
class NoParams:
    """For methods that take no parameters."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_schema_type(cls: type) -> None:
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.init:
            _check_type(hints[f.name], f"{cls.__name__}.{f.name}")


def _check_type(tp: Any, where: str) -> None:
    """Fail at registration, not at the first request, if a type is unsupported."""
    origin = get_origin(tp)
    if tp in (str, int, float, bool, object, type(None)):
        return
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        _check_schema_type(tp)
        return
    if origin is Literal:
        return
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            _check_type(arg, where)
        return
    if origin is list:
        _check_type(get_args(tp)[0], where)
        return
    if origin is dict:
        key, value = get_args(tp)
        if key is not str:
            raise TypeError(f"{where}: JSON object keys are strings, not {key!r}")
        _check_type(value, where)
        return
    raise TypeError(f"{where}: unsupported parameter type {tp!r}")


check_schema_type = _check_schema_type


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def validate(cls: type[T], data: object, path: str = "params") -> T:
    """Build ``cls`` from JSON ``data`` or raise :class:`SchemaError` naming the field."""
    return typing.cast(T, _dataclass(cls, data, path, 0))


def _dataclass(cls: type, data: object, path: str, depth: int) -> object:
    if depth > MAX_DEPTH:
        raise SchemaError(path, f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(data, dict):
        raise SchemaError(path, f"expected object, got {_kind(data)}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise SchemaError(f"{path}.{key}", f"unknown parameter (known: {known})")
    kwargs: dict[str, object] = {}
    for name, f in fields.items():
        sub = f"{path}.{name}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SchemaError(sub, "required parameter is missing")
            continue
        value = _value(hints[name], data[name], sub, depth + 1)
        _constraints(f.metadata, value, sub)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except FieldError as exc:
        raise SchemaError(f"{path}.{exc.field}", exc.message) from None
    except (ValueError, TypeError) as exc:
        raise SchemaError(path, str(exc)) from None


def _value(tp: Any, value: object, path: str, depth: int) -> object:
    if depth > MAX_DEPTH:
        raise SchemaError(path, f"nested deeper than {MAX_DEPTH} levels")
    origin = get_origin(tp)
    if tp is object:
        return value
    if tp is type(None):
        if value is not None:
            raise SchemaError(path, f"expected null, got {_kind(value)}")
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise SchemaError(path, f"expected boolean, got {_kind(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(path, f"expected integer, got {_kind(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SchemaError(path, f"expected number, got {_kind(value)}")
        if not math.isfinite(value):
            raise SchemaError(path, "expected a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise SchemaError(path, f"expected string, got {_kind(value)}")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, path, depth)
    if origin is Literal:
        choices = get_args(tp)
        # bool is an int in Python; 1 must not match True nor True match 1.
        for choice in choices:
            if type(choice) is type(value) and choice == value:
                return value
        allowed = ", ".join(repr(c) for c in choices)
        raise SchemaError(path, f"expected one of {allowed}, got {value!r}"[:300])
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors: list[SchemaError] = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _value(arg, value, path, depth)
            except SchemaError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise SchemaError(path, f"expected {type_name(tp)}, got {_kind(value)}")
    if origin is list:
        if not isinstance(value, list):
            raise SchemaError(path, f"expected array, got {_kind(value)}")
        (item,) = get_args(tp)
        return [_value(item, v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise SchemaError(path, f"expected object, got {_kind(value)}")
        _, item = get_args(tp)
        return {k: _value(item, v, f"{path}.{k}", depth + 1) for k, v in value.items()}
    raise SchemaError(path, f"unsupported schema type {tp!r}")  # pragma: no cover


def _constraints(meta: typing.Mapping[str, object], value: object, path: str) -> None:
    lo, hi = meta.get("min"), meta.get("max")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(lo, int | float) and value < lo:
            raise SchemaError(path, f"must be >= {lo}, got {value}")
        if isinstance(hi, int | float) and value > hi:
            raise SchemaError(path, f"must be <= {hi}, got {value}")
    if isinstance(value, str | list):
        shortest, longest = meta.get("min_length"), meta.get("max_length")
        if isinstance(shortest, int) and len(value) < shortest:
            raise SchemaError(path, f"length must be >= {shortest}, got {len(value)}")
        if isinstance(longest, int) and len(value) > longest:
            raise SchemaError(path, f"length must be <= {longest}, got {len(value)}")


def type_name(tp: Any) -> str:
    """A compact, human-readable name: ``list[int]``, ``'a' | 'b'``, ``str | null``."""
    origin = get_origin(tp)
    if tp is type(None):
        return "null"
    if tp is object:
        return "any"
    if tp in (str, int, float, bool):
        return {str: "string", int: "integer", float: "number", bool: "boolean"}[tp]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp.__name__
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in get_args(tp))
    if origin is list:
        return f"list[{type_name(get_args(tp)[0])}]"
    if origin is dict:
        return f"dict[string, {type_name(get_args(tp)[1])}]"
    return repr(tp)


def describe(cls: type) -> dict[str, object]:
    """JSON-Schema-like description of a params dataclass (for ``api.methods``)."""
    hints = _hints(cls)
    props: dict[str, object] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        prop = _describe_type(hints[f.name])
        for key in ("doc", "min", "max", "min_length", "max_length"):
            if key in f.metadata:
                prop["description" if key == "doc" else key] = f.metadata[key]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
        elif f.default is not dataclasses.MISSING and _is_json_scalar(f.default):
            prop["default"] = f.default
        props[f.name] = prop
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def _is_json_scalar(value: object) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _describe_type(tp: Any) -> dict[str, object]:
    origin = get_origin(tp)
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if tp in simple:
        return {"type": simple[tp]}
    if tp is type(None):
        return {"type": "null"}
    if tp is object:
        return {}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return describe(tp)
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (Union, types.UnionType):
        return {"anyOf": [_describe_type(a) for a in get_args(tp)]}
    if origin is list:
        return {"type": "array", "items": _describe_type(get_args(tp)[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _describe_type(get_args(tp)[1])}
    return {}  # pragma: no cover - rejected by check_schema_type


def signature(cls: type) -> str:
    """``port: integer, reason?: string`` -- one line for the docs table."""
    hints = _hints(cls)
    parts = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        optional = not (
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        parts.append(f"{f.name}{'?' if optional else ''}: {type_name(hints[f.name])}")
    return ", ".join(parts) or "-"
