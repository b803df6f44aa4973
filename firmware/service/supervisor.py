"""Talking to systemd: readiness, status, watchdog keep-alives (sd_notify(3)).

python-systemd's ``daemon.notify`` does the socket work; this module decides *when*:
READY=1 once the appliance is up, STATUS= whenever the summary changes, WATCHDOG=1 at
half the interval systemd asked for (WATCHDOG_USEC, see sd_watchdog_enabled(3)), and
STOPPING=1 on the way down.  Without NOTIFY_SOCKET every call is a cheap no-op, so the
same code runs under systemd, in a terminal and in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Final

from systemd import daemon

log = logging.getLogger(__name__)

# sd_watchdog_enabled(3): "send keep-alive notifications ... at half the interval".
WATCHDOG_FRACTION: Final = 0.5


def watchdog_interval_s(environ: dict[str, str] | None = None) -> float | None:
    """The keep-alive period systemd asked for, or None when there is no watchdog.

    Honours WATCHDOG_PID like sd_watchdog_enabled(3): a watchdog meant for another
    process (a parent shell, say) is not ours to feed.
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring malformed WATCHDOG_USEC=%r", usec)
        return None
    if value <= 0:
        return None
    return value / 1_000_000 * WATCHDOG_FRACTION


class Supervisor:
    """sd_notify for one service run, with a watchdog task whose health probe we choose.

    ``healthy`` is called before each keep-alive: if the event loop is stuck the task
    never runs, and if the probe says no we stay silent, so systemd restarts us either way.
    """

    def __init__(
        self,
        healthy: Callable[[], bool] = lambda: True,
        notify: Callable[[str], bool] = daemon.notify,
    ) -> None:
        self._healthy = healthy
        self._notify = notify
        self._watchdog: asyncio.Task[None] | None = None
        self._status = ""

    def ready(self, status: str) -> None:
        self._status = status
        self._notify(f"READY=1\nSTATUS={status}")
        log.info("ready: %s", status)

    def status(self, status: str) -> None:
        if status != self._status:
            self._status = status
            self._notify(f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> None:
        self._notify(f"STOPPING=1\nSTATUS={status}")

    def start_watchdog(self) -> None:
        interval = watchdog_interval_s()
        if interval is None or self._watchdog is not None:
            return
        log.info("watchdog keep-alive every %.2f s", interval)
        self._watchdog = asyncio.get_running_loop().create_task(
            self._keepalive(interval), name="systemd-watchdog"
        )

    async def stop(self) -> None:
        task, self._watchdog = self._watchdog, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keepalive(self, interval: float) -> None:
        while True:
            if self._healthy():
                self._notify("WATCHDOG=1")
            else:
                log.error("health probe failed: withholding the watchdog keep-alive")
            await asyncio.sleep(interval)
