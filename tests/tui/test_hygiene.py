"""The console process loads neither pjsua2 nor the SIP layer (nor other firmware)."""

from __future__ import annotations

import subprocess
import sys


def test_console_process_imports_no_sip() -> None:
    code = (
        "import sys\n"
        "from firmware import cli\n"
        "module = cli.load('console')\n"
        "import tui.app, tui.screens.dashboard, tui.screens.config, tui.screens.wizard\n"
        "import tui.screens.history, tui.screens.diagnostics, tui.screens.backup\n"
        "import tui.screens.updates, tui.screens.login, tui.screens.sipdiag\n"
        "app = tui.app.ConsoleApp('/nonexistent.sock')\n"
        "bad = sorted(m for m in sys.modules if m == 'pjsua2' or m.startswith("
        "('pjsua2.', 'firmware.sip', 'firmware.store', 'firmware.service', 'drivers')))\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "", f"the console imported {proc.stdout.strip()}"
