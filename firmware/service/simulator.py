"""``ponte run --simulate``: the line-card simulator as a child process.

The simulator runs in its own process, as a real card is its own computer: the appliance
process is then exactly what runs on hardware, and ``ponte sim ...`` commands from another
terminal reach the simulator's control socket as documented in docs/simulator.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

START_TIMEOUT_S: Final = 20.0  # a cold start imports numpy; a loaded CI machine is slow
STOP_TIMEOUT_S: Final = 5.0
PR_SET_PDEATHSIG: Final = 1  # prctl(2): signal the child when its parent dies


def _die_with_parent() -> None:
    # A simulator left behind by a killed appliance would hold its ports and control socket.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class SimulatorError(Exception):
    """The simulator process did not start."""


@dataclass(frozen=True, slots=True)
class SimulatorEndpoints:
    linecard: str
    audio: str
    control: str


class SimulatorProcess:
    def __init__(self, *, fxs: int, fxo: int, country: str, control: Path) -> None:
        self.args = [
            sys.executable,
            "-m",
            "firmware",
            "sim",
            "start",
            "--fxs",
            str(fxs),
            "--fxo",
            str(fxo),
            "--country",
            country,  # every country profile: ponte sim start runs firmware.dsp's kit
            "--listen",
            "socket://127.0.0.1:0",
            "--control",
            str(control),
            "--no-card-dtmf",  # the appliance's own DTMF receiver does the detecting
        ]
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self.endpoints: SimulatorEndpoints | None = None

    async def start(self) -> SimulatorEndpoints:
        self._proc = await asyncio.create_subprocess_exec(
            *self.args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._stderr_task = asyncio.create_task(self._relay_stderr(self._proc.stderr))
        found: dict[str, str] = {}
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while len(found) < 3:
                    line = (await self._proc.stdout.readline()).decode(errors="replace")
                    if not line:
                        raise SimulatorError(
                            f"simulator exited with status {await self._proc.wait()} "
                            "before it was ready (see the log above)"
                        )
                    key, sep, value = line.partition(":")
                    if sep and key in ("linecard", "audio", "control"):
                        found[key] = value.strip()
        except TimeoutError:
            await self.stop()
            raise SimulatorError(f"simulator not ready within {START_TIMEOUT_S:.0f} s") from None
        self.endpoints = SimulatorEndpoints(found["linecard"], found["audio"], found["control"])
        log.info("simulator pid %d: %s", self._proc.pid, self.endpoints)
        return self.endpoints

    async def _relay_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            log.info("sim: %s", line.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await proc.wait()
            except TimeoutError:
                log.error("simulator did not stop on SIGTERM; killing it")
                proc.kill()
                await proc.wait()
        if self._stderr_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._stderr_task
