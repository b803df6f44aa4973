"""Control API methods for voicemail: ``voicemail.list``, ``voicemail.delete``,
``voicemail.export``, and the ``voicemail.mwi`` event.

Handlers are thin: the :class:`firmware.store.voicemail.VoicemailStore` does the work, in a
thread (SQLite and file reads block).  The store is the appliance's when it has one, else
opened here on first use; its ``MwiChanged`` events become ``voicemail.mwi`` events.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from firmware.api.core import CallContext
from firmware.api.protocol import ApiFault, ErrorCode, JsonValue
from firmware.api.schema import FieldError
from firmware.api.server import ApiServer
from firmware.store import Config
from firmware.store.voicemail import (
    BOX_RE,
    ID_RE,
    MessageInfo,
    MwiChanged,
    UnknownMessage,
    VoicemailError,
    VoicemailStore,
)

log = logging.getLogger(__name__)

# One API message is at most 1 MiB (firmware.api.protocol.MAX_MESSAGE_BYTES); base64 grows
# data by 4/3, so 512 KiB of audio per call leaves room for the envelope.  A 180 s G.711
# message (1.44 MB) comes in three calls.
MAX_EXPORT_CHUNK: Final = 512 * 1024
MAX_LIST_MESSAGES: Final = 1000  # per box; the quota's upper bound in the schema


def _check_box(value: str) -> None:
    if not BOX_RE.match(value):
        raise FieldError("box", "must be an extension number (1 to 8 digits)")


def _check_id(value: str) -> None:
    if not ID_RE.match(value):
        raise FieldError("id", "must be a message id (YYYYMMDD-HHMMSS-xxxxxxxx)")


@dataclass(frozen=True, slots=True)
class ListParams:
    box: str | None = field(default=None, metadata={"doc": "one box; default: every box"})
    messages: bool = field(default=True, metadata={"doc": "include the message lists"})

    def __post_init__(self) -> None:
        if self.box is not None:
            _check_box(self.box)


@dataclass(frozen=True, slots=True)
class MessageParams:
    box: str = field(metadata={"doc": "the extension number"})
    id: str = field(metadata={"doc": "the message id from voicemail.list"})

    def __post_init__(self) -> None:
        _check_box(self.box)
        _check_id(self.id)


@dataclass(frozen=True, slots=True)
class ExportParams:
    box: str = field(metadata={"doc": "the extension number"})
    id: str = field(metadata={"doc": "the message id from voicemail.list"})
    data: bool = field(default=False, metadata={"doc": "include the WAV bytes (base64)"})
    offset: int = field(default=0, metadata={"min": 0, "doc": "first byte of the chunk"})
    length: int = field(
        default=MAX_EXPORT_CHUNK,
        metadata={"min": 1, "max": MAX_EXPORT_CHUNK, "doc": "bytes in the chunk"},
    )

    def __post_init__(self) -> None:
        _check_box(self.box)
        _check_id(self.id)


def _unknown(exc: UnknownMessage) -> ApiFault:
    return ApiFault(ErrorCode.NOT_FOUND, str(exc), "params.id")


class VoicemailApi:
    """Registers the voicemail methods; ``config`` gives the configuration in force."""

    def __init__(
        self,
        server: ApiServer,
        data_dir: Path,
        config: Callable[[], Config],
        *,
        store: VoicemailStore | None = None,
    ) -> None:
        self.server = server
        self.data_dir = data_dir
        self._config = config
        self._store = store
        self._own_store = False
        self._opening = threading.Lock()
        if store is not None:
            store.subscribe(self._mwi)
        self._register()

    def _register(self) -> None:
        s = self.server
        s.register(
            "voicemail.list",
            self.list,
            ListParams,
            result="{boxes: [{box, name, configured, new, saved, greeting, messages: [{id, "
            "received_at, caller_number, caller_name, duration_ms, size, encoding, state}]}]}",
            summary="Mailboxes, their counts and messages, oldest first (events: voicemail.mwi)",
            requires_login=True,
        )
        s.register(
            "voicemail.delete",
            self.delete,
            MessageParams,
            result="{deleted: true, new, saved}",
            summary="Delete a message (file and index)",
            requires_login=True,
        )
        s.register(
            "voicemail.export",
            self.export,
            ExportParams,
            result="{path, size, offset, data_b64?, eof}",
            summary="A message's WAV file: its path, or its bytes in chunks of 512 KiB",
            requires_login=True,
        )

    def store(self) -> VoicemailStore:
        with self._opening:
            if self._store is None:
                settings = self._config().voicemail
                self._store = VoicemailStore.open(self.data_dir, settings)
                self._own_store = True
                self._store.subscribe(self._mwi)
            if self._own_store:
                self._store.configure(self._config().voicemail)  # limits follow the config
            return self._store

    def close(self) -> None:
        with self._opening:
            if self._own_store and self._store is not None:
                self._store.close()
            self._store = None

    def _mwi(self, event: MwiChanged) -> None:
        payload: JsonValue = {"box": event.extension, "new": event.new_count}
        try:
            self.server.publish_threadsafe("voicemail.mwi", payload)
        except RuntimeError:
            log.debug("voicemail.mwi not published (server not started): %s", event)

    async def _run(self, work: Callable[[], JsonValue]) -> JsonValue:
        try:
            return await asyncio.to_thread(work)
        except UnknownMessage as exc:
            raise _unknown(exc) from None
        except VoicemailError as exc:
            raise ApiFault(ErrorCode.INVALID_STATE, str(exc)) from None

    # -- methods ------------------------------------------------------------------------------
    async def list(self, params: ListParams, ctx: CallContext) -> JsonValue:
        config = self._config()

        def work() -> JsonValue:
            store = self.store()
            names = {e.number: e.name for e in config.extensions if e.voicemail}
            if params.box is not None:
                wanted = [params.box]
            else:
                wanted = sorted(set(names) | set(store.boxes()), key=lambda b: (len(b), b))
            boxes: list[JsonValue] = []
            for box in wanted:
                counts = store.counts(box)
                item: dict[str, JsonValue] = {
                    "box": box,
                    "name": names.get(box, ""),
                    "configured": box in names,
                    "new": counts.new,
                    "saved": counts.saved,
                    "greeting": store.greeting_path(box) is not None,
                }
                if params.messages:
                    msgs = store.messages(box)[:MAX_LIST_MESSAGES]
                    item["messages"] = [_message_json(m) for m in msgs]
                boxes.append(item)
            return {"boxes": boxes}

        return await self._run(work)

    async def delete(self, params: MessageParams, ctx: CallContext) -> JsonValue:
        def work() -> JsonValue:
            store = self.store()
            store.delete(params.box, params.id)
            counts = store.counts(params.box)
            log.info("voicemail %s/%s deleted via the API", params.box, params.id)
            return {"deleted": True, "new": counts.new, "saved": counts.saved}

        return await self._run(work)

    async def export(self, params: ExportParams, ctx: CallContext) -> JsonValue:
        def work() -> JsonValue:
            store = self.store()
            info = store.message(params.box, params.id)
            path = store.path_of(params.box, params.id)
            out: dict[str, JsonValue] = {
                "path": str(path),
                "size": info.size,
                "offset": params.offset,
            }
            if params.data:
                with open(path, "rb") as f:
                    f.seek(params.offset)
                    chunk = f.read(params.length)
                out["data_b64"] = base64.b64encode(chunk).decode()
                out["eof"] = params.offset + len(chunk) >= info.size
            else:
                out["eof"] = True
            return out

        return await self._run(work)


def _message_json(info: MessageInfo) -> JsonValue:
    obj: dict[str, JsonValue] = info.to_json()
    del obj["box"]
    return obj


__all__ = ["MAX_EXPORT_CHUNK", "VoicemailApi"]
