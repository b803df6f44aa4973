"""A real server on a real Unix socket in a temporary directory, and raw-socket helpers."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from firmware.api.auth import MemoryCredentialStore, ScryptParams
from firmware.api.server import ApiServer

# Real scrypt, at a cost that keeps the suite fast; the production cost is tested once.
FAST_SCRYPT = ScryptParams(log2_n=4, r=8, p=1)
SUN_PATH_MAX = 100  # sockaddr_un.sun_path is 108 bytes on Linux; keep a margin


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def sock_dir(tmp_path: Path) -> Iterator[Path]:
    if len(str(tmp_path / "api.sock")) < SUN_PATH_MAX:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="ponte-api-") as short:
        yield Path(short)


@pytest.fixture
def sock_path(sock_dir: Path) -> Path:
    return sock_dir / "api.sock"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_server(path: Path, **kwargs: Any) -> ApiServer:
    kwargs.setdefault("credentials", MemoryCredentialStore())
    kwargs.setdefault("scrypt", FAST_SCRYPT)
    return ApiServer(path, **kwargs)


@pytest.fixture
async def server(sock_path: Path) -> AsyncIterator[ApiServer]:
    srv = make_server(sock_path)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@dataclass
class Raw:
    """A client that speaks bytes, for testing what the library would never send."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def open(cls, path: Path) -> Raw:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=4 << 20)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_json(self, obj: object) -> None:
        await self.send(json.dumps(obj).encode() + b"\n")

    async def recv(self, timeout: float = 10.0) -> Any:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        assert line.endswith(b"\n"), f"connection ended: {line!r}"
        return json.loads(line)

    async def hello(self) -> Any:
        await self.send_json({"id": 0, "method": "api.hello", "params": {"version": "1.0"}})
        reply = await self.recv()
        assert "result" in reply, reply
        return reply["result"]

    async def call(self, rid: int | str, method: str, params: object = None) -> Any:
        msg: dict[str, object] = {"id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        await self.send_json(msg)
        return await self.recv()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass
