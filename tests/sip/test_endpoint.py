"""The endpoint thread: lifecycle, transports, limits, command errors."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from firmware.sip.endpoint import SipEndpoint, tls_library_version
from firmware.sip.errors import PjsuaError, SipConfigError, SipLimitError, SipUsageError
from firmware.sip.limits import PJSUA_MAX_ACCOUNTS
from firmware.sip.settings import (
    MAX_USER_ACCOUNTS,
    AccountSettings,
    EndpointSettings,
    TlsSettings,
    TransportSettings,
)
from tests.sip.peers import make_pki


def _acc(i: int) -> AccountSettings:
    return AccountSettings(name=f"a{i}", registrar="127.0.0.1:9", username=f"u{i}", register=False)


async def test_start_stop_restart_many_times_in_one_process() -> None:
    ep = SipEndpoint(EndpointSettings(transports=(TransportSettings("udp"),)))
    ports = set()
    for _ in range(5):
        await ep.start()
        assert ep.running
        udp = ep.transport("udp")
        ports.add(udp.port)
        # the port pjsua2 chose really is bound by it
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(OSError):
            s.bind(("127.0.0.1", udp.port))
        version = await ep.call(lambda core: str(core.ep.libVersion().full))
        assert version.startswith("2.15")
        await ep.stop()
        assert not ep.running
    await ep.restart()
    await ep.restart()
    await ep.stop()
    assert len(ports) >= 2
    # no pjsua2 thread left behind
    assert not [t for t in threading.enumerate() if t.name == "pjsua2"]


async def test_commands_run_on_the_endpoint_thread_and_errors_come_back() -> None:
    ep = SipEndpoint(EndpointSettings())
    await ep.start()
    try:
        name = await ep.call(lambda core: threading.current_thread().name)
        assert name == "pjsua2"
        with pytest.raises(ZeroDivisionError):
            await ep.call(lambda core: 1 // 0)
        with pytest.raises(SipUsageError, match="no call 3"):
            await ep.hangup(3)
        # pjsua2's own refusal becomes a PjsuaError naming the operation
        with pytest.raises(PjsuaError, match="command failed"):
            await ep.call(lambda core: core.ep.codecSetPriority("nosuch/8000/1", 1))
        # a second start on a running endpoint is our mistake, said clearly
        with pytest.raises(SipUsageError, match="running already"):
            await ep.start()
    finally:
        await ep.stop()
    with pytest.raises(SipUsageError, match="not running"):
        await ep.call(lambda core: None)


async def test_udp_tcp_tls_transports_and_tls_library(tmp_path) -> None:
    pki = make_pki(tmp_path)
    tls = TlsSettings(str(pki.cert), str(pki.key), str(pki.ca_cert), require_client_cert=True)
    settings = EndpointSettings(
        transports=(
            TransportSettings("udp"),
            TransportSettings("tcp"),
            TransportSettings("tls", tls=tls),
        )
    )
    ep = SipEndpoint(settings)
    await ep.start()
    try:
        kinds = {t.kind: t for t in ep.transports}
        assert set(kinds) == {"udp", "tcp", "tls"}
        for t in kinds.values():
            assert t.host == "127.0.0.1" and t.port > 0
        # the TLS listener accepts a TCP connection on the port it reports
        with socket.create_connection(("127.0.0.1", kinds["tls"].port), timeout=2):
            pass
    finally:
        await ep.stop()
    assert tls_library_version().startswith("OpenSSL 1.0.2")


async def test_account_limit_is_refused_before_pjsua2_aborts() -> None:
    with pytest.raises(SipLimitError, match=f"holds {PJSUA_MAX_ACCOUNTS}"):
        EndpointSettings(accounts=tuple(_acc(i) for i in range(MAX_USER_ACCOUNTS + 1)))
    ep = SipEndpoint(EndpointSettings(accounts=tuple(_acc(i) for i in range(MAX_USER_ACCOUNTS))))
    await ep.start()
    try:
        count = await ep.call(lambda core: len(core.accounts) + 2)  # + local and sink
        assert count == PJSUA_MAX_ACCOUNTS
        # the one that would be pjsua's 9th: refused in Python, the process lives on
        with pytest.raises(SipLimitError, match="aborts the process"):
            await ep.add_account(_acc(99))
        assert ep.running
    finally:
        await ep.stop()


def test_settings_refuse_what_pjsua2_cannot_do() -> None:
    with pytest.raises(SipLimitError, match=r"1\.\.4"):
        EndpointSettings(max_calls=5)
    with pytest.raises(SipConfigError, match="no tls transport"):
        EndpointSettings(
            accounts=(AccountSettings(name="t", registrar="h", username="u", transport="tls"),)
        )
    with pytest.raises(SipConfigError, match="mandatory SRTP needs the TLS"):
        AccountSettings(name="t", registrar="h", username="u", srtp="mandatory")
    with pytest.raises(SipConfigError, match="not an IP address"):
        TransportSettings("udp", host="localhost")
    with pytest.raises(SipConfigError, match="TLS settings"):
        TransportSettings("tls")


async def test_a_port_in_use_is_a_clear_error_and_the_endpoint_can_start_again() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        ep = SipEndpoint(EndpointSettings(transports=(TransportSettings("udp", port=port),)))
        with pytest.raises(PjsuaError, match=f"udp transport on 127.0.0.1:{port}"):
            await ep.start()
    assert not ep.running
    await ep.start()
    await ep.stop()


async def test_event_overflow_is_counted_not_queued_without_bound() -> None:
    ep = SipEndpoint(EndpointSettings(events_cap=3))
    await ep.start()
    try:
        from firmware.sip.events import InviteRefused

        def flood(core) -> None:
            for _ in range(10):
                core.emit(InviteRefused("192.0.2.1", 403, "x", True))

        await ep.call(flood)
        got = [await asyncio.wait_for(ep.next_event(), 2) for _ in range(3)]
        assert all(isinstance(e, InviteRefused) for e in got)
        assert ep.events_dropped == 7
    finally:
        await ep.stop()


async def test_fifth_outgoing_call_is_refused_in_python(tmp_path) -> None:
    import subprocess

    from firmware.sip.events import CallStateChanged
    from tests.sip.helpers import wait_event
    from tests.sip.peers import free_port

    port = free_port()
    uas = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_port()),
         "-trace_err", "-error_file", str(tmp_path / "uas.err")],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    ep = SipEndpoint(EndpointSettings())
    await ep.start()
    try:
        ids = [await ep.make_call("local", f"sip:uas@127.0.0.1:{port}") for _ in range(4)]
        assert sorted(ids) == [0, 1, 2, 3]
        for _ in ids:
            await wait_event(ep, CallStateChanged, lambda e: e.state == "confirmed")
        with pytest.raises(SipLimitError, match="at most 4"):
            await ep.make_call("local", f"sip:uas@127.0.0.1:{port}")
        with pytest.raises(SipUsageError, match="no account"):
            await ep.make_call("nobody", f"sip:uas@127.0.0.1:{port}")
        await ep.hangup(ids[0])
        await wait_event(ep, CallStateChanged, lambda e: e.state == "disconnected")
        # the slot comes back once pjsua has finished with the call (a few polls later)
        for _ in range(50):
            try:
                await ep.make_call("local", f"sip:uas@127.0.0.1:{port}")
                break
            except PjsuaError as exc:
                assert "PJ_ETOOMANY" in str(exc)
                await asyncio.sleep(0.05)
        else:
            pytest.fail("the hung-up call's slot never came back")
    finally:
        await ep.stop()  # hangs up the rest; must not abort at exit
        uas.terminate()
        uas.wait(10)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
async def test_ipv6_transports_next_to_ipv4(tmp_path) -> None:
    from tests.sip.peers import make_pki

    pki = make_pki(tmp_path)
    tls = TlsSettings(str(pki.cert), str(pki.key), str(pki.ca_cert))
    ep = SipEndpoint(
        EndpointSettings(
            transports=(
                TransportSettings("udp"),
                TransportSettings("udp", host="::1"),
                TransportSettings("tcp", host="::1"),
                TransportSettings("tls", host="::1", tls=tls),
            )
        )
    )
    await ep.start()
    try:
        v6 = [t for t in ep.transports if t.host == "::1"]
        assert sorted(t.kind for t in v6) == ["tcp", "tls", "udp"]
        for t in v6:
            if t.kind != "udp":
                with socket.create_connection(("::1", t.port), timeout=2):
                    pass
    finally:
        await ep.stop()
