"""Typed params: every wrong value is named by its path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from firmware.api.schema import (
    FieldError,
    NoParams,
    SchemaError,
    check_schema_type,
    describe,
    signature,
    validate,
)


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str = field(metadata={"min_length": 1, "max_length": 8})
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Params:
    port: int = field(metadata={"min": 1, "max": 8, "doc": "port number"})
    mode: Literal["fxs", "fxo"] = "fxs"
    enabled: bool = True
    label: str | None = None
    routes: list[Route] = field(default_factory=list)
    gains: dict[str, float] = field(default_factory=dict)
    extra: object = None

    def __post_init__(self) -> None:
        if self.mode == "fxo" and self.label == "bad":
            raise FieldError("label", "an FXO port cannot be called bad")


def test_valid_params_build_the_dataclass() -> None:
    p = validate(
        Params,
        {"port": 2, "mode": "fxo", "routes": [{"prefix": "0"}], "gains": {"rx": 1}, "extra": [1]},
    )
    assert p == Params(2, "fxo", True, None, [Route("0", 1.0)], {"rx": 1.0}, [1])
    assert isinstance(p.gains["rx"], float)


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ([], "params", "expected object, got array"),
        ({}, "params.port", "required"),
        ({"port": "1"}, "params.port", "expected integer, got string"),
        ({"port": True}, "params.port", "expected integer, got boolean"),
        ({"port": 1.0}, "params.port", "expected integer, got number"),
        ({"port": 9}, "params.port", "must be <= 8"),
        ({"port": 0}, "params.port", "must be >= 1"),
        ({"port": 1, "mode": "sip"}, "params.mode", "expected one of 'fxs', 'fxo'"),
        ({"port": 1, "enabled": 1}, "params.enabled", "expected boolean, got integer"),
        ({"port": 1, "label": 5}, "params.label", "expected string, got integer"),
        ({"port": 1, "routes": {}}, "params.routes", "expected array"),
        ({"port": 1, "routes": [{"prefix": "1"}, {}]}, "params.routes[1].prefix", "required"),
        ({"port": 1, "routes": [{"prefix": ""}]}, "params.routes[0].prefix", "length must be >= 1"),
        (
            {"port": 1, "routes": [{"prefix": "1", "weight": "x"}]},
            "params.routes[0].weight",
            "number",
        ),
        ({"port": 1, "gains": {"rx": None}}, "params.gains.rx", "expected number, got null"),
        ({"port": 1, "colour": "red"}, "params.colour", "unknown parameter"),
        ({"port": 1, "mode": "fxo", "label": "bad"}, "params.label", "cannot be called bad"),
    ],
)
def test_errors_name_the_field(data: object, path: str, fragment: str) -> None:
    with pytest.raises(SchemaError) as info:
        validate(Params, data)
    assert info.value.path == path
    assert fragment in info.value.message


def test_literal_does_not_confuse_bool_and_int() -> None:
    @dataclass(frozen=True)
    class L:
        x: Literal[1, "a"]

    assert validate(L, {"x": 1}).x == 1
    with pytest.raises(SchemaError):
        validate(L, {"x": True})


def test_nesting_depth_is_capped() -> None:
    @dataclass(frozen=True)
    class Deep:
        x: object = None
        d: dict[str, object] = field(default_factory=dict)

    nested: object = {}
    for _ in range(100):
        nested = {"a": nested}
    validate(Deep, {"x": nested})  # 'object' passes anything through
    with pytest.raises(SchemaError):

        @dataclass(frozen=True)
        class Rec:
            r: list[list[list[list[list[list[list[list[list[list[int]]]]]]]]]]

        value: object = 1
        for _ in range(40):
            value = [value]
        validate(Rec, {"r": value})


def test_unsupported_types_fail_at_registration() -> None:
    @dataclass(frozen=True)
    class Bad:
        when: set[int]

    with pytest.raises(TypeError, match="unsupported"):
        check_schema_type(Bad)
    with pytest.raises(TypeError, match="not a dataclass"):
        check_schema_type(int)


def test_describe_and_signature() -> None:
    d = describe(Params)
    assert d["required"] == ["port"]
    props = d["properties"]
    assert isinstance(props, dict)
    assert props["port"] == {"type": "integer", "description": "port number", "min": 1, "max": 8}
    assert props["mode"] == {"enum": ["fxs", "fxo"], "default": "fxs"}
    assert props["routes"]["items"]["required"] == ["prefix"]
    assert signature(Params).startswith("port: integer, mode?: 'fxs' | 'fxo'")
    assert signature(NoParams) == "-"
