"""The boot health check: every probe must pass within a deadline, then mark-good.

Probes are small async callables returning ``None`` (pass) or a reason (fail); each is
polled until it passes or the deadline expires.  Shipped probes: the control API
socket accepts a connection (the service is up), a command exits 0 (the line card
self-test), and a SIP trunk answers an OPTIONS request over UDP with any final
response (reachable; RFC 3261 section 11).  Registration state belongs to the SIP
service and is added as a probe by whoever composes the service.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[str | None]]
DEFAULT_DEADLINE_S = 120.0
RETRY_S = 1.0
PROBE_TIMEOUT_S = 2.0
SIP_PORT = 5060  # RFC 3261 section 19.1.2
MAX_SIP_RESPONSE = 4096  # only the status line is read


@dataclass(frozen=True)
class ProbeResult:
    name: str
    ok: bool
    detail: str
    elapsed_s: float


@dataclass(frozen=True)
class Report:
    results: tuple[ProbeResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def render(self) -> str:
        return "\n".join(
            f"{'ok  ' if r.ok else 'FAIL'} {r.name}: {r.detail} ({r.elapsed_s:.1f} s)"
            for r in self.results
        )


async def _until_pass(name: str, probe: Probe, deadline: float, retry_s: float) -> ProbeResult:
    loop = asyncio.get_running_loop()
    started = loop.time()
    reason = "not run"
    while True:
        timeout = max(0.05, min(PROBE_TIMEOUT_S, deadline - loop.time()))
        try:
            failure = await asyncio.wait_for(probe(), timeout)
        except TimeoutError:
            failure = f"no answer within {timeout:.1f} s"
        except OSError as exc:
            failure = str(exc)
        if failure is None:
            return ProbeResult(name, True, "passed", loop.time() - started)
        reason = failure
        if loop.time() + retry_s >= deadline:
            return ProbeResult(name, False, reason, loop.time() - started)
        await asyncio.sleep(retry_s)


async def run(
    probes: Sequence[tuple[str, Probe]],
    deadline_s: float = DEFAULT_DEADLINE_S,
    retry_s: float = RETRY_S,
) -> Report:
    deadline = asyncio.get_running_loop().time() + deadline_s
    results = await asyncio.gather(*(_until_pass(n, p, deadline, retry_s) for n, p in probes))
    return Report(tuple(results))


# --- probes -----------------------------------------------------------------------------


def socket_probe(path: str) -> Probe:
    async def probe() -> str | None:
        _reader, writer = await asyncio.open_unix_connection(path)
        writer.close()
        await writer.wait_closed()
        return None

    return probe


def command_probe(argv: Sequence[str]) -> Probe:
    async def probe() -> str | None:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        try:
            _out, err = await proc.communicate()
        except asyncio.CancelledError:
            # The deadline hit: do not leave the child (or its transport) behind.
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode == 0:
            return None
        return f"{argv[0]} exited {proc.returncode}: {err.decode(errors='replace')[:120].strip()}"

    return probe


def sip_options(host: str, port: int, local: tuple[str, int], tag: str) -> bytes:
    """An out-of-dialog OPTIONS request (RFC 3261 section 11.1)."""
    branch = f"z9hG4bK{tag}"  # the RFC 3261 magic cookie prefix (section 8.1.1.7)
    target = f"sip:{host}:{port}"
    return (
        f"OPTIONS {target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch={branch};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"To: <{target}>\r\n"
        f"From: <sip:ponte@{local[0]}>;tag={tag}\r\n"
        f"Call-ID: {tag}@ponte\r\n"
        f"CSeq: 1 OPTIONS\r\n"
        f"Accept: application/sdp\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode("ascii")


def sip_status(data: bytes, tag: str) -> int | None:
    """The status code of a response to our request, or None if it is not one."""
    head = data[:MAX_SIP_RESPONSE].decode("ascii", errors="replace")
    first, _, rest = head.partition("\r\n")
    parts = first.split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None
    if f"{tag}@ponte" not in rest:
        return None  # not for us
    return int(parts[1])


def sip_trunk_probe(host: str, port: int = SIP_PORT) -> Probe:
    """Reachable: the trunk answers OPTIONS with a final response (any 2xx-6xx)."""

    async def probe() -> str | None:
        loop = asyncio.get_running_loop()
        answers: asyncio.Queue[bytes] = asyncio.Queue(maxsize=8)

        class Receiver(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                if not answers.full():
                    answers.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Receiver, remote_addr=(host, port))
        try:
            tag = secrets.token_hex(8)
            local = transport.get_extra_info("sockname")
            transport.sendto(sip_options(host, port, (local[0], local[1]), tag))
            while True:
                code = sip_status(await answers.get(), tag)
                if code is not None and code >= 200:
                    return None
        finally:
            transport.close()

    return probe
