"""Hostile documents: whatever comes in, only ConfigError comes out."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.store import REDACTED, ConfigError, default_config, dumps_toml, parse, to_document
from firmware.store.document import (
    PathError,
    delete_path,
    flatten,
    get_path,
    loads_toml,
    schema_field_at,
    set_path,
)

from .helpers import rich_config

KEYS = sorted(
    {part.split("[")[0] for path in flatten(to_document(rich_config())) for part in path.split(".")}
    | {"schema_version", "fxs", "fxo", "trunks", "accounts", "routes", "extensions"}
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "ITU",
            "XX",
            "udp",
            "tls",
            "mandatory",
            "PCMA",
            "fxo:0",
            "trunk:x",
            "*72",
            "[1-9]xx",
            "",
            REDACTED,
        ]
    ),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents_raise_only_config_error(doc: Any) -> None:
    try:
        parse(doc)
    except ConfigError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert isinstance(issue.path, str) and issue.message


leaf_paths = sorted(flatten(to_document(rich_config())))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(leaf_paths), scalars), min_size=1, max_size=6))
def test_mutated_real_documents_raise_only_config_error(edits: list[tuple[str, Any]]) -> None:
    doc = to_document(rich_config())
    for path, value in edits:
        doc = set_path(doc, path, value)
    try:
        config = parse(doc)
    except ConfigError as exc:
        assert exc.issues
        return
    # Anything accepted survives a round trip unchanged, also through TOML text.
    assert parse(to_document(config)) == config
    assert loads_toml(dumps_toml(config)) == config
    assert loads_toml(dumps_toml(config, redact=True), config) == config


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_random_toml_text_raises_only_config_error(text: str) -> None:
    try:
        loads_toml(text, default_config())
    except ConfigError as exc:
        assert exc.issues


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_byte_mutations_of_an_export_raise_only_config_error(noise: bytes) -> None:
    data = bytearray(dumps_toml(rich_config()).encode())
    for i, b in enumerate(noise):
        data[(i * 7919 + b) % len(data)] = b
    try:
        config = loads_toml(data.decode("utf-8", "replace"), rich_config())
    except ConfigError as exc:
        assert exc.issues
        return
    assert parse(to_document(config)) == config


def test_replace_keeps_frozen_dataclasses_frozen() -> None:
    config = default_config()
    try:
        config.system.hostname = "x"  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        return
    raise AssertionError("configuration objects must be immutable")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcfxs_.[]0123456789 -*", max_size=40))
def test_random_paths_raise_only_path_error(path: str) -> None:
    doc = to_document(rich_config())
    for operation in (
        lambda: get_path(doc, path),
        lambda: set_path(doc, path, 1),
        lambda: delete_path(doc, path),
        lambda: schema_field_at(path),
    ):
        try:
            operation()
        except PathError:
            pass


def test_hostile_values_are_refused_with_a_message() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    cases = {
        "lines.fxs[0].gain_rx": 10**400,
        "system.timezone": "Europe/\x00Rome",
        "sip.user_agent": "ponte\ud800",
        "extensions[0].name": "line\nbreak",
    }
    doc = to_document(rich_config())
    for path, value in cases.items():
        doc = set_path(doc, path, value)
    doc["system"]["hostname"] = deep  # set last: set_path copies the document it is given
    cases["system.hostname"] = deep
    try:
        parse(doc)
    except ConfigError as exc:
        messages = {i.path: i.message for i in exc.issues}
    else:
        raise AssertionError("hostile values accepted")
    assert set(messages) == set(cases)
    assert messages["lines.fxs[0].gain_rx"] == "number too large"
    assert "control character" in messages["extensions[0].name"]
    assert len(messages["system.hostname"]) < 200


def test_deeply_nested_toml_is_refused() -> None:
    try:
        loads_toml("a = " + "[" * 100_000 + "]" * 100_000)
    except ConfigError as exc:
        assert "not valid TOML" in str(exc)
    else:
        raise AssertionError("accepted")
