"""baresip as the far-end phone, driven over its ctrl_tcp socket (netstring JSON)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

from tests.sip.peers import TestPki, free_port

CONFIG = """net_interface\t\t127.0.0.1
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
sip_certificate\t\t{cert}
sip_cafile\t\t{ca}
call_local_timeout\t120
call_max_calls\t\t4
audio_player\t\taufile,{dir}/play.wav
audio_source\t\tausine,440
audio_alert\t\taufile,{dir}/alert.wav
ausrc_srate\t\t48000
ausrc_channels\t\t2
audio_level\t\tno
rtp_ports\t\t{rtp}-{rtp_end}
rtcp_mux\t\tno
jitter_buffer_delay\t5-10
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\tausine.so
module\t\t\taufile.so
module\t\t\tsrtp.so
module_tmp\t\tuuid.so
module_tmp\t\taccount.so
module_app\t\tcontact.so
module_app\t\tmenu.so
module_app\t\tctrl_tcp.so
ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}
"""


class Baresip:
    def __init__(self, directory: Path, account: str, pki: TestPki, extra: str = "") -> None:
        directory.mkdir(parents=True)
        self.dir = directory
        self.ctrl_port = free_port()
        self.sip_port = free_port()
        rtp = free_port()
        both = directory / "cert-and-key.pem"
        both.write_bytes(pki.cert.read_bytes() + pki.key.read_bytes())
        (directory / "config").write_text(
            CONFIG.format(
                sip_port=self.sip_port, cert=both, ca=pki.ca_cert, dir=directory,
                rtp=rtp, rtp_end=rtp + 20, ctrl_port=self.ctrl_port,
            )
            + extra
        )  # fmt: skip
        (directory / "accounts").write_text(account + "\n")
        (directory / "contacts").write_text("")
        self.log = (directory / "baresip.log").open("wb")
        self.proc = subprocess.Popen(
            ["baresip", "-f", str(directory)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                break
            except OSError as exc:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"baresip did not start: {self.log_text()[-2000:]}") from exc
                time.sleep(0.05)
        self._buf = b""

    def command(self, command: str, params: str = "") -> None:
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")

    def wait_event(self, kind: str, timeout: float = 15.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b":" in self._buf:
                head, rest = self._buf.split(b":", 1)
                size = int(head)
                if len(rest) < size + 1:
                    break
                msg = json.loads(rest[:size])
                self._buf = rest[size + 1 :]
                if msg.get("event") and msg.get("type") == kind:
                    return dict(msg)
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                break
            self._buf += data
        raise TimeoutError(f"no baresip {kind} event; log: {self.log_text()[-1500:]}")

    def log_text(self) -> str:
        return (self.dir / "baresip.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
