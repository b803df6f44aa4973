"""The simulator's control socket: one JSON object per line each way, over a Unix socket.

Request::

    {"target": "handset", "number": 1, "action": "dial", "digits": "102", "pulse": false}

Response: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "what was wrong"}``.
Targets and actions are listed in ``ACTIONS`` and in ``docs/simulator.md``; ``ponte sim``
is a thin client of this.  Paths in requests must be absolute (the simulator's working
directory is not the client's).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.linecard.protocol import FaultKind
from drivers.sim.co import CoLine
from drivers.sim.endpoint import AudioEndpoint, SimError
from drivers.sim.handset import Handset

if TYPE_CHECKING:
    from drivers.sim.simulator import Simulator

log = logging.getLogger(__name__)

Request = dict[str, Any]
MAX_REQUEST = 64 * 1024
CONTROL_ENV = "PONTE_SIM_CONTROL"


def default_control_path() -> Path:
    """``$PONTE_SIM_CONTROL``, else ``$XDG_RUNTIME_DIR/ponte-sim.sock``, else
    ``/tmp/ponte-sim-<uid>.sock``."""
    if env := os.environ.get(CONTROL_ENV):
        return Path(env)
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        return Path(runtime) / "ponte-sim.sock"
    return Path(f"/tmp/ponte-sim-{os.getuid()}.sock")


def _str(req: Request, key: str) -> str:
    value = req.get(key)
    if not isinstance(value, str) or not value:
        raise SimError(f"request needs {key!r} (a string)")
    return value


def _path(req: Request, key: str = "file") -> Path:
    path = Path(_str(req, key))
    if not path.is_absolute():
        raise SimError(f"{key} {str(path)!r} must be an absolute path")
    return path


def _number(req: Request, key: str, *, default: float | None = None) -> float | None:
    value = req.get(key, default)
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise SimError(f"{key!r} must be a number, got {value!r}")
    return value


def _freqs(req: Request) -> tuple[float, ...]:
    freqs = req.get("freqs")
    if (
        not isinstance(freqs, list)
        or not 1 <= len(freqs) <= 4
        or not all(isinstance(f, int | float) for f in freqs)
    ):
        raise SimError("'freqs' must be a list of 1 to 4 frequencies in Hz")
    return tuple(float(f) for f in freqs)


def _audio_action(endpoint: AudioEndpoint, action: str, req: Request) -> Any:
    """Actions handsets and exchange lines share; None if ``action`` is not one."""
    if action == "play":
        return {"seconds": endpoint.play_wav(_path(req))}
    if action == "tone":
        level = _number(req, "level", default=-13.0)
        assert level is not None
        endpoint.play_tone(_freqs(req), level_dbm0=level)
        return {}
    if action == "stop-audio":
        endpoint.stop_playing()
        return {}
    if action == "record":
        endpoint.record(_path(req), seconds=_number(req, "seconds"))
        return {}
    if action == "stop-recording":
        pcm = endpoint.stop_recording()
        return {"seconds": len(pcm) / 8000}
    return None


def _handset(sim: Simulator, req: Request) -> Any:
    handset: Handset = sim.handset(int(_number(req, "number") or 0))
    action = _str(req, "action")
    now = sim.card.clock()
    if action == "off-hook":
        handset.off_hook()
        return {}
    if action == "on-hook":
        handset.on_hook()
        return {}
    if action == "flash":
        ms = _number(req, "ms")
        return {"ends_in": handset.flash(None if ms is None else int(ms)) - now}
    if action == "dial":
        pulse = bool(req.get("pulse", False))
        ends = handset.dial(_str(req, "digits"), pulse=pulse)
        return {"ends_in": ends - now, "ends_at": ends}
    if action == "first-sound":
        # When the handset first heard something after ``after`` (the card's clock, as
        # ``ends_at`` gives it), louder than ``level`` dBm0; null: nothing yet.
        after = _number(req, "after")
        level = _number(req, "level", default=-40.0)
        if after is None or level is None:
            raise SimError("'first-sound' needs 'after' (the card's clock, s)")
        return {"at": handset.first_sound_after(after, level), "now": now}
    if action == "auto-answer":
        answer, hangup = _number(req, "seconds"), _number(req, "hangup_after")
        if answer is not None and not 0 <= answer <= 600:
            raise SimError(f"'seconds' {answer} outside 0..600")
        if hangup is not None and not 0 < hangup <= 3600:
            raise SimError(f"'hangup_after' {hangup} outside 0..3600")
        handset.auto_answer_s, handset.auto_hangup_s = answer, hangup
        return {}
    if action == "call-waiting-id":
        # Type II caller ID: {"ack": "D"} (or "A"), {"ack": null} for a phone without it.
        ack = req.get("ack", "D")
        if ack is not None and not isinstance(ack, str):
            raise SimError("'ack' must be 'D', 'A' or null")
        handset.set_call_waiting(ack)
        return {"ack": handset.call_waiting_ack}
    if action == "status":
        return next(h for h in sim.status()["handsets"] if h["handset"] == handset.number)
    result = _audio_action(handset, action, req)
    if result is None:
        raise SimError(f"unknown handset action {action!r}")
    return result


def _co(sim: Simulator, req: Request) -> Any:
    line: CoLine = sim.co.line(int(_number(req, "number") or 0))
    action = _str(req, "action")
    if action == "ring":
        caller_id, name = req.get("caller_id"), req.get("name")
        if caller_id is not None and not isinstance(caller_id, str):
            raise SimError("'caller_id' must be a string of digits")
        if name is not None and not isinstance(name, str):
            raise SimError("'name' must be a string")
        line.ring(caller_id, name)
        sent = line.country.caller_id is not None and (caller_id is not None or name is not None)
        return {"caller_id_sent": sent}
    simple: dict[str, Callable[[], None]] = {"cancel": line.cancel, "answer": line.answer}
    if action in simple:
        simple[action]()
        return {}
    if action == "disconnect":
        mode = req.get("mode")
        line.disconnect(mode if isinstance(mode, str) else None)
        return {"mode": line.disconnect_mode.value if line.disconnect_mode else None}
    if action == "auto-answer":
        line.auto_answer_s = _number(req, "seconds")
        return {}
    if action == "answer-reversal":
        line.answer_reversal = bool(req.get("enable", True))
        return {}
    if action == "dtmf":
        return {"seconds": line.press(_str(req, "digits"))}
    if action == "status":
        return next(c for c in sim.status()["co_lines"] if c["line"] == line.number)
    result = _audio_action(line, action, req)
    if result is None:
        raise SimError(f"unknown co action {action!r}")
    return result


def _card(sim: Simulator, req: Request) -> Any:
    action = _str(req, "action")
    if action == "reset":
        sim.reset_card()
    elif action == "unplug":
        sim.unplug()
    elif action == "plug":
        sim.plug()
    elif action == "garbage":
        try:
            sim.inject_garbage(bytes.fromhex(_str(req, "hex")))
        except ValueError as exc:
            raise SimError(f"'hex' is not hexadecimal: {exc}") from None
    elif action == "fault":
        try:
            kind = FaultKind[_str(req, "kind").upper().replace("-", "_")]
        except KeyError:
            kinds = ", ".join(k.name.lower().replace("_", "-") for k in FaultKind)
            raise SimError(f"fault kind must be one of {kinds}") from None
        port = int(_number(req, "port") or 0)
        sim.card.raise_fault(port, kind, bool(req.get("active", True)))
    else:
        raise SimError(f"unknown card action {action!r}")
    return {}


def dispatch(sim: Simulator, req: Request) -> Any:
    """Carry out one request; raises SimError naming what was wrong."""
    target = req.get("target")
    if target == "handset":
        return _handset(sim, req)
    if target == "co":
        return _co(sim, req)
    if target == "card":
        return _card(sim, req)
    if target == "status":
        return sim.status()
    if target == "stop":
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(sim.stop()))
        return {}
    raise SimError(f"unknown target {target!r}: use handset, co, card, status or stop")


def handle_line(sim: Simulator, line: bytes) -> dict[str, Any]:
    try:
        req = json.loads(line)
        if not isinstance(req, dict):
            raise SimError("a request is a JSON object")
        return {"ok": True, "result": dispatch(sim, req)}
    except json.JSONDecodeError as exc:
        return {"ok": False, "error": f"request is not JSON: {exc}"}
    except (SimError, ValueError) as exc:
        return {"ok": False, "error": str(exc)}


async def serve_control(
    sim: Simulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while line := await reader.readline():
            response = handle_line(sim, line)
            writer.write(json.dumps(response).encode() + b"\n")
            await writer.drain()
    except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
        log.warning("control client dropped: %s", exc)
    finally:
        writer.close()


def request(path: Path, req: Request, *, timeout: float = 5.0) -> dict[str, Any]:
    """Blocking client: send one request to a running simulator, return its response."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("simulator closed the control connection")
            buf += chunk
            if len(buf) > MAX_REQUEST * 16:
                raise ConnectionError("control response too long")
    response: dict[str, Any] = json.loads(buf)
    return response
