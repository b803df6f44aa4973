from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.pbx.routing import NoRoute, Routed, Router, ToExtension, ToFxo, ToTrunk, manipulate
from firmware.store.schema import (
    DialPlanConfig,
    FxoLine,
    LinesConfig,
    Route,
    SipConfig,
    Trunk,
    default_config,
)

CONFIG = default_config(2, 1)


def test_extension_rings_its_fxs_port() -> None:
    d = Router(CONFIG).route("102")
    assert d == Routed("102", "102", "internal", ToExtension("102", "Port 2", 1))


def test_unknown_extension_says_so() -> None:
    d = Router(CONFIG).route("109")
    assert isinstance(d, NoRoute) and "no extension 109" in d.reason


def test_outside_line_strips_the_zero() -> None:
    d = Router(CONFIG).route("05551234")
    assert isinstance(d, Routed) and d.destination == ToFxo(0) and d.number == "5551234"


def test_prefix_and_trunk() -> None:
    config = dataclasses.replace(
        CONFIG,
        sip=SipConfig(trunks=(Trunk(name="isp", registrar="127.0.0.1"),)),
        dialplan=DialPlanConfig(
            routes=(Route(name="out", pattern="9x.T", to="trunk:isp", strip=1, prefix="0044"),)
        ),
    )
    d = Router(config).route("9123")
    assert d == Routed("9123", "0044123", "out", ToTrunk("isp"))
    assert manipulate("12", 5, "9") == "9"


def test_emergency_is_routable_without_a_route() -> None:
    config = dataclasses.replace(CONFIG, dialplan=DialPlanConfig(routes=()))
    d = Router(config).route("112")
    assert d == Routed("112", "112", "emergency fallback", ToFxo(0), emergency=True)
    assert isinstance(Router(config).route("102"), NoRoute)


def test_emergency_skips_a_route_that_cannot_carry_it() -> None:
    config = dataclasses.replace(
        CONFIG,
        lines=LinesConfig(fxs=CONFIG.lines.fxs, fxo=(FxoLine(enabled=False), FxoLine())),
        dialplan=DialPlanConfig(routes=(Route(name="e", pattern="112", to="fxo:0"),)),
    )
    d = Router(config).route("112")
    assert isinstance(d, Routed) and d.destination == ToFxo(1) and d.emergency


def test_emergency_with_nothing_to_carry_it_says_why() -> None:
    d = Router(default_config(2, 0)).route("911")
    assert isinstance(d, NoRoute) and "no exchange line or trunk" in d.reason


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789*#ABCD", max_size=40))
def test_any_number_gets_a_decision(number: str) -> None:
    d = Router(CONFIG).route(number)
    assert isinstance(d, Routed | NoRoute)
    if isinstance(d, NoRoute):
        assert d.reason
