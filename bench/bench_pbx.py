"""Dial plan figures: last digit to route decision (sans-IO call control, this machine)."""

from __future__ import annotations

import dataclasses
import statistics
import time

from firmware.lines import messages as m
from firmware.pbx.calls import CallControl, PlaceSipCall, PortInfo, SipIncoming
from firmware.pbx.digits import DigitMap
from firmware.store.schema import Config, DialPlanConfig, Route, SipConfig, Trunk, default_config

ROUNDS = 2000
TARGET_MS = 20.0  # issue 4: last digit to INVITE on the wire, 20 ms or less on a unique match


def _line(name: str, value: float, unit: str, target: str = "") -> None:
    print(f"   {name:<44} {value:>12.3f} {unit} {target}")


def main() -> None:
    config = default_config(4, 2)
    ports = [PortInfo(i + 1, "fxs", i) for i in range(4)] + [
        PortInfo(5 + i, "fxo", i, 500) for i in range(2)
    ]
    dtmf = m.DialMethod.DTMF
    samples: list[float] = []
    for r in range(ROUNDS):
        cc = CallControl(config, ports)
        now = r * 100_000
        cc.handle(1, m.OffHook(), now)
        cc.handle(1, m.DigitDialled("1", dtmf), now + 100)
        cc.handle(1, m.DigitDialled("0", dtmf), now + 200)
        t0 = time.perf_counter()
        commands = cc.handle(1, m.DigitDialled("2", dtmf), now + 300)
        samples.append(time.perf_counter() - t0)
        assert commands, "102 must ring port 2"
    samples.sort()
    _line("last digit -> ring/ringback commands, median", statistics.median(samples) * 1e3, "ms")
    _line(
        "last digit -> commands, 99th percentile",
        samples[int(0.99 * len(samples))] * 1e3,
        "ms",
        f"(target {TARGET_MS:.0f} ms incl. SIP)",
    )
    t0 = time.perf_counter()
    for _ in range(ROUNDS):
        DigitMap.from_config(config.dialplan)
    _line("digit map compile", (time.perf_counter() - t0) / ROUNDS * 1e3, "ms")
    _sip(config, ports)


def _sip(config: Config, ports: list[PortInfo]) -> None:
    """The call-control share of 'last digit -> INVITE' and 'INVITE -> ring command'
    (the SIP endpoint's own share is in bench_sip)."""
    config = dataclasses.replace(
        config,
        sip=SipConfig(trunks=(Trunk(name="prov", registrar="127.0.0.1", username="box"),)),
        dialplan=DialPlanConfig(
            digit_map="[1-9]xx|0[1-9]xxxxxx",
            routes=(
                Route(name="internal", pattern="[1-9]xx", to="extensions"),
                Route(name="outside", pattern="0[1-9]xxxxxx", to="trunk:prov", strip=1),
            ),
        ),
    )
    dtmf = m.DialMethod.DTMF
    out: list[float] = []
    ring: list[float] = []
    for r in range(ROUNDS):
        cc = CallControl(config, ports)
        now = r * 100_000
        cc.handle(1, m.OffHook(), now)
        for i, digit in enumerate("0555123"):
            cc.handle(1, m.DigitDialled(digit, dtmf), now + 100 * (i + 1))
        t0 = time.perf_counter()
        commands = cc.handle(1, m.DigitDialled("4", dtmf), now + 1000)  # a unique match
        out.append(time.perf_counter() - t0)
        assert any(isinstance(c, PlaceSipCall) for c in commands), commands
        leg = cc.new_leg()
        t0 = time.perf_counter()
        commands = cc.handle_sip(SipIncoming(leg, "prov", "trunk", "prov", "102"), now + 2000)
        ring.append(time.perf_counter() - t0)
        assert commands, "102 must ring port 2"
    for samples, what in ((out, "last digit -> PlaceSipCall"), (ring, "SipIncoming -> Alert")):
        samples.sort()
        _line(f"{what}, median", statistics.median(samples) * 1e3, "ms")
        _line(
            f"{what}, 99th percentile",
            samples[int(0.99 * len(samples))] * 1e3,
            "ms",
            f"(target {TARGET_MS:.0f} ms incl. SIP)",
        )


if __name__ == "__main__":
    main()
