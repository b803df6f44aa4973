"""The console's login over the wire: first run, lock-out with injected time, sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firmware.api.auth import (
    FACTORY_PASSWORD,
    LOCKOUT_BASE_S,
    LOCKOUT_THRESHOLD,
    SESSION_IDLE_S,
    FileCredentialStore,
)
from firmware.api.client import ApiClient, ApiError
from firmware.api.core import CallContext
from firmware.api.protocol import JsonValue
from firmware.api.schema import NoParams
from firmware.api.server import ApiServer

from .conftest import FakeClock, make_server


async def _secret(params: NoParams, ctx: CallContext) -> JsonValue:
    return "configuration"


@pytest.fixture
async def guarded(sock_path: Path, clock: FakeClock, tmp_path: Path) -> Any:
    srv = make_server(
        sock_path, clock=clock, credentials=FileCredentialStore(tmp_path / "admin.json")
    )
    srv.register("config.get", _secret, NoParams, result="-", summary="", requires_login=True)
    await srv.start()
    yield srv
    await srv.stop()


async def test_first_run_forces_a_password_change(guarded: ApiServer, sock_path: Path) -> None:
    async with ApiClient(sock_path) as api:
        status: Any = await api.call("auth.status")
        assert status == {
            "first_run": True,
            "must_change_password": True,
            "logged_in": False,
            "locked_for_s": None,
        }
        with pytest.raises(ApiError) as info:
            await api.call("config.get")
        assert info.value.code == "login_required"
        result = await api.login(FACTORY_PASSWORD)
        assert result["must_change_password"] is True
        with pytest.raises(ApiError) as info:
            await api.call("config.get")
        assert info.value.code == "password_change_required"
        with pytest.raises(ApiError) as info:
            await api.change_password(FACTORY_PASSWORD, "short")
        assert (info.value.code, info.value.path) == ("invalid_params", "params.new_password")
        await api.change_password(FACTORY_PASSWORD, "installer secret")
        assert await api.call("config.get") == "configuration"
        status = await api.call("auth.status")
        assert status["first_run"] is False and status["logged_in"] is True
    async with ApiClient(sock_path) as api:  # a new connection starts logged out
        with pytest.raises(ApiError) as info:
            await api.login(FACTORY_PASSWORD)
        assert (info.value.code, info.value.path) == ("auth_failed", "params.password")
        await api.login("installer secret")
        assert await api.call("config.get") == "configuration"


async def test_lockout_over_the_wire(guarded: ApiServer, sock_path: Path, clock: FakeClock) -> None:
    async with ApiClient(sock_path) as api:
        for attempt in range(LOCKOUT_THRESHOLD):
            with pytest.raises(ApiError) as info:
                await api.login(f"guess {attempt}")
            assert info.value.code == "auth_failed"
        assert info.value.data == {"retry_after_s": LOCKOUT_BASE_S}
        with pytest.raises(ApiError) as info:
            await api.login(FACTORY_PASSWORD)
        assert info.value.code == "locked_out"
        assert info.value.data == {"retry_after_s": LOCKOUT_BASE_S}
        status: Any = await api.call("auth.status")
        assert status["locked_for_s"] == LOCKOUT_BASE_S
        clock.advance(LOCKOUT_BASE_S - 1)
        with pytest.raises(ApiError) as info:
            await api.login(FACTORY_PASSWORD)
        assert info.value.code == "locked_out" and info.value.data == {"retry_after_s": 1.0}
        clock.advance(1)
        with pytest.raises(ApiError) as info:  # one more failure doubles the wait
            await api.login("wrong again")
        assert info.value.data == {"retry_after_s": 2 * LOCKOUT_BASE_S}
        clock.advance(2 * LOCKOUT_BASE_S)
        await api.login(FACTORY_PASSWORD)


async def test_sessions_resume_expire_and_logout(
    guarded: ApiServer, sock_path: Path, clock: FakeClock
) -> None:
    async with ApiClient(sock_path) as api:
        await api.login(FACTORY_PASSWORD)
        result = await api.change_password(FACTORY_PASSWORD, "installer secret")
        token = result["token"]
    async with ApiClient(sock_path) as api:
        assert await api.call("auth.resume", {"token": token}) == {"must_change_password": False}
        assert await api.call("config.get") == "configuration"
        clock.advance(SESSION_IDLE_S + 1)
        with pytest.raises(ApiError) as info:
            await api.call("config.get")
        assert info.value.code == "login_required"  # idle too long
        with pytest.raises(ApiError) as info:
            await api.call("auth.resume", {"token": token})
        assert (info.value.code, info.value.path) == ("auth_failed", "params.token")
        await api.login("installer secret")
        await api.logout()
        with pytest.raises(ApiError) as info:
            await api.call("config.get")
        assert info.value.code == "login_required"


async def test_password_change_logs_out_other_connections(
    guarded: ApiServer, sock_path: Path
) -> None:
    async with ApiClient(sock_path) as a, ApiClient(sock_path) as b:
        await a.login(FACTORY_PASSWORD)
        await a.change_password(FACTORY_PASSWORD, "first secret")
        await b.login("first secret")
        assert await b.call("config.get") == "configuration"
        await a.change_password("first secret", "second secret")
        with pytest.raises(ApiError) as info:
            await b.call("config.get")
        assert info.value.code == "login_required"
        assert await a.call("config.get") == "configuration"
