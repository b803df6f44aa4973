"""Real SIP peers for the tests: kamailio (registrar/proxy) and sipp, started per test."""

from __future__ import annotations

import datetime
import ipaddress
import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DATA = Path(__file__).parent / "data"
KAMAILIO_VERSION_TABLE = Path("/usr/share/kamailio/dbtext/kamailio/version")
READY_TIMEOUT_S = 10.0


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP")


@dataclass(frozen=True)
class TestPki:
    ca_cert: Path
    cert: Path
    key: Path


def make_pki(directory: Path, dns_names: tuple[str, ...] = ()) -> TestPki:
    """A throw-away CA and a server certificate for 127.0.0.1 (and ``dns_names``) signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ponte test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    *(x509.DNSName(name) for name in dns_names),
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = TestPki(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return pki


class Kamailio:
    """kamailio as the provider's registrar, with digest users in a db_text table."""

    def __init__(
        self, directory: Path, users: dict[str, str], *, tls: TestPki | None = None
    ) -> None:
        self.dir = directory
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        (directory / "run").mkdir(parents=True)
        (directory / "db").mkdir()
        shutil.copy(KAMAILIO_VERSION_TABLE, directory / "db" / "version")
        rows = [
            "id(int,auto) username(string) domain(string) password(string) "
            "ha1(string,null) ha1b(string,null) "
        ]
        rows += [f"{i}:{u}:127.0.0.1:{p}::" for i, (u, p) in enumerate(users.items(), 1)]
        (directory / "db" / "subscriber").write_text("\n".join(rows) + "\n")
        cfg = (DATA / "kamailio.cfg").read_text()
        cfg = cfg.replace("@KAMDIR@", str(directory)).replace("@PORT@", str(self.port))
        cfg = cfg.replace("@TLSPORT@", str(self.tls_port))
        (directory / "kamailio.cfg").write_text(cfg)
        args = [
            "kamailio", "-f", str(directory / "kamailio.cfg"), "-DD", "-E", "-m", "64",
            "-M", "8", "-P", str(directory / "run" / "kamailio.pid"),
            "-Y", str(directory / "run"), "-w", str(directory), "-A", "WITH_AUTH",
        ]  # fmt: skip
        if tls is not None:
            shutil.copy(tls.cert, directory / "cert.pem")
            shutil.copy(tls.key, directory / "key.pem")
            (directory / "tls.cfg").write_text(
                (DATA / "tls.cfg").read_text().replace("@KAMDIR@", str(directory))
            )
            args += ["-A", "WITH_TLS"]
        self.log = (directory / "kamailio.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self.kamcmd("core.uptime") is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"kamailio did not start: {self.log_text()[-2000:]}")
            time.sleep(0.05)

    def kamcmd(self, *command: str) -> str | None:
        proc = subprocess.run(
            ["kamcmd", "-s", f"unix:{self.dir}/run/kamailio_ctl", *command],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return proc.stdout if proc.returncode == 0 else None

    def log_text(self) -> str:
        return (self.dir / "kamailio.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Dnsmasq:
    """dnsmasq as an authoritative-only DNS server with SIP SRV records (RFC 2782, RFC 3263).

    pjsua 2.15 asks DNS servers on port 53 only (firmware.sip.settings.DNS_PORT), so this
    binds port 53 on a loopback address of its own (127.x.y.z): root only.
    """

    def __init__(
        self,
        directory: Path,
        srv: dict[str, tuple[str, int]],
        hosts: dict[str, str],
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "dnsmasq.log"
        args = [
            "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
            "--bind-interfaces", "--port=53", "--pid-file=", "--user=root",
            "--log-queries", "--log-facility=-", "--conf-file=/dev/null",
        ]  # fmt: skip
        args += [f"--srv-host={name},{target},{port},0,5" for name, (target, port) in srv.items()]
        args += [f"--host-record={name},{addr}" for name, addr in hosts.items()]
        self.log = self.log_path.open("wb")
        for _ in range(20):
            self.address = f"127.{random.randrange(1, 255)}.{random.randrange(1, 255)}.53"
            self.proc = subprocess.Popen(
                [*args, f"--listen-address={self.address}"],
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )
            if self._ready():
                return
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        raise RuntimeError(f"dnsmasq did not start: {self.log_text()[-2000:]}")

    def _ready(self) -> bool:
        query = _dns_query("ready.invalid")
        deadline = time.monotonic() + READY_TIMEOUT_S
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    s.sendto(query, (self.address, 53))
                    s.recv(512)
                    return True
                except OSError:
                    time.sleep(0.05)
        return False

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def queries(self) -> list[str]:
        """``TYPE name`` of every query dnsmasq logged."""
        out = []
        for line in self.log_text().splitlines():
            _, sep, rest = line.partition(" query[")
            if sep:
                kind, _, tail = rest.partition("] ")
                out.append(f"{kind} {tail.split(' ', 1)[0]}")
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _dns_query(name: str) -> bytes:
    """A minimal RFC 1035 section 4.1 query for an A record."""
    header = random.randrange(65536).to_bytes(2, "big") + bytes([1, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    qname = b"".join(len(p).to_bytes(1, "big") + p.encode() for p in name.split(".")) + b"\0"
    return header + qname + (1).to_bytes(2, "big") + (1).to_bytes(2, "big")
