"""Loading the SIP firewall into the kernel with nft, inside a network namespace of our own."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from firmware.service.sipfirewall import ALARM_ID, SipFirewallService, firewall_wanted
from firmware.sip.firewall import TABLE, Ban, FirewallSettings
from firmware.sip.nft import FirewallError, NftFirewall
from firmware.sip.policy import InboundPolicy, PolicySettings, Verdict
from firmware.store.schema import Config, SecurityConfig
from tests.sip.netns import network_namespace, nft_in
from tests.sip.test_firewall import PORT, PROBE


@pytest.fixture
def netns() -> Iterator[str]:
    with network_namespace() as name:
        yield name


def table_in(ns: str) -> str | None:
    listed = nft_in(ns, "list", "table", "inet", TABLE)
    return listed.stdout if listed.returncode == 0 else None


async def test_apply_replace_and_remove_in_a_namespace(netns: str) -> None:
    fw = NftFirewall(("ip", "netns", "exec", netns, "nft"))
    settings = FirewallSettings(ports=(PORT,), rate_per_s=20, exempt=("127.0.0.4/32",))
    await fw.apply(settings)
    await fw.apply(settings, [Ban("127.0.0.3", 600)])  # replaced, never doubled
    assert fw.applied == 2
    assert nft_in(netns, "list", "tables").stdout.count(TABLE) == 1
    out = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", PROBE, str(PORT)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    counts = json.loads(out.stdout)
    assert 30 <= counts["127.0.0.2"] <= 100, counts  # the flood of 300 from one source
    assert counts["127.0.0.3"] == 0, counts  # banned
    assert counts["127.0.0.4"] == 300, counts  # a trunk host, exempt
    assert counts["127.0.0.5"] == 10, counts  # an ordinary source, untouched
    await fw.update_bans([])
    text = table_in(netns)
    assert text is not None and "127.0.0.3" not in text
    await fw.remove()
    assert table_in(netns) is None and fw.settings is None
    await fw.remove()  # removing what is not there is fine


async def test_no_nft_and_no_permission_are_clear_errors(netns: str) -> None:
    settings = FirewallSettings(ports=(PORT,))
    with pytest.raises(FirewallError, match="cannot run /nonexistent/nft"):
        await NftFirewall(("/nonexistent/nft",)).apply(settings)
    # nft as an unprivileged user: what a box started without root would meet
    nobody = ("ip", "netns", "exec", netns, "setpriv", "--reuid=65534", "--regid=65534",
              "--clear-groups", "nft")  # fmt: skip
    with pytest.raises(FirewallError, match=r"nft failed \(exit 1\): .*Operation not permitted"):
        await NftFirewall(nobody).apply(settings)
    with pytest.raises(FirewallError, match="not loaded"):
        await NftFirewall(nobody).update_bans([])


async def test_the_service_raises_an_alarm_instead_of_crashing(netns: str) -> None:
    alarms: dict[str, str] = {}

    def raise_alarm(alarm_id: str, severity: str, text: str) -> None:
        alarms[alarm_id] = f"{severity}: {text}"

    def clear_alarm(alarm_id: str) -> None:
        alarms.pop(alarm_id, None)

    on = dataclasses.replace(Config(), security=SecurityConfig(firewall="on"))
    broken = SipFirewallService(raise_alarm, clear_alarm, NftFirewall(("/nonexistent/nft",)))
    assert not await broken.start(on, simulated=True)
    assert alarms[ALARM_ID].startswith("major: SIP firewall not loaded: ")
    assert not broken.active

    working = SipFirewallService(
        raise_alarm,
        clear_alarm,
        NftFirewall(("ip", "netns", "exec", netns, "nft")),
    )
    assert await working.start(on, simulated=True)
    assert table_in(netns) is not None and ALARM_ID not in alarms
    policy = InboundPolicy(PolicySettings(ban_threshold=1), b"s" * 32)
    assert policy.screen("192.0.2.66", 100.0) is not None  # outside the allowed networks
    assert policy.screen("192.0.2.66", 101.0).verdict is Verdict.BANNED  # type: ignore[union-attr]
    await working.update_bans(policy.active_bans(101.0))
    assert "192.0.2.66 timeout" in (table_in(netns) or "")
    # the configuration turned off: the table goes
    assert not await working.reload(Config(), simulated=True)
    assert table_in(netns) is None
    await working.stop()


def test_auto_means_on_hardware_and_off_in_simulation() -> None:
    def mode(m: str) -> Config:
        return dataclasses.replace(Config(), security=SecurityConfig(firewall=m))  # type: ignore[arg-type]

    assert Config().security.firewall == "auto"
    assert firewall_wanted(mode("auto"), simulated=False)
    assert not firewall_wanted(mode("auto"), simulated=True)
    assert firewall_wanted(mode("on"), simulated=True)
    assert not firewall_wanted(mode("off"), simulated=False)


def test_active_bans_count_down_and_expire() -> None:
    policy = InboundPolicy(PolicySettings(ban_threshold=1, ban_s=10.0), b"s" * 32)
    policy.screen("203.0.113.9", 0.0)
    assert policy.active_bans(2.5) == (Ban("203.0.113.9", 8),)
    assert policy.active_bans(10.0) == ()


# Runs inside the namespace: 40 TCP connections opened at once from each of two sources.
TCP_PROBE = """
import json, select, socket, sys, time
port = int(sys.argv[1])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(128)
counts = {}
for src in ("127.0.0.6", "127.0.0.4"):
    socks = []
    for _ in range(40):
        s = socket.socket()
        s.bind((src, 0))
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    # a dropped SYN is sent again after 1 s (RFC 6298 section 2.1): judge before that
    deadline = time.monotonic() + 0.6
    pending = list(socks)
    done = 0
    while pending and time.monotonic() < deadline:
        _, writable, _ = select.select([], pending, [], 0.05)
        for s in writable:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done += 1
            pending.remove(s)
    counts[src] = done
    for s in socks:
        s.close()
print(json.dumps(counts))
"""


async def test_new_tcp_connections_per_source_are_limited(netns: str) -> None:
    fw = NftFirewall(("ip", "netns", "exec", netns, "nft"))
    await fw.apply(FirewallSettings(ports=(PORT,), conn_per_s=5, exempt=("127.0.0.4/32",)))
    out = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", TCP_PROBE, str(PORT)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    counts = json.loads(out.stdout)
    assert 5 <= counts["127.0.0.6"] <= 20, counts  # a burst of 10 plus 5/s, not 40
    assert counts["127.0.0.4"] == 40, counts  # a trunk host opens what it needs
    await fw.remove()


async def test_bans_of_a_running_endpoint_reach_the_kernel(netns: str) -> None:
    import asyncio
    import socket

    from firmware.sip.endpoint import SipEndpoint
    from firmware.sip.settings import EndpointSettings

    # 127.0.0.1 is outside the allowed networks: its first INVITE fails and bans it
    policy = InboundPolicy(
        PolicySettings(peer_networks=("10.0.0.0/8",), ban_threshold=1), b"k" * 32
    )
    ep = SipEndpoint(EndpointSettings(), policy)
    service = SipFirewallService(
        lambda *a: None, lambda a: None, NftFirewall(("ip", "netns", "exec", netns, "nft"))
    )
    on = dataclasses.replace(Config(), security=SecurityConfig(firewall="on"))
    assert await service.start(on, simulated=True)
    await ep.start()
    try:
        assert not await service.sync_bans(ep)  # nobody banned yet: nothing to load
        port = ep.transport("udp").port
        invite = (
            f"INVITE sip:101@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-scan1\r\n"
            "From: <sip:scan@127.0.0.1>;tag=1\r\nTo: <sip:101@127.0.0.1>\r\n"
            "Call-ID: scan-1\r\nCSeq: 1 INVITE\r\nContact: <sip:scan@127.0.0.1:9>\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(invite.encode(), ("127.0.0.1", port))
        async with asyncio.timeout(20):
            while not await service.sync_bans(ep):
                await asyncio.sleep(0.1)
        assert "127.0.0.1 timeout" in (table_in(netns) or "")
        assert not await service.sync_bans(ep)  # unchanged: nft is not run again
    finally:
        await ep.stop()
        await service.stop()
    assert table_in(netns) is None
