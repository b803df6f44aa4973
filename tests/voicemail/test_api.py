"""voicemail.list / delete / export as a real ``ponte run --simulate`` serves them."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest

from firmware.api.client import ApiClient, ApiError
from firmware.api.protocol import JsonValue
from firmware.store.schema import VoicemailConfig
from firmware.store.voicemail import VoicemailStore
from tests.service.live import LiveAppliance, login


@pytest.fixture(scope="module")
def live() -> Iterator[LiveAppliance]:
    appliance = LiveAppliance()
    # Messages left by "another process", as the recorder is: the API reads the same files.
    with VoicemailStore.open(appliance.data, VoicemailConfig()) as store:
        for box, caller, seconds in (("101", "+4420", 1), ("101", "0161", 70), ("102", "", 2)):
            rec = store.begin_message(box, caller, f"from {caller}")
            tone = 3000 * np.sin(np.arange(8000 * seconds) * 2 * np.pi * 440 / 8000)
            rec.append(tone.astype("<i2").tobytes())
            rec.finish()
    yield appliance
    appliance.close()


@pytest.fixture
async def api(live: LiveAppliance) -> AsyncIterator[ApiClient]:
    async with live.client() as client:
        yield client


async def test_voicemail_methods_need_a_login(api: ApiClient) -> None:
    for method, params in (
        ("voicemail.list", {}),
        ("voicemail.delete", {"box": "101", "id": "20261125-000000-00000000"}),
        ("voicemail.export", {"box": "101", "id": "20261125-000000-00000000"}),
    ):
        with pytest.raises(ApiError) as err:
            await api.call(method, params)
        assert err.value.code in ("login_required", "password_change_required"), method


async def test_list_export_delete(live: LiveAppliance, api: ApiClient) -> None:
    await login(api)
    result = await api.call("voicemail.list")
    boxes = {b["box"]: b for b in result["boxes"]}
    assert {"101", "102"} <= set(boxes)
    assert boxes["101"]["new"] == 2 and boxes["101"]["configured"]
    assert boxes["102"]["new"] == 1 and not boxes["102"]["greeting"]
    first, long = boxes["101"]["messages"]
    assert first["caller_number"] == "+4420" and first["duration_ms"] == 1000
    assert long["duration_ms"] == 70_000 and long["encoding"] == "alaw"
    only = await api.call("voicemail.list", {"box": "102", "messages": False})
    assert [b["box"] for b in only["boxes"]] == ["102"] and "messages" not in only["boxes"][0]

    # Export: the path, and the bytes in chunks (a 70 s message is over one chunk).
    path_only = await api.call("voicemail.export", {"box": "101", "id": long["id"]})
    on_disk = await asyncio.to_thread(lambda: open(path_only["path"], "rb").read())
    assert path_only["size"] == len(on_disk) == long["size"] and path_only["eof"]
    got = b""
    offset = 0
    while True:
        chunk = await api.call(
            "voicemail.export", {"box": "101", "id": long["id"], "data": True, "offset": offset}
        )
        got += base64.b64decode(chunk["data_b64"])
        offset = len(got)
        if chunk["eof"]:
            break
    assert got == on_disk and offset > 512 * 1024

    # Delete: the lamp event follows, the file goes.
    await api.subscribe("voicemail")
    done = await api.call("voicemail.delete", {"box": "101", "id": first["id"]})
    assert done == {"deleted": True, "new": 1, "saved": 0}
    async with asyncio.timeout(30):
        while True:
            event = await api.next_event()
            if event.topic == "voicemail.mwi":
                break
    assert event.data == {"box": "101", "new": 1}
    after = await api.call("voicemail.list", {"box": "101"})
    assert [m["id"] for m in after["boxes"][0]["messages"]] == [long["id"]]
    with pytest.raises(ApiError) as err:
        await api.call("voicemail.delete", {"box": "101", "id": first["id"]})
    assert err.value.code == "not_found"


async def test_bad_parameters_name_the_field(api: ApiClient) -> None:
    await login(api)
    cases: list[tuple[dict[str, JsonValue], str]] = [
        ({"box": "../1", "id": "20261125-000000-00000000"}, "box"),
        ({"box": "101", "id": "../../etc/passwd"}, "id"),
        ({"box": "101", "id": "20261125-000000-00000000", "length": 10**9}, "length"),
    ]
    for params, where in cases:
        with pytest.raises(ApiError) as err:
            await api.call("voicemail.export", params)
        assert err.value.code == "invalid_params"
        assert where in str(err.value), err.value
    with pytest.raises(ApiError) as err:
        await api.call("voicemail.export", {"box": "101", "id": "20261125-000000-00000000"})
    assert err.value.code == "not_found"
