"""Resumed HTTP downloads against a real local server: issue 7 test 26."""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from firmware.update import install as inst
from firmware.update.download import download
from firmware.update.errors import InstallFailed
from tests.update.helpers import Sim, payload_bytes


@dataclass
class Behaviour:
    body: bytes
    drop_first: int = 0  # requests that die after sending half of their body
    honour_range: bool = True
    requests: list[tuple[str | None, int]] = field(default_factory=list)  # (Range, status)


def make_handler(b: Behaviour) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            start = 0
            m = re.fullmatch(r"bytes=(\d+)-", rng or "")
            status = 200
            if m and b.honour_range and self.headers.get("If-Range") == '"v1"':
                start = int(m.group(1))
                status = 206
            b.requests.append((rng, status))
            body = b.body[start:]
            self.send_response(status)
            self.send_header("ETag", '"v1"')
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(b.body) - 1}/{len(b.body)}")
            self.end_headers()
            if b.drop_first > 0:
                b.drop_first -= 1
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    return Handler


Serve = Callable[[Behaviour], str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(b: Behaviour) -> str:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(b))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/bundle.pbdl"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_26_resumed_download_gives_identical_bytes(serve: Serve, tmp_path: Path) -> None:
    body = payload_bytes(3 * 1024 * 1024 + 17, 6)
    b = Behaviour(body, drop_first=2)
    url = serve(b)
    dest = tmp_path / "got.pbdl"
    attempts = download(url, str(dest), sleep=lambda _s: None)
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(body).digest()
    # First request from 0, then two resumptions with a Range from where it broke.
    assert b.requests[0] == (None, 200)
    assert [s for _r, s in b.requests[1:]] == [206, 206]
    offsets = [int(r.split("=")[1].rstrip("-")) for r, _s in b.requests[1:] if r]
    assert offsets[0] > 0 and offsets[1] > offsets[0]
    assert attempts[-1].status == 206 and attempts[-1].start == offsets[1]


def test_26_server_answering_200_instead_of_206(serve: Serve, tmp_path: Path) -> None:
    body = payload_bytes(2 * 1024 * 1024, 8)
    b = Behaviour(body, drop_first=1, honour_range=False)
    dest = tmp_path / "got.pbdl"
    attempts = download(serve(b), str(dest), sleep=lambda _s: None)
    assert dest.read_bytes() == body
    assert b.requests[1][0] is not None and b.requests[1][1] == 200
    assert attempts[-1].status == 200 and attempts[-1].start == 0


def test_26_gives_up_after_retries(serve: Serve, tmp_path: Path) -> None:
    b = Behaviour(payload_bytes(100_000), drop_first=100)
    with pytest.raises(InstallFailed, match="download"):
        download(serve(b), str(tmp_path / "x"), retries=2, sleep=lambda _s: None)
    assert len(b.requests) == 3


def test_26_install_from_url_verifies_the_whole_bundle(
    serve: Serve, sim: Sim, tmp_path: Path
) -> None:
    data = payload_bytes(1_500_000, 12)
    bundle = sim.bundle(data, compression="none").read_bytes()
    url = serve(Behaviour(bundle, drop_first=1))
    dest = tmp_path / "dl.pbdl"
    download(url, str(dest), sleep=lambda _s: None)
    inst.Installer(sim.device()).install(str(dest))
    assert sim.slot_bytes("B") == data


def test_26_cli_installs_from_url_resuming(serve: Serve, sim: Sim) -> None:
    import subprocess
    import sys

    data = payload_bytes(2_500_000, 13)
    b = Behaviour(sim.bundle(data, compression="none").read_bytes(), drop_first=1)
    url = serve(b)
    proc = subprocess.run(
        [sys.executable, "-m", "firmware", "update", "--root", str(sim.root), "install", url,
         "--progress", "lines"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "progress download" in proc.stdout and "into slot B" in proc.stdout
    assert [s for _r, s in b.requests] == [200, 206]
    assert sim.slot_bytes("B") == data


def test_26_cli_removes_the_downloaded_bundle(serve: Serve, sim: Sim) -> None:
    import subprocess
    import sys

    url = serve(Behaviour(sim.bundle().read_bytes()))
    proc = subprocess.run(
        [sys.executable, "-m", "firmware", "update", "--root", str(sim.root), "install", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not [p for p in (sim.root / "state").iterdir() if p.name.startswith("download-")]
