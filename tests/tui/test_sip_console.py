"""The console's SIP parts against a real office: kamailio, a real ``ponte run``, baresip.

A call from handset 1 to the softphone shows on the dashboard with its quality and the
legs in use; the line-levels screen reads the handset's tone; the SIP messages screen
filters and shows whole messages; the trunks screen's "test registration" asks the real
registrar, and says when the trunk being edited is not what is in force.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from firmware.api.client import ApiClient
from tests.service.live import NEW_PASSWORD, login
from tests.service.sipsite import Site
from tests.tui.helpers import screen_name, text_of, until
from tui.app import ConsoleApp


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.close()


def _socket(site: Site) -> Path:
    assert site.box is not None
    return site.box.data / "api.sock"


async def _log_in(pilot: object, app: ConsoleApp, ports: int) -> None:
    from textual.pilot import Pilot

    assert isinstance(pilot, Pilot)
    await until(pilot, lambda: screen_name(app) == "LoginScreen", timeout=60)
    await pilot.press(*NEW_PASSWORD, "enter")
    await until(pilot, lambda: screen_name(app) == "DashboardScreen", timeout=30)
    await until(pilot, lambda: len(app.state.ports) == ports)


def _dbm0(text: str, label: str) -> float | None:
    """The level printed after ``label``'s meter ("[==--] -13.0 dBm0")."""
    found = re.search(re.escape(label) + r"\n\[[=|-]+\]\s+(-?\d+\.\d) dBm0", text)
    return float(found.group(1)) if found else None


async def test_calls_levels_messages_and_test_registration(site: Site) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    box.wait_log("control API listening", timeout=30)  # it opens after the registration
    async with ApiClient(_socket(site), client_name="setup", timeout=30) as api:
        await login(api)
    app = ConsoleApp(str(_socket(site)), snapshot=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await _log_in(pilot, app, ports=3)
        # The trunk's registration and the idle SIP stack.
        await until(pilot, lambda: "provider" in text_of(app, "#trunks"), show="#trunks")
        await until(
            pilot, lambda: "registered, expires in" in text_of(app, "#trunks"), show="#trunks"
        )
        assert "NOT" not in text_of(app, "#trunks")
        await until(pilot, lambda: "SIP legs 0/4" in text_of(app, "#calls"), show="#calls")

        # A call from port 1 to the softphone: who, how long, codec and quality, legs 1/4.
        box.sim(target="handset", number=1, action="off-hook")
        box.wait_log("port 1: OffHook")
        box.sim(target="handset", number=1, action="dial", digits="8201")
        phone.wait_event("CALL_INCOMING", timeout=20)
        phone.command("accept")
        box.wait_log("audio of port 1 and SIP leg", timeout=15)
        await until(pilot, lambda: "SIP legs 1/4" in text_of(app, "#calls"), show="#calls")
        await until(pilot, lambda: "MOS" in text_of(app, "#calls"), timeout=30, show="#calls")
        calls = text_of(app, "#calls")
        assert "port 1 -> " in calls and "201" in calls and "via provider" in calls, calls
        assert re.search(r"(PCMA|PCMU|G722) jitter \d+ ms loss \d+\.\d% MOS \d\.\d", calls), calls
        assert re.search(r"confirmed \d+:\d\d", calls), calls

        # Line levels: the handset plays 1 kHz at -13 dBm0 into the call.
        await pilot.press("a")
        await until(pilot, lambda: screen_name(app) == "LevelsScreen")
        box.sim(target="handset", number=1, action="tone", freqs=[1000], level=-13)

        def heard() -> float | None:
            return _dbm0(text_of(app, "#levels-meters"), "hears from the phone")

        await until(
            pilot,
            lambda: (level := heard()) is not None and abs(level + 13) <= 1,
            timeout=30,
            show="#levels-meters",
        )
        assert "Port 1" in text_of(app, "#levels-port")
        box.sim(target="handset", number=1, action="stop-audio")
        await pilot.press("right")  # port 2 is idle and quiet
        await until(pilot, lambda: "Port 2" in text_of(app, "#levels-port"))
        await until(
            pilot,
            lambda: "hears from the phone\n[" in text_of(app, "#levels-meters") and heard() is None,
            show="#levels-meters",
        )
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(app) == "DashboardScreen")

        # The last SIP messages: filter on INVITE, the whole message on selection.
        await pilot.press("m")
        await until(pilot, lambda: screen_name(app) == "SipMessagesScreen")
        await until(pilot, lambda: "message(s)" in text_of(app, "#sip-status"))
        await pilot.press(*"INVITE")
        await until(pilot, lambda: "containing 'INVITE'" in text_of(app, "#sip-status"))
        table = app.screen.query_one("#sip-messages", DataTable)
        assert table.row_count >= 1
        firsts = [str(table.get_row_at(i)[3]) for i in range(table.row_count)]
        assert any(f.startswith("INVITE sip:") for f in firsts), firsts
        await pilot.press("enter")  # from the filter to the list
        assert app.focused is table
        row = next(i for i, f in enumerate(firsts) if f.startswith("INVITE sip:"))
        table.move_cursor(row=row)
        await until(pilot, lambda: "\nINVITE sip:" in text_of(app, "#sip-message"))
        message = text_of(app, "#sip-message")
        assert "Call-ID:" in message and "CSeq:" in message, message
        assert message.startswith("sent to ") and " over UDP" in message.lower().replace(
            "udp", "UDP"
        )
        await pilot.press("escape")

        box.sim(target="handset", number=1, action="on-hook")
        phone.wait_event("CALL_CLOSED", timeout=15)
        await until(pilot, lambda: "SIP legs 0/4" in text_of(app, "#calls"), show="#calls")

        # Test registration on the trunks screen, against the provider.
        await pilot.press("c")
        await until(pilot, lambda: screen_name(app) == "ConfigScreen")
        await until(pilot, lambda: "Version" in text_of(app, "#config-status"))
        await pilot.press("down")
        await until(pilot, lambda: app.screen.query("#f-sip_trunks_0__registrar"))
        await pilot.press("ctrl+o")
        await until(
            pilot,
            lambda: "provider: registered (200" in text_of(app, "#config-status"),
            timeout=30,
            show="#config-status",
        )
        # An edit not saved yet: the test is of the configuration in force, and says so.
        field = app.screen.query_one("#f-sip_trunks_0__username", Input)
        field.focus()
        field.value = "someone-else"
        await until(pilot, lambda: "Unsaved" in text_of(app, "#config-status"))
        await pilot.press("ctrl+o")
        await until(
            pilot,
            lambda: (
                "registered (200" in text_of(app, "#config-status")
                and "configuration in force" in text_of(app, "#config-status")
            ),
            timeout=30,
            show="#config-status",
        )
        # A trunk that exists only in this form cannot be tested yet.
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.query("#f-sip_trunks_1__name"))
        app.screen.query_one("#f-sip_trunks_1__name", Input).focus()
        await pilot.press("ctrl+o")
        await until(
            pilot,
            lambda: "'trunk' is not saved yet" in text_of(app, "#config-status"),
            show="#config-status",
        )
