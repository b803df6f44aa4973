"""Control API methods for conferences and call recordings.

``recordings.list`` and ``recordings.export`` read the recordings index and files (both
need a login: recordings are the users' conversations); ``conference.list`` shows the
configured rooms with who is in them now.  Export goes in chunks of at most
``firmware.service.recording.MAX_CHUNK`` bytes, base64 in the reply, so that an hour-long
recording never has to fit in one API message (1 MiB); ``ponte recordings export`` loops
over them.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware.api.core import CallContext
from firmware.api.protocol import ApiFault, ErrorCode, JsonValue
from firmware.api.schema import FieldError, NoParams
from firmware.api.server import ApiServer
from firmware.service.conference import ConferenceRegistry
from firmware.service.recording import MAX_CHUNK, RecordingError, Recordings
from firmware.store.recordings import MAX_LIST, RecordingIndexError
from firmware.store.schema import Config


def _when(name: str, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(name, f"{value[:40]!r} is not an ISO 8601 date-time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class RecordingsListParams:
    limit: int = field(default=100, metadata={"min": 1, "max": MAX_LIST})
    since: str | None = field(
        default=None, metadata={"doc": "ISO 8601; no zone means UTC", "max_length": 40}
    )
    until: str | None = field(default=None, metadata={"doc": "ISO 8601, exclusive"})
    party: str = field(default="", metadata={"doc": "caller or callee, exactly", "max_length": 64})

    def __post_init__(self) -> None:
        _when("since", self.since)
        _when("until", self.until)


@dataclass(frozen=True, slots=True)
class RecordingsExportParams:
    id: int = field(metadata={"min": 1, "doc": "recording id from recordings.list"})
    offset: int = field(default=0, metadata={"min": 0, "doc": "byte offset in the WAV file"})
    length: int = field(default=MAX_CHUNK, metadata={"min": 1, "max": MAX_CHUNK})


class ConfRecApi:
    """Registers the methods; the recordings are looked up per call (None: not open yet)."""

    def __init__(
        self,
        server: ApiServer,
        *,
        config: Callable[[], Config],
        recordings: Callable[[], Recordings | None],
        conferences: ConferenceRegistry,
    ) -> None:
        self._config = config
        self._recordings = recordings
        self.conferences = conferences
        server.register(
            "recordings.list",
            self.recordings_list,
            RecordingsListParams,
            result="{recordings: [{id, started_at, caller, callee, reason, state, path, "
            "channels, rate, duration_ms, size, salvaged}]} newest first",
            summary="Call recordings in the index (finished ones), filtered by time or party",
            requires_login=True,
        )
        server.register(
            "recordings.export",
            self.recordings_export,
            RecordingsExportParams,
            result="{id, path, size, offset, data (base64), eof}",
            summary="A chunk of a recording's WAV file; call again from offset+len until eof",
            requires_login=True,
        )
        server.register(
            "conference.list",
            self.conference_list,
            NoParams,
            result="{rooms: [{number, name, pin, max_participants, configured, participants: "
            "[{participant, muted, frames_in, missing, overruns, underruns}]}]}",
            summary="Conference rooms and who is in them now",
        )

    def _open(self) -> Recordings:
        recordings = self._recordings()
        if recordings is None:
            raise ApiFault(ErrorCode.INVALID_STATE, "call recordings are not available yet")
        return recordings

    async def recordings_list(self, params: RecordingsListParams, ctx: CallContext) -> JsonValue:
        recordings = self._open()
        rows = await asyncio.to_thread(
            recordings.find,
            limit=params.limit,
            since=_when("since", params.since),
            until=_when("until", params.until),
            party=params.party,
        )
        items: list[JsonValue] = [r.to_json() for r in rows]
        return {"recordings": items}

    async def recordings_export(
        self, params: RecordingsExportParams, ctx: CallContext
    ) -> JsonValue:
        recordings = self._open()
        try:
            row = await asyncio.to_thread(recordings.index.get, params.id)
            chunk = await asyncio.to_thread(
                recordings.read_chunk, params.id, params.offset, params.length
            )
        except RecordingIndexError as exc:
            raise ApiFault(ErrorCode.NOT_FOUND, str(exc), "params.id") from None
        except RecordingError as exc:
            raise ApiFault(ErrorCode.INVALID_STATE, str(exc), "params.id") from None
        except OSError as exc:
            raise ApiFault(
                ErrorCode.INTERNAL_ERROR, f"recording {params.id}: {exc.strerror}"
            ) from None
        return {
            "id": row.id,
            "path": row.path,
            "size": row.size,
            "offset": params.offset,
            "data": base64.b64encode(chunk).decode("ascii"),
            "eof": params.offset + len(chunk) >= row.size,
        }

    async def conference_list(self, params: NoParams, ctx: CallContext) -> JsonValue:
        config = self._config()
        live = dict(self.conferences.items())
        rooms: list[JsonValue] = []
        for room in config.conference.rooms:
            conf = live.pop(room.number, None)
            seats: list[JsonValue] = [s.to_json() for s in conf.view()] if conf else []
            rooms.append(
                {
                    "number": room.number,
                    "name": room.name,
                    "pin": bool(room.pin),
                    "max_participants": room.max_participants,
                    "configured": True,
                    "participants": seats,
                }
            )
        for name, conf in live.items():  # 3-way calls and rooms removed from the config
            rooms.append(
                {
                    "number": name,
                    "name": conf.name,
                    "pin": False,
                    "max_participants": conf.max_participants,
                    "configured": False,
                    "participants": [s.to_json() for s in conf.view()],
                }
            )
        return {"rooms": rooms}
