"""A saved configuration takes effect in a running box, between calls, without a restart."""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
from pathlib import Path

import tomli_w

from firmware.api.client import ApiClient
from tests.service.live import login
from tests.service.test_local_calls import wait_status
from tests.service.test_run import Appliance
from tests.sip.peers import Kamailio


async def test_a_trunk_added_over_the_api_registers_once_the_line_is_idle(tmp_path: Path) -> None:
    kam = Kamailio(tmp_path / "kam", {"ponte": "pontepw"})
    box = Appliance(tmp_path, "--fxs", "2", "--fxo", "1", "--stderr")
    try:
        box.wait_notify("READY=1")
        deadline = time.monotonic() + 20
        while not (box.data / "api.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the API starts just after READY
        # A call in progress (phone 1 talking to phone 2) holds the new configuration back.
        box.sim(target="handset", number=1, action="off-hook")
        box.wait_log("port 1: OffHook")
        box.sim(target="handset", number=1, action="dial", digits="102")
        wait_status(box, 2, "ringing", True, timeout=15)
        box.sim(target="handset", number=2, action="off-hook")
        box.wait_log("audio of ports 1 and 2 connected")
        api = ApiClient(box.data / "api.sock", client_name="test", timeout=30)
        async with api:
            await login(api)
            current = await api.call("config.get")
            # Edit the (redacted) TOML as a console would; the box keeps the secrets.
            doc = tomllib.loads(current["toml"])
            doc["sip"]["trunks"] = [
                {
                    "name": "provider",
                    "registrar": f"127.0.0.1:{kam.port}",
                    "username": "ponte",
                    "password": "pontepw",
                    "realm": "127.0.0.1",
                    "nat": {"keepalive_s": 0},
                }
            ]
            saved = await api.call(
                "config.apply", {"toml": tomli_w.dumps(doc), "base_version": current["version"]}
            )
            assert saved["changed"]
            box.wait_log("new configuration waits for the calls in progress to end")
            assert "SIP account provider: registered" not in box.log_text()
            box.sim(target="handset", number=1, action="on-hook")
            box.sim(target="handset", number=2, action="on-hook")
            box.wait_log("restarting the SIP stack for the new configuration", timeout=15)
            box.wait_log("SIP account provider: registered (200 OK)", timeout=20)
            status = await api.call("sip.status")
            assert [r["account"] for r in status["registrations"]] == ["provider"]
    finally:
        box.close()
        kam.stop()


def test_a_change_made_with_ponte_config_is_noticed_by_the_running_box(tmp_path: Path) -> None:
    box = Appliance(tmp_path, "--fxs", "2", "--fxo", "1", "--stderr")
    try:
        box.wait_notify("READY=1")
        subprocess.run(
            [
                sys.executable, "-m", "firmware", "config", "set", "--data-dir",
                str(box.data), "dialplan.inter_digit_timeout_ms", "6000",
            ],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        box.wait_log("configuration version 2 saved", timeout=15)
        box.wait_log("new configuration in service", timeout=15)
    finally:
        box.close()
