"""Inbound security against sipp: no unauthenticated INVITE gets through, scanners are banned."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from firmware.sip.endpoint import SipEndpoint
from firmware.sip.events import IncomingCall, InviteRefused, SipEvent
from firmware.sip.policy import InboundPolicy, PolicySettings, TrunkHosts
from firmware.sip.settings import EndpointSettings
from tests.sip.peers import DATA, free_port

SECRET = b"test-secret-0123456789abcdef"


def make_endpoint(**policy: object) -> SipEndpoint:
    base: dict[str, object] = {
        "realm": "ponte.test",
        "users": (("alice", "alicepw"),),
        "peer_networks": ("127.0.0.0/8",),
        "ban_threshold": 3,
        "algorithms": ("MD5",),  # sipp 3.6 computes MD5 only and answers the first challenge
    }
    base.update(policy)
    settings = PolicySettings(**base)  # type: ignore[arg-type]
    # sipp sends its INVITEs faster than one source's share of the flood guard allows; this
    # file tests the policy behind the guard, so give 127.0.0.1 a bigger share.
    endpoint = EndpointSettings(per_source_sessions_per_s=25.0, per_source_burst=25.0)
    return SipEndpoint(endpoint, InboundPolicy(settings, SECRET))


async def sipp(
    ep: SipEndpoint, scenario: str, tmp: Path, *args: str, calls: int = 1
) -> tuple[int, str]:
    target = f"127.0.0.1:{ep.transport('udp').port}"
    # sipp puts sip:host:port in the digest uri unless told; RFC 3261 section 22.4 and our
    # policy want the Request-URI.
    auth_uri = f"101@{target}"  # sipp adds the "sip:"
    proc = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(DATA / scenario), "-i", "127.0.0.1", "-p", str(free_port()),
        "-mp", str(free_port()), "-s", "101", "-m", str(calls), "-r", "20",
        "-timeout", "15", "-timeout_error", "-trace_err", "-error_file", str(tmp / "err.log"),
        "-auth_uri", auth_uri, *args, target,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=tmp,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")[-3000:]


async def answering(ep: SipEndpoint, seen: list[SipEvent]) -> None:
    """Play the upper layer: answer every admitted call with 200."""
    while True:
        event = await ep.next_event()
        seen.append(event)
        if isinstance(event, IncomingCall):
            await ep.answer(event.call_id, 200)


async def run_with_answerer(ep: SipEndpoint, coro):
    seen: list[SipEvent] = []
    task = asyncio.create_task(answering(ep, seen))
    try:
        result = await coro
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return result, seen


async def test_unauthenticated_refused_authenticated_accepted(tmp_path: Path) -> None:
    ep = make_endpoint()
    await ep.start()
    try:
        (rc, out), seen = await run_with_answerer(ep, sipp(ep, "uac_plain_invite.xml", tmp_path))
        assert rc == 0, out
        assert not any(isinstance(e, IncomingCall) for e in seen)
        assert [e.code for e in seen if isinstance(e, InviteRefused)] == [401]
        (rc, out), seen = await run_with_answerer(
            ep, sipp(ep, "uac_auth_invite.xml", tmp_path, "-au", "alice", "-ap", "alicepw")
        )
        assert rc == 0, out
        calls = [e for e in seen if isinstance(e, IncomingCall)]
        assert len(calls) == 1 and calls[0].peer == "alice" and calls[0].peer_kind == "user"
        counters = await ep.call(lambda core: dict(core.policy.counters))
        assert counters["failures"] == 0 and counters["admit-user"] == 1
    finally:
        await ep.stop()


async def test_password_scanner_is_banned(tmp_path: Path) -> None:
    ep = make_endpoint()
    await ep.start()
    try:
        (rc, _out), seen = await run_with_answerer(
            ep,
            sipp(ep, "uac_auth_invite.xml", tmp_path, "-au", "alice", "-ap", "guess", calls=6),
        )
        assert rc != 0  # no call of the scanner succeeded
        refused = [e for e in seen if isinstance(e, InviteRefused)]
        assert not any(isinstance(e, IncomingCall) for e in seen)
        assert sum(e.counted_as_failure for e in refused) >= 3
        assert any("banned" in e.reason for e in refused)
        # banned now: even the right password from that source is refused
        (rc, _out), seen = await run_with_answerer(
            ep, sipp(ep, "uac_auth_invite.xml", tmp_path, "-au", "alice", "-ap", "alicepw")
        )
        assert rc != 0
        assert not any(isinstance(e, IncomingCall) for e in seen)
        counters = await ep.call(lambda core: dict(core.policy.counters))
        assert counters["bans"] == 1
    finally:
        await ep.stop()


async def test_trunk_host_is_admitted_without_challenge(tmp_path: Path) -> None:
    ep = make_endpoint(trunks=(TrunkHosts("provider", ("127.0.0.1/32",)),))
    await ep.start()
    try:
        (_rc, _out), seen = await run_with_answerer(ep, sipp(ep, "uac_auth_invite.xml", tmp_path))
        # the scenario expects a 401 first; a trunk host gets the call at once instead
        calls = [e for e in seen if isinstance(e, IncomingCall)]
        assert len(calls) == 1 and calls[0].peer == "provider" and calls[0].peer_kind == "trunk"
        assert not any(isinstance(e, InviteRefused) for e in seen)
    finally:
        await ep.stop()
