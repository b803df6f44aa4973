"""The API process must not load the SIP stack or the console toolkit (STYLE.md #9)."""

from __future__ import annotations

import subprocess
import sys


def test_api_package_imports_neither_pjsua2_nor_textual() -> None:
    code = (
        "import importlib, pkgutil, sys, firmware.api\n"
        "for m in pkgutil.iter_modules(firmware.api.__path__):\n"
        "    importlib.import_module('firmware.api.' + m.name)\n"
        "from firmware.api.auth import MemoryCredentialStore\n"
        "from firmware.api.server import ApiServer\n"
        "ApiServer('/nonexistent/x.sock', credentials=MemoryCredentialStore())"
        ".sysinfo.snapshot()\n"
        "print(','.join(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('pjsua2', 'textual', 'drivers', 'tui'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out == ""
