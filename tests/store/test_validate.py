"""Validation: every problem is named by its path, and nothing but ConfigError escapes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from firmware.store import (
    MAX_SIP_ACCOUNTS,
    ConfigError,
    check,
    default_config,
    parse,
    sip_account_count,
    to_document,
)
from firmware.store.digitmap import DigitMapError, compile_digit_map, matches
from firmware.store.document import set_path

from .helpers import account, rich_config, trunk


def problems(doc: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(doc)
    return [str(i) for i in info.value.issues]


def test_defaults_are_valid_for_every_port_count() -> None:
    for fxs in range(0, 5):
        for fxo in range(0, 3):
            config = default_config(fxs, fxo)
            assert check(config) is config
            assert parse(to_document(config)) == config


def test_rich_config_is_valid_and_round_trips() -> None:
    config = rich_config()
    assert parse(to_document(config)) == config


def test_example_from_the_issue() -> None:
    doc = to_document(default_config(fxs_ports=4))
    doc = set_path(doc, "lines.fxs[2].country", "XX")
    out = problems(doc)
    assert len(out) == 1
    assert out[0].startswith("lines.fxs[2].country: unknown country 'XX'")


def test_every_error_is_collected_with_its_path() -> None:
    doc = to_document(rich_config())
    edits = {
        "lines.fxs[0].gain_rx": "loud",
        "lines.fxs[1].gain_tx": 40.0,
        "lines.fxs[3].impedance": "700R",
        "lines.fxo[1].caller_id": "morse",
        "system.hostname": "bad host",
        "sip.trunks[0].registrar": "sip:exa mple.net",
        "sip.trunks[1].expiry_s": 5,
        "sip.trunks[1].codecs": ["PCMU", "PCMU"],
        "sip.accounts[0].nat.stun_servers": ["stun.example.net:99999"],
        "network.dns": ["1.1.1.1", "not-an-ip"],
        "dialplan.routes[0].pattern": "1[2",
        "security.allowed_hosts": ["10.0.0.0/33"],
        "features.codes.dnd_on": "78",
    }
    for path, value in edits.items():
        doc = set_path(doc, path, value)
    doc["sip"]["trunks"][0]["pasword"] = "typo"
    out = problems(doc)
    paths = [line.split(": ", 1)[0] for line in out]
    assert sorted(paths) == sorted([*edits, "sip.trunks[0].pasword"])
    assert "sip.trunks[0].pasword: unknown key (did you mean 'password'?)" in out
    assert any("sip.trunks[1].expiry_s: 5 s is out of range 60..86400 s" == p for p in out)
    assert any(p.startswith("sip.trunks[0].registrar:") for p in out)


def test_required_fields_missing_from_a_trunk_are_named() -> None:
    doc = to_document(default_config())
    doc["sip"]["trunks"] = [{}]
    out = problems(doc)
    assert any(p.startswith("sip.trunks[0].name:") for p in out)
    assert any(p.startswith("sip.trunks[0].registrar: required") for p in out)


def with_accounts(trunks: int, accounts: int, disabled: int = 0) -> Any:
    base = default_config(fxs_ports=8)
    sip = dataclasses.replace(
        base.sip,
        trunks=tuple(trunk(f"t{i}", enabled=i >= disabled) for i in range(trunks)),
        accounts=tuple(account(f"a{i}", i) for i in range(accounts)),
    )
    return dataclasses.replace(base, sip=sip)


@pytest.mark.parametrize(("trunks", "accounts"), [(6, 0), (0, 6), (3, 3)])
def test_six_accounts_are_accepted(trunks: int, accounts: int) -> None:
    config = with_accounts(trunks, accounts)
    assert sip_account_count(config) == MAX_SIP_ACCOUNTS
    check(config)


@pytest.mark.parametrize(("trunks", "accounts"), [(7, 0), (1, 6), (4, 3)])
def test_seven_accounts_are_refused_clearly(trunks: int, accounts: int) -> None:
    with pytest.raises(ConfigError) as info:
        check(with_accounts(trunks, accounts))
    (issue,) = info.value.issues
    assert issue.path == "sip"
    assert "7 SIP accounts would be created" in issue.message
    assert "at most 6" in issue.message


def test_disabled_trunks_do_not_count() -> None:
    check(with_accounts(7, 0, disabled=1))


@pytest.mark.parametrize(
    ("destination", "problem"),
    [
        ("101", None),  # an extension, through route 'internal'
        ("81234", None),  # an outside number, through route 'via-trunk' to a trunk
        ("", None),  # rejects exchange calls
        ("555", "extension '555' is not defined in extensions (route 'internal')"),
        ("999", "route 'emergency' sends '999' to an exchange line: a line cannot call a line"),
        ("12345", "no route in dialplan.routes matches '12345'"),
        ("12a", "'12a' may contain only 0-9, '*' and '#'"),
    ],
)
def test_fxo_destination_is_a_number_routed_like_a_dialled_one(
    destination: str, problem: str | None
) -> None:
    doc = set_path(to_document(rich_config()), "lines.fxo[1].destination", destination)
    doc["dialplan"]["routes"].append(
        {"name": "via-trunk", "pattern": "8xxxx", "to": "trunk:provider"}
    )
    try:
        parse(doc)
        found = []
    except ConfigError as exc:
        found = [str(i) for i in exc.issues if i.path == "lines.fxo[1].destination"]
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and problem in found[0], found


def test_cross_field_rules_are_all_reported() -> None:
    doc = to_document(rich_config())
    doc = set_path(doc, "lines.fxs[0].extension", "555")
    doc = set_path(doc, "lines.fxo[0].destination", "555")
    doc = set_path(doc, "dialplan.routes[3].to", "trunk:nobody")
    doc = set_path(doc, "dialplan.routes[2].to", "fxo:7")
    doc = set_path(doc, "sip.accounts[0].fxs", 9)
    doc = set_path(doc, "sip.transports.tls.enabled", False)
    doc = set_path(doc, "network.mode", "static")
    doc = set_path(doc, "network.address", "192.168.1.10/24")
    doc = set_path(doc, "network.gateway", "192.168.2.1")
    doc = set_path(doc, "sip.trunks[1].destination", "123")
    doc = set_path(doc, "features.codes.pickup", "*7")
    doc = set_path(doc, "features.codes.voicemail", "*72")
    doc["extensions"].append({"number": "101"})
    out = problems(doc)
    expected_prefixes = [
        "lines.fxs[0].extension: extension '555' is not defined",
        "lines.fxo[0].destination: extension '555' is not defined",
        "dialplan.routes[3].to: 'trunk:nobody': no trunk named 'nobody'",
        "dialplan.routes[2].to: 'fxo:7': there is no FXO port 7",
        "sip.accounts[0].fxs: there is no FXS port 9",
        "sip.trunks[0].transport: transport 'tls' is not enabled",
        "network.gateway: 192.168.2.1 is not in 192.168.1.0/24",
        "network.dns: at least one DNS server",
        "features.codes.pickup: '*7' is a prefix of features.codes.forward_all_on",
        "features.codes.voicemail: '*72' is also features.codes.forward_all_on",
        "extensions[4].number: extension '101' is defined twice",
        "sip.trunks[1].destination: extension '123' is not defined in extensions",
    ]
    for prefix in expected_prefixes:
        assert any(p.startswith(prefix) for p in out), (prefix, out)


def test_feature_code_clashing_with_a_route_names_the_route() -> None:
    doc = to_document(default_config())
    doc["dialplan"]["routes"].append({"name": "star", "pattern": "*9x", "to": "extensions"})
    out = problems(doc)
    assert (
        "features.codes.forward_busy_on: '*90' clashes with dialplan.routes[3] 'star' pattern '*9x'"
        in out
    )


def test_tls_needs_certificate_and_key_together() -> None:
    doc = set_path(to_document(default_config()), "sip.transports.tls.enabled", True)
    parse(doc)  # neither: the SIP core makes a self-signed certificate
    doc = set_path(doc, "sip.transports.tls.cert_file", "/etc/ponte/cert.pem")
    assert problems(doc) == [
        "sip.transports.tls.key_file: required with cert_file (a certificate needs its key)",
    ]


def test_mandatory_srtp_without_tls_is_refused() -> None:
    config = rich_config()
    doc = set_path(to_document(config), "sip.trunks[1].srtp", "mandatory")
    assert problems(doc) == [
        "sip.trunks[1].srtp: mandatory SRTP needs transport 'tls' (SDES keys travel in SIP)"
    ]


@pytest.mark.parametrize(
    ("algorithms", "expected"),
    [
        (["MD5", "SHA-1"], "security.digest_algorithms: item 1: unknown digest algorithm 'SHA-1'"),
        (["MD5", "MD5"], "security.digest_algorithms: 'MD5' is listed twice"),
        ([], "security.digest_algorithms: must not be empty"),
    ],
)
def test_digest_algorithms_are_named_when_wrong(algorithms: list[str], expected: str) -> None:
    doc = set_path(to_document(default_config()), "security.digest_algorithms", algorithms)
    (problem,) = problems(doc)
    assert problem.startswith(expected), problem


def test_admin_password_must_be_a_hash() -> None:
    doc = set_path(to_document(default_config()), "system.admin.password_hash", "hunter2")
    (problem,) = problems(doc)
    assert problem.startswith("system.admin.password_hash: must be an scrypt hash")


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ([], "a configuration is a table, got an array"),
        ({"schema_version": 99}, "schema_version: document version 99 is newer"),
        ({"schema_version": "1"}, "schema_version: expected an integer"),
        ({"lines": {"fxs": {"enabled": True}}}, "lines.fxs: expected an array, got a table"),
        ({"lines": {"fxs": [1]}}, "lines.fxs[0]: expected a table, got an integer"),
        (
            {"lines": {"fxs": [{"gain_rx": float("nan")}]}},
            "lines.fxs[0].gain_rx: expected a finite number",
        ),
        ({"lines": {"fxs": [{"enabled": 1}]}}, "lines.fxs[0].enabled: expected true or false"),
        (
            {"sip": {"transports": {"udp": {"port": 5060.0}}}},
            "sip.transports.udp.port: expected an integer",
        ),
        ({"system": {"hostname": "x" * 5000}}, "system.hostname: longer than 1024 characters"),
        ({"network": {"ntp": ["a"] * 300}}, "network.ntp: more than 256 items"),
        ({"nonsense": 1}, "nonsense: unknown key"),
    ],
)
def test_shapes_and_types(doc: Any, expected: str) -> None:
    out = problems(doc)
    assert any(p.startswith(expected) for p in out), out


@pytest.mark.parametrize(
    ("digit_map", "good", "bad"),
    [
        ("[2-9]xx|0[1-9]x.T|112|911", ["200", "911", "01", "0123456"], ["100", "0", "9111"]),
        ("*xx", ["*72"], ["72", "*7"]),
        ("(x.)", ["", "1", "12345"], ["*"]),
        ("[13-5#]", ["1", "4", "#"], ["2", "6"]),
    ],
)
def test_digit_maps_match_like_rfc_3435(digit_map: str, good: list[str], bad: list[str]) -> None:
    for dialled in good:
        assert matches(digit_map, dialled), dialled
    for dialled in bad:
        assert not matches(digit_map, dialled), dialled


@pytest.mark.parametrize(
    "digit_map", ["", "1|", "[9-2]", "[]", "1[2", ".1", "1T2", "xq", "x" * 600]
)
def test_bad_digit_maps_are_refused(digit_map: str) -> None:
    with pytest.raises(DigitMapError):
        compile_digit_map(digit_map)


def test_field_errors_and_cross_field_errors_come_together() -> None:
    doc = to_document(with_accounts(5, 4))
    doc = set_path(doc, "lines.fxs[0].gain_rx", "loud")
    doc = set_path(doc, "network.mode", "static")
    doc = set_path(doc, "network.address", "not-an-address")
    doc = set_path(doc, "network.gateway", "10.0.0.1")
    doc = set_path(doc, "network.dns", ["10.0.0.53"])
    out = problems(doc)
    assert [p.split(":")[0] for p in out] == ["lines.fxs[0].gain_rx", "network.address", "sip"]
    # The bad address is reported once, not again as "required in static mode".
    assert out[1].startswith("network.address: 'not-an-address' needs a prefix length")
    assert "9 SIP accounts would be created" in out[2]


def test_the_redaction_placeholder_is_no_secret() -> None:
    doc = set_path(to_document(rich_config()), "extensions[3].sip_password", "<redacted>")
    assert problems(doc) == [
        "extensions[3].sip_password: '<redacted>' is what a redacted export writes, not a secret"
    ]
