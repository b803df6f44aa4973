"""Call records from call control's calls (sans-IO): what each :class:`Call` did, as legs.

:class:`CallLog` watches :class:`~firmware.pbx.calls.CallControl` from the outside: after
every input the shell hands it the calls in progress and the calls that closed
(``CallControl.active_calls()`` / ``CallControl.drain_closed()``), and it turns what changed
into :class:`~firmware.pbx.records.CallRecorder` events (``started``, ``answered``,
``ended``).  Watching rather than being called from every branch of call control keeps the
records right however call control reaches a state (features added later included).

Legs (docs/records.md): the calling side (``-a``: the port that dialled or rang, or the
incoming SIP leg), the called port (``-b``) and an outgoing SIP leg (``-s``).  A phone
lifted and put back without a number decided leaves no record.

Dispositions: answered once the call reached ``talking``; a call that failed is ``busy``
(SIP 486/600, or call control said busy), ``refused`` (SIP 403) or ``failed``; a call that
ended while still ringing, calling or seizing was given up by its caller: ``cancelled``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from firmware.pbx.calls import Call, CallState, PortInfo
from firmware.pbx.records import CallRecorder
from firmware.store.legs import Direction, Disposition, Party, Place

log = logging.getLogger(__name__)

# RFC 3261 section 21.4.26 / 21.6.1: the called party is busy here / everywhere.
SIP_BUSY_CODES: Final = frozenset({486, 600})
# RFC 3261 section 21.4.4: understood, and refused (policy, toll-fraud rules).
SIP_REFUSED_CODES: Final = frozenset({403})
# States in which a call ending means its caller gave up before an answer.
_SETUP_STATES: Final = frozenset(
    {
        CallState.DIALLING,
        CallState.WAITING_CALLER_ID,
        CallState.RINGING,
        CallState.SEIZING,
        CallState.CALLING,
    }
)
MAX_TRACKED: Final = 256  # calls watched at once; call control holds far fewer (ports + legs)


@dataclass(slots=True)
class _Tracked:
    call_id: str
    legs: dict[str, str] = field(default_factory=dict)  # role -> recorder leg id
    answered: bool = False
    state: CallState = CallState.DIALLING
    # Legs told ``answered``: a leg added after the answer (the extension an IVR put the
    # caller through to) is answered when the call talks again, or not at all.
    answered_legs: set[str] = field(default_factory=set)


class CallLog:
    """Feeds ``recorder`` from the calls of one :class:`CallControl`.  One thread."""

    def __init__(self, recorder: CallRecorder, ports: Mapping[int, PortInfo]) -> None:
        self.recorder = recorder
        self._ports = ports
        self._tracked: dict[int, tuple[Call, _Tracked]] = {}  # id(call) -> (call, its legs)
        self._ids = itertools.count(1)
        self._sip_legs: dict[int, str] = {}  # SIP leg -> recorder leg id, while in flight

    def leg_id_of_sip(self, leg: int) -> str | None:
        """The record leg of SIP leg ``leg`` (for codec and quality reports), if in flight."""
        return self._sip_legs.get(leg)

    def observe(
        self, active: Iterable[Call], closed: Iterable[Call], now_ms: int, wall: float
    ) -> None:
        """``active``: the calls in progress; ``closed``: those that ended since last time.
        ``now_ms`` is call control's clock, ``wall`` the same instant as POSIX seconds."""
        for call in active:
            self._update(call, now_ms, wall)
        for call in closed:
            self._update(call, now_ms, wall)
            self._close(call, wall)

    # --- internals ----------------------------------------------------------------------

    def _wall(self, ms: int, now_ms: int, wall: float) -> float:
        return wall - max(now_ms - ms, 0) / 1000

    def _update(self, call: Call, now_ms: int, wall: float) -> None:
        entry = self._tracked.get(id(call))
        if entry is None:
            if call.collector is not None:
                return  # a phone still dialling: no record until a number is decided
            if len(self._tracked) >= MAX_TRACKED:
                log.error("call records: %d calls watched; %r not recorded", MAX_TRACKED, call)
                return
            entry = (call, _Tracked(f"c{next(self._ids)}"))
            self._tracked[id(call)] = entry
        tracked = entry[1]
        start = self._wall(call.started, now_ms, wall)
        direction = self._direction(call)
        source = self._source(call)
        destination = Party.clean(call.number)
        wanted: list[tuple[str, Place, int | None]] = []
        if call.caller is not None:
            wanted.append(("a", Place.port(call.caller), None))
        elif call.leg is not None and call.leg_in:
            wanted.append(("a", self._sip_place(call), call.leg))
        if call.callee is not None:
            wanted.append(("b", Place.port(call.callee), None))
        if call.leg is not None and not call.leg_in:
            wanted.append(("s", self._sip_place(call), call.leg))
        elif call.out_leg is not None:  # a SIP caller bridged to a second SIP leg
            wanted.append(("s", self._sip_place(call, call.out_account), call.out_leg))
        for role, place, sip_leg in wanted:
            if role in tracked.legs:
                continue
            leg_id = f"{tracked.call_id}-{role}"
            when = start if role == "a" else self._wall(call.since, now_ms, wall)
            self.recorder.started(
                leg_id,
                call=tracked.call_id,
                direction=direction,
                source=source,
                destination=destination,
                where=place,
                now=when,
            )
            tracked.legs[role] = leg_id
            if sip_leg is not None:
                self._sip_legs[sip_leg] = leg_id
        if call.state is not CallState.ENDED:
            tracked.state = call.state
        if call.state is CallState.TALKING:
            tracked.answered = True
            when = self._wall(call.since, now_ms, wall)
            for leg_id in tracked.legs.values():
                if leg_id not in tracked.answered_legs:
                    tracked.answered_legs.add(leg_id)
                    self.recorder.answered(leg_id, when)

    def _close(self, call: Call, wall: float) -> None:
        entry = self._tracked.pop(id(call), None)
        if entry is None:
            return
        tracked = entry[1]
        disposition = self._disposition(call, tracked)
        for role, leg_id in tracked.legs.items():
            sip = role == "s" or (role == "a" and call.caller is None)
            self.recorder.ended(
                leg_id,
                wall,
                disposition
                if leg_id in tracked.answered_legs or disposition != "answered"
                else self._disposition(call, tracked, answered=False),
                sip_code=call.sip_code if sip else None,
                reason=call.reason,
            )
        self._sip_legs = {k: v for k, v in self._sip_legs.items() if v not in tracked.legs.values()}

    def _disposition(self, call: Call, tracked: _Tracked, answered: bool = True) -> Disposition:
        if tracked.answered and answered:
            return "answered"
        if tracked.state is CallState.FAILED:
            code = call.sip_code
            if code in SIP_REFUSED_CODES:
                return "refused"
            if code in SIP_BUSY_CODES or call.busy:
                return "busy"
            return "failed"
        if tracked.state in _SETUP_STATES:
            return "cancelled"
        return "failed"

    def _direction(self, call: Call) -> Direction:
        if call.caller is None or self._ports[call.caller].kind == "fxo":
            return "inbound"
        if call.leg is not None and not call.leg_in:
            return "outbound"
        if call.callee is not None and self._ports[call.callee].kind == "fxo":
            return "outbound"
        return "internal"

    def _source(self, call: Call) -> Party:
        cid = call.caller_id
        if cid is None:
            return Party.clean()
        return Party.clean(cid.number or "", cid.name or "")

    def _sip_place(self, call: Call, account: str | None = None) -> Place:
        return Place.trunk((call.account if account is None else account) or "sip")
