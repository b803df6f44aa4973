"""Headless layers must not drag in the SIP stack or the console toolkit (STYLE.md #9)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# module -> packages it must never load, even indirectly.
HEADLESS = {
    "firmware.cli": ("pjsua2", "textual"),
    "firmware.dsp": ("pjsua2", "textual", "serial", "alsaaudio"),
    "firmware.lines": ("pjsua2", "textual", "serial", "alsaaudio"),
    "drivers": ("pjsua2", "textual", "firmware"),
    "tui": ("pjsua2", "firmware.sip", "drivers"),
    "firmware.update": ("pjsua2", "textual", "serial", "alsaaudio", "numpy"),
    "image": ("pjsua2", "textual", "serial", "alsaaudio", "numpy"),
    # The SIP core's pure parts (settings, events, inbound policy) load without pjsua2.
    "firmware.sip.policy": ("pjsua2", "textual"),
    "firmware.sip.settings": ("pjsua2", "textual"),
}


@pytest.mark.parametrize(("module", "forbidden"), sorted(HEADLESS.items()))
def test_module_does_not_import(module: str, forbidden: tuple[str, ...]) -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({module!r})\n"
        "for info in pkgutil.walk_packages(getattr(pkg, '__path__', []), pkg.__name__ + '.'):\n"
        "    if not info.name.endswith(('.cli', '.__main__')):\n"
        "        importlib.import_module(info.name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r}"
        f" or any(m == f or m.startswith(f + '.') for f in {forbidden!r}))\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "", f"{module} imported {proc.stdout.strip()}"
