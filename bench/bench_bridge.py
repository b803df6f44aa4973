"""The analogue-to-SIP bridge (issue 4 figures).

In-process (the appliance and the simulated card in one process, so one clock times both
ends):
- last digit detected to the INVITE arriving at the trunk (target 20 ms or less on a unique
  match of the digit map);
- an INVITE sent by the trunk to the ring command the appliance sends to the card (target
  20 ms or less);
- mouth-to-ear delay the box adds between a simulated handset and a SIP peer: an impulse from
  the handset, echoed by sipp's RTP echo, back at the handset; half the round trip, less the
  receiving jitter buffer's own delay (target 40 ms or less).
A real ``ponte run`` (its own process, measured through /proc):
- CPU per bridged call with 4 calls up to sipp's RTP echo (target 1 % of one core or less);
- RSS with 4 calls up;
- calls per second it answers and clears, sipp offering 4 at a time to four phones that
  answer as soon as they ring and hang up 0.2 s later.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from drivers.linecard import protocol as card
from drivers.sim.simulator import Simulator
from firmware.lines import messages as m
from firmware.service.appliance import Appliance, Options
from firmware.store import ConfigStore, default_config
from firmware.store.schema import DialPlanConfig, NatConfig, Route, Trunk
from hwtests.rig import LoopThread

ROUNDS = 10
DIGIT_TO_INVITE_TARGET_MS = 20.0
INVITE_TO_RING_TARGET_MS = 20.0
MOUTH_TO_EAR_TARGET_MS = 40.0
CPU_PER_CALL_TARGET_PCT = 1.0
CPU_WINDOW_S = 10.0
CPS_SECONDS = 30
CLK_TCK = os.sysconf("SC_CLK_TCK")
DIGIT_MAP = "112|911|999|[1-6]xx|7xxx|8xxx|0[1-9]x.T|*xx|*xxx"

UAC_RECEIVES_BYE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uac, the called side hangs up">
  <send retrans="500"><![CDATA[
INVITE sip:[field0]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[field0]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:[field0]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[field0]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
</scenario>
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def configure(
    data: Path, fxs: int, trunks: dict[str, int], destination: str = "", country: str = "US"
) -> None:
    """A fresh box plus IP-authenticated trunks (no REGISTER) to 127.0.0.1 ports.

    US: Bell 202 caller ID comes after the first ring, so the ring command is the first
    thing an incoming call sends to the card (ETSI countries send caller ID first).
    """
    store = ConfigStore.open(data, defaults=default_config(fxs, 0))
    try:
        config = store.current().config
        routes = [Route(name="internal", pattern="[1-6]xx", to="extensions")]
        made = []
        for prefix, (name, port) in zip("87", trunks.items(), strict=False):
            made.append(
                Trunk(
                    name=name,
                    registrar=f"127.0.0.1:{port}",
                    username="ponte",
                    register=False,
                    destination=destination,
                    nat=NatConfig(keepalive_s=0),
                )
            )
            routes.insert(0, Route(name=name, pattern=f"{prefix}xxx", to=f"trunk:{name}", strip=1))
        config = replace(
            config,
            system=replace(config.system, country=country),
            sip=replace(config.sip, trunks=tuple(made)),
            # Four phones on trunks at once is what the CPU and calls/s figures measure;
            # the toll-fraud default (2 external calls) would refuse the last two.
            security=replace(
                config.security,
                toll_fraud=replace(config.security.toll_fraud, max_external_calls=4),
            ),
            dialplan=DialPlanConfig(digit_map=DIGIT_MAP, routes=tuple(routes)),
        )
        store.apply(config, author="bench", summary="bridge bench")
    finally:
        store.close()


# --- a tiny trunk that answers INVITEs with 486 and notes when they arrive -----------------


class BusyTrunk:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.invites: list[float] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        seen: set[str] = set()
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            at = time.monotonic()
            text = data.decode("utf-8", "replace")
            if not text.startswith("INVITE "):
                continue
            call_id = _header(text, "Call-ID")
            if call_id not in seen:
                seen.add(call_id)
                self.invites.append(at)
            self.sock.sendto(_response(text, 486, "Busy Here").encode(), addr)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def _header(msg: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.*?)\r?$", msg, re.MULTILINE | re.IGNORECASE)
    return m.group(1) if m else ""


def _response(request: str, code: int, reason: str) -> str:
    lines = [f"SIP/2.0 {code} {reason}"]
    for name in ("Via", "From", "Call-ID", "CSeq"):
        lines += [
            f"{name}: {v}"
            for v in re.findall(rf"^{name}:\s*(.*?)\r?$", request, re.MULTILINE | re.IGNORECASE)
        ]
    lines.append(f"To: {_header(request, 'To')};tag={uuid.uuid4().hex[:8]}")
    lines += ["Content-Length: 0", "", ""]
    return "\r\n".join(lines)


def _invite(box_port: int, local_port: int, branch: str, call_id: str, user: str) -> str:
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {local_port + 2} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    return (
        f"INVITE sip:{user}@127.0.0.1:{box_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{branch};rport\r\n"
        f"From: <sip:bench@127.0.0.1:{local_port}>;tag={branch}\r\n"
        f"To: <sip:{user}@127.0.0.1:{box_port}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:bench@127.0.0.1:{local_port}>\r\nMax-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
    )


def _cancel(invite: str) -> str:
    head = invite.split("\r\n\r\n", 1)[0].replace("INVITE sip:", "CANCEL sip:", 1)
    head = head.replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL")
    head = re.sub(r"Content-Type: .*?\r\n", "", head)
    head = re.sub(r"Content-Length: \d+", "Content-Length: 0", head)
    return head + "\r\n\r\n"


# --- in-process measurements ------------------------------------------------------------------


@contextlib.contextmanager
def in_process(
    fxs: int,
    trunks: dict[str, int],
    destination: str = "101",
    on_report: Callable[[int, m.Report], None] | None = None,
) -> Iterator[tuple[LoopThread, Simulator, LoopThread, Appliance]]:
    sim_loop = LoopThread()  # the card runs on its own thread, as a card is its own computer
    sim = Simulator(fxs=fxs, fxo=0, country="US")
    sim_loop.run(sim.start())
    app_loop = LoopThread()
    with tempfile.TemporaryDirectory() as tmp:
        configure(Path(tmp), fxs, trunks, destination)
        app = Appliance(
            Options(
                Path(tmp),
                linecard=sim.url,
                audio=sim.audio_url,
                sip_host="127.0.0.1",
                sip_port=0,
            ),
            on_report=on_report,
        )
        app_loop.run(app.start())
        try:
            yield sim_loop, sim, app_loop, app
        finally:
            app_loop.run(app.stop())
            app_loop.close()
            sim_loop.run(sim.stop())
            sim_loop.close()


def wait(pred: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.002)


def digit_to_invite() -> list[float]:
    """From the box knowing the last digit (the line machine's DigitDialled) to the INVITE."""
    trunk = BusyTrunk()
    out: list[float] = []
    digits: list[float] = []

    def on_report(port: int, report: m.Report) -> None:
        if isinstance(report, m.DigitDialled):
            digits.append(time.monotonic())

    try:
        with in_process(1, {"probe": trunk.port}, on_report=on_report) as (sl, sim, _al, app):
            for _ in range(ROUNDS):
                sl.call(sim.handset(1).off_hook)
                wait(lambda: app.ports[1].state != "idle")
                digits.clear()
                before = len(trunk.invites)
                sl.call(lambda: sim.handset(1).dial("8201"))
                wait(lambda before=before: len(trunk.invites) > before)
                if len(digits) == 4:
                    out.append((trunk.invites[-1] - digits[-1]) * 1000)
                sl.call(sim.handset(1).on_hook)
                wait(lambda: app.ports[1].state == "idle")
                time.sleep(0.3)
    finally:
        trunk.close()
    return out


def invite_to_ring() -> list[float]:
    trunk = BusyTrunk()  # only its address matters: the trunk's host is allowed to call
    out: list[float] = []
    try:
        with in_process(1, {"probe": trunk.port}) as (_sl, _sim, _al, app):
            assert app.sip is not None and app.link is not None
            box_port = app.sip.endpoint.transport("udp").port
            rings: list[float] = []
            send = app.link.send

            async def timed_send(message: card.Message) -> int:
                if isinstance(message, card.Ring):
                    rings.append(time.monotonic())
                return await send(message)

            app.link.send = timed_send  # type: ignore[method-assign]
            trunk.close()  # the bench speaks from the trunk's own port now
            ua = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            ua.bind(("127.0.0.1", trunk.port))
            ua.settimeout(5)
            try:
                for i in range(ROUNDS):
                    rings.clear()
                    branch = uuid.uuid4().hex[:12]
                    invite = _invite(box_port, trunk.port, branch, f"bench-{i}-{branch}", "101")
                    sent = time.monotonic()
                    ua.sendto(invite.encode(), ("127.0.0.1", box_port))
                    wait(lambda: bool(rings))
                    out.append((rings[0] - sent) * 1000)
                    ua.sendto(_cancel(invite).encode(), ("127.0.0.1", box_port))
                    _drain_until_final(ua, invite)
                    wait(lambda: app.ports[1].state == "idle")
                    time.sleep(0.3)
            finally:
                ua.close()
    finally:
        trunk.close()
    return out


def _drain_until_final(ua: socket.socket, invite: str) -> None:
    """Read responses until the INVITE's final one (487 after our CANCEL); ACK it."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            data, addr = ua.recvfrom(65536)
        except TimeoutError:
            return
        text = data.decode("utf-8", "replace")
        code = int(text.split(" ", 2)[1]) if text.startswith("SIP/2.0 ") else 0
        if code >= 300 and "INVITE" in _header(text, "CSeq"):
            head = invite.split("\r\n\r\n", 1)[0].replace("INVITE sip:", "ACK sip:", 1)
            head = head.replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
            head = re.sub(r"^To: .*$", f"To: {_header(text, 'To')}", head, flags=re.MULTILINE)
            head = re.sub(r"Content-Type: .*?\r\n", "", head)
            head = re.sub(r"Content-Length: \d+", "Content-Length: 0", head)
            ua.sendto((head + "\r\n\r\n").encode(), addr)
            return


@contextlib.contextmanager
def sipp_echo(port: int, extra: tuple[str, ...] = ()) -> Iterator[subprocess.Popen[bytes]]:
    """sipp as a far end that answers every call and echoes its RTP."""
    proc = subprocess.Popen(
        [
            "sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1",
            "-rtp_echo", "-mp", str(free_port()), "-bg", "-nostdin", *extra,
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        yield proc
    finally:
        subprocess.run(["pkill", "-f", f"sipp -sn uas -i 127.0.0.1 -p {port} "], check=False)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


def mouth_to_ear() -> tuple[list[float], list[float]]:
    """(one-way delays, receive jitter-buffer delays), ms."""
    port = free_port()
    delays: list[float] = []
    jbuf: list[float] = []
    with sipp_echo(port), in_process(1, {"echo": port}) as (sim_loop, sim, app_loop, app):
        handset = sim.handset(1)
        sim_loop.call(handset.off_hook)
        wait(lambda: app.ports[1].state != "idle")
        sim_loop.call(lambda: handset.dial("8201"))
        assert app.sip is not None
        wait(lambda: any(leg.state == "confirmed" for leg in app.sip.legs.values()), 15)
        time.sleep(1.0)  # let the buffers settle
        rate = 8000
        burst = (np.sin(2 * np.pi * 1000 * np.arange(80) / rate) * 12000).astype(np.int16)
        for _ in range(ROUNDS):
            sent_at: list[float] = []
            talk = handset.talk_frame

            def timed_talk(talk=talk, sent_at=sent_at) -> np.ndarray:  # type: ignore[no-untyped-def]
                frame: np.ndarray = talk()
                if not sent_at and np.abs(frame).max() > 6000:
                    first = int(np.argmax(np.abs(frame) > 6000))
                    sent_at.append(sim.card.clock() + first / rate)
                return frame

            handset.talk_frame = timed_talk  # type: ignore[method-assign]
            sim_loop.call(lambda: handset.play_pcm(burst))
            wait(lambda sent_at=sent_at: bool(sent_at))
            time.sleep(0.6)
            handset.talk_frame = talk  # type: ignore[method-assign]
            start = sent_at[0]
            arrival = sim_loop.call(
                lambda start=start: handset.first_sound_after(start + 0.005, -20.0)  # type: ignore[misc]
            )
            if arrival is not None:
                delays.append((arrival - start) * 1000 / 2)
            time.sleep(0.3)
        leg = next(iter(app.sip.legs.values()))
        if leg.call_id is not None:
            q = app_loop.run(app.sip.endpoint.call_quality(leg.call_id))
            jbuf.append(q.jitter_buffer_ms)
        sim_loop.call(handset.on_hook)
    return delays, jbuf


# --- a real ponte run ---------------------------------------------------------------------


class PonteRun:
    def __init__(self, tmp: Path, fxs: int, trunks: dict[str, int], destination: str) -> None:
        data = tmp / "data"
        configure(data, fxs, trunks, destination)
        self.sip_port = free_port()
        self.control = data / "sim.sock"
        self.log = (tmp / "ponte.log").open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "firmware", "run", "--data-dir", str(data), "--fxs",
                str(fxs), "--fxo", "0", "--stderr", "--sip-port", str(self.sip_port),
            ],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.log_path = tmp / "ponte.log"
        deadline = time.monotonic() + 60
        while "SIP endpoint up" not in self.log_path.read_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(self.log_path.read_text()[-2000:])
            time.sleep(0.1)
        time.sleep(1.0)

    def sim(self, **req: object) -> object:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.control))
            s.sendall(json.dumps(req).encode() + b"\n")
            reply = json.loads(s.makefile().readline())
        return reply.get("result")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kib = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:"))
        return kib / 1024

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def cpu_and_rss() -> tuple[float, float, float]:
    """(idle CPU %, CPU % per call with 4 up, RSS MB with 4 up) of a real ponte run."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, sipp_echo(port):
        box = PonteRun(Path(tmp), 4, {"echo": port}, "")
        try:
            c0, t0 = box.cpu_s(), time.monotonic()
            time.sleep(CPU_WINDOW_S)
            idle = (box.cpu_s() - c0) / (time.monotonic() - t0) * 100
            for n in range(1, 5):
                box.sim(target="handset", number=n, action="off-hook")
                time.sleep(0.3)
                box.sim(target="handset", number=n, action="dial", digits=f"820{n}")
            deadline = time.monotonic() + 30
            while box.log_path.read_text().count("audio of port") < 4:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"4 calls did not come up:\n{box.log_path.read_text()[-3000:]}"
                    )
                time.sleep(0.2)
            time.sleep(2.0)
            c0, t0 = box.cpu_s(), time.monotonic()
            time.sleep(CPU_WINDOW_S)
            busy = (box.cpu_s() - c0) / (time.monotonic() - t0) * 100
            rss = box.rss_mb()
            for n in range(1, 5):
                box.sim(target="handset", number=n, action="on-hook")
        finally:
            box.close()
    return idle, (busy - idle) / 4, rss


def calls_per_second() -> tuple[float, int, int]:
    """(answered and cleared calls/s, answered, failed) with sipp offering 4 at a time."""
    with tempfile.TemporaryDirectory() as tmp:
        box = PonteRun(Path(tmp), 4, {"sipp": free_port()}, "")
        try:
            for n in range(1, 5):
                box.sim(
                    target="handset", number=n, action="auto-answer", seconds=0.0,
                    hangup_after=0.2,
                )  # fmt: skip
            scenario = Path(tmp) / "uac_bye.xml"
            scenario.write_text(UAC_RECEIVES_BYE)
            numbers = Path(tmp) / "numbers.csv"
            numbers.write_text("SEQUENTIAL\n" + "".join(f"10{n};\n" for n in range(1, 5)))
            stats = Path(tmp) / "stats.csv"
            started = time.monotonic()
            proc = subprocess.run(
                [
                    "sipp", f"127.0.0.1:{box.sip_port}", "-sf", str(scenario), "-inf",
                    str(numbers), "-i", "127.0.0.1", "-p", str(free_port()),
                    "-mi", "127.0.0.1", "-l", "4", "-r", "20", "-timeout", str(CPS_SECONDS),
                    "-timeout_error", "-nostdin", "-trace_stat", "-stf", str(stats),
                    "-recv_timeout", "10000",
                ],
                capture_output=True, text=True, check=False, timeout=CPS_SECONDS + 60,
            )  # fmt: skip
            elapsed = time.monotonic() - started
            ok = _sipp_count(stats, "SuccessfulCall(C)")
            failed = _sipp_count(stats, "FailedCall(C)")
            del proc
        finally:
            box.close()
    return ok / elapsed, ok, failed


def _sipp_count(stats: Path, column: str) -> int:
    if not stats.exists():
        return 0
    rows = [line.split(";") for line in stats.read_text().splitlines() if line]
    if len(rows) < 2 or column not in rows[0]:
        return 0
    return int(rows[-1][rows[0].index(column)])


def _summary(name: str, values: list[float], target: float) -> None:
    if not values:
        print(f"{name}: no measurement")
        return
    median = statistics.median(values)
    verdict = "meets" if median <= target else "MISSES"
    print(
        f"{name}: median {median:.1f} ms, max {max(values):.1f} ms over {len(values)} "
        f"(target <= {target:.0f} ms: {verdict})"
    )


def main() -> None:
    _summary("last digit -> INVITE on the wire", digit_to_invite(), DIGIT_TO_INVITE_TARGET_MS)
    _summary(
        "INVITE received -> ring command to the card", invite_to_ring(), INVITE_TO_RING_TARGET_MS
    )
    delays, jbuf = mouth_to_ear()
    jb = statistics.median(jbuf) if jbuf else 0.0
    if delays:
        print(
            f"mouth-to-ear, handset -> sipp RTP echo -> handset, halved: median "
            f"{statistics.median(delays):.1f} ms (includes the simulated card's PCM socket "
            f"both ways and pjmedia's receive jitter buffer, {jb:.0f} ms on average)"
        )
    _summary(
        "mouth-to-ear added by the box beyond the jitter buffer",
        [d - jb for d in delays],
        MOUTH_TO_EAR_TARGET_MS,
    )
    idle, per_call, rss = cpu_and_rss()
    verdict = "meets" if per_call <= CPU_PER_CALL_TARGET_PCT else "MISSES"
    print(f"CPU of ponte run: idle {idle:.1f} % of one core, per bridged call {per_call:.2f} %")
    print(f"   (4 calls up; target <= {CPU_PER_CALL_TARGET_PCT:.0f} % per call: {verdict})")
    print(f"RSS of ponte run with 4 calls up: {rss:.1f} MB")
    cps, ok, failed = calls_per_second()
    print(f"calls answered and cleared: {cps:.2f}/s ({ok} answered, {failed} failed, 4 phones)")


if __name__ == "__main__":
    main()
