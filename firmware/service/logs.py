"""Logging set-up: the journal when systemd gave us one, stderr otherwise."""

from __future__ import annotations

import logging
import os
import sys
from typing import Final

JOURNAL_SOCKET: Final = "/run/systemd/journal/socket"
STDERR_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def stderr_is_journal() -> bool:
    """True when stderr is connected to journald (systemd.exec(5), JOURNAL_STREAM)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = stream.partition(":")
    if not dev or not ino:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return f"{st.st_dev}:{st.st_ino}" == stream


def configure(level: str = "INFO", *, force_stderr: bool = False) -> str:
    """Install one root handler; return where logs go (``"journal"`` or ``"stderr"``)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.setLevel(level.upper())
    target = "stderr"
    handler: logging.Handler
    if not force_stderr and stderr_is_journal() and os.path.exists(JOURNAL_SOCKET):
        from systemd.journal import JournalHandler

        handler = JournalHandler(SYSLOG_IDENTIFIER="ponte")
        target = "journal"
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(STDERR_FORMAT))
    root.addHandler(handler)
    return target
