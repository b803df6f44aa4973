"""A real ``ponte run --simulate`` in a temporary data directory, and its API socket.

Shared by the service's API tests and the console's pilot tests: both talk to the same
process the installer's console would, through the real client library.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from drivers.sim.control import request
from firmware.api.client import ApiClient

START_TIMEOUT_S = 60  # two Python processes importing numpy on a loaded 2-core machine
NEW_PASSWORD = "correct-horse-battery"
FACTORY_PASSWORD = "ponte-admin"


class LiveAppliance:
    def __init__(self, *extra: str) -> None:
        # sockaddr_un paths are short (108 bytes): pytest's tmp_path can be too long.
        self.root = Path(tempfile.mkdtemp(prefix="ponte-live-"))
        self.data = self.root / "data"
        self.log_path = self.root / "ponte.log"
        self._log = self.log_path.open("w")
        env = {k: v for k, v in os.environ.items() if k not in ("PONTE_API_SOCKET",)}
        env.pop("NOTIFY_SOCKET", None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "firmware",
                "run",
                "--data-dir",
                str(self.data),
                "--stderr",
                "--sip-port",  # a free port: parallel runs must not fight over 5060
                "0",
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.wait_ready()

    @property
    def socket(self) -> Path:
        return self.data / "api.sock"

    @property
    def control(self) -> Path:
        return self.data / "sim.sock"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ponte run exited:\n{self.log_text()}")
            if self.socket.exists():
                with socket.socket(socket.AF_UNIX) as s:
                    try:
                        s.connect(str(self.socket))
                        return
                    except OSError:
                        pass
            time.sleep(0.05)
        raise AssertionError(f"no API socket from ponte run:\n{self.log_text()}")

    def sim(self, **req: object) -> Any:
        response = request(self.control, req, timeout=10)
        assert response["ok"], response
        return response.get("result")

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def client(self, name: str = "test") -> ApiClient:
        return ApiClient(self.socket, client_name=name, timeout=30)

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)


async def login(api: ApiClient) -> None:
    """Log in as admin, doing the first-run password change if nobody did yet."""
    status = await api.call("auth.status")
    if status["first_run"]:
        await api.login(FACTORY_PASSWORD)
        await api.change_password(FACTORY_PASSWORD, NEW_PASSWORD)
    else:
        await api.login(NEW_PASSWORD)
