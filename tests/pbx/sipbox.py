"""A box for call-control tests: real FXS/FXO line machines, call control, and a log of what
went to the SIP endpoint, with the bookkeeping a real endpoint would do (open legs, audio
connections) checked at every step."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from firmware.lines import FxoPort, FxoState, FxsPort, FxsState, timing_for
from firmware.lines import messages as m
from firmware.pbx.apps import APP_PORTS
from firmware.pbx.calls import (
    AnswerSip,
    BridgeSip,
    CallCommand,
    CallControl,
    ConnectSip,
    DisconnectSip,
    HangupSip,
    HoldSip,
    Join,
    LineEvent,
    PlaceSipCall,
    PortInfo,
    ResumeSip,
    RingSip,
    SendSipDtmf,
    SipEnded,
    SipIncoming,
    SipReferred,
    Split,
    TransferSip,
)
from firmware.sip.limits import PJSUA_MAX_CALLS
from firmware.store.schema import (
    Account,
    Config,
    DialPlanConfig,
    Extension,
    FxoLine,
    FxsLine,
    LinesConfig,
    Route,
    SecurityConfig,
    SipConfig,
    TollFraudConfig,
    Trunk,
)
from firmware.store.validate import check

US = timing_for("US")
CID = m.CallerId(number="5551234", name="Far End")


def sip_config(
    fxs: int = 2,
    *,
    fxo_destination: str = "101",
    accounts: Sequence[int] = (),
    trunk_destination: str = "",
    emergency_to: str = "fxo:0",
    outside_to: str = "trunk:prov",
    fxo: int = 1,
    max_external_calls: int = 4,  # the most the toll-fraud rules allow: legs are the limit
    voicemail: bool = True,  # the extensions have mailboxes (busy and no answer go there)
) -> Config:
    """A validated configuration: extensions 101.., a trunk 'prov', routes to it."""
    numbers = [str(101 + i) for i in range(fxs)]
    routes = [
        Route(name="emergency", pattern="112|911|999", to=emergency_to),
        Route(name="internal", pattern="[1-9]xx", to="extensions"),
    ]
    if outside_to:
        routes.append(Route(name="outside", pattern="0[1-9]x.T", to=outside_to, strip=1))
    config = Config(
        lines=LinesConfig(
            fxs=tuple(FxsLine(extension=n) for n in numbers),
            fxo=tuple(FxoLine(destination=fxo_destination) for _ in range(fxo)),
        ),
        extensions=tuple(
            Extension(number=n, name=f"Port {i + 1}", voicemail=voicemail)
            for i, n in enumerate(numbers)
        ),
        sip=SipConfig(
            trunks=(
                Trunk(
                    name="prov",
                    registrar="127.0.0.1",
                    username="box",
                    destination=trunk_destination,
                ),
            ),
            accounts=tuple(
                Account(name=f"port{i + 1}", registrar="127.0.0.1", username=f"u{i + 1}", fxs=i)
                for i in accounts
            ),
        ),
        dialplan=DialPlanConfig(routes=tuple(routes)),
        security=SecurityConfig(toll_fraud=TollFraudConfig(max_external_calls=max_external_calls)),
    )
    return check(config)


class Box:
    """FXS ports 1..n, FXO port n+1 (if configured), call control between them."""

    def __init__(self, config: Config | None = None, *, cid_after_ring: bool = False) -> None:
        self.config = config or sip_config()
        nfxs, nfxo = len(self.config.lines.fxs), len(self.config.lines.fxo)
        self.fxs = {p: FxsPort(US) for p in range(1, nfxs + 1)}
        self.fxo = {p: FxoPort(US) for p in range(nfxs + 1, nfxs + nfxo + 1)}
        infos = [PortInfo(p, "fxs", p - 1) for p in self.fxs] + [
            PortInfo(p, "fxo", p - nfxs - 1, US.release_guard_ms, cid_after_ring) for p in self.fxo
        ]
        self.cc = CallControl(self.config, infos, app_ports=APP_PORTS)
        self.now = 0
        self.sent: list[CallCommand] = []
        self.outputs: dict[int, list[m.Output]] = {p: [] for p in [*self.fxs, *self.fxo]}
        # What the endpoint would hold: legs open, and which port each leg's audio reaches.
        self.open_legs: set[int] = set()
        self.incoming: set[int] = set()
        self.audio: dict[int, int] = {}  # leg -> port
        self.joined: set[frozenset[int]] = set()
        self.bridged: set[frozenset[int]] = set()  # SIP legs whose audio the endpoint joins
        self.held: set[int] = set()  # legs we put on hold (re-INVITE sendonly)
        self.max_in_use = 0

    # --- plumbing ---------------------------------------------------------------------------

    def _run(self, port: int, outputs: list[m.Output]) -> None:
        self.outputs[port] += outputs
        for out in outputs:
            if isinstance(out, m.Report):
                self._commands(self.cc.handle(port, out, self.now))

    def _commands(self, commands: list[CallCommand]) -> None:
        for c in commands:
            self.sent.append(c)
            match c:
                case LineEvent(port=port, event=event):
                    if port in self.fxs:
                        self._run(port, self.fxs[port].handle(event, self.now))  # type: ignore[arg-type]
                    else:
                        self._run(port, self.fxo[port].handle(event, self.now))  # type: ignore[arg-type]
                case PlaceSipCall(leg=leg):
                    assert leg not in self.open_legs, f"leg {leg} placed twice"
                    self.open_legs.add(leg)
                case HangupSip(leg=leg):
                    assert leg in self.open_legs, f"HangupSip for leg {leg}, which is not open"
                    assert leg not in self.audio, f"leg {leg} hung up with its audio connected"
                    self.open_legs.discard(leg)
                    self.held.discard(leg)
                    self.bridged = {b for b in self.bridged if leg not in b}
                    self.incoming.discard(leg)
                case ConnectSip(leg=leg, port=port):
                    assert leg in self.open_legs and leg not in self.audio, c
                    assert port not in self.audio.values(), f"port {port} on two legs"
                    self.audio[leg] = port
                case DisconnectSip(leg=leg, port=port):
                    assert self.audio.get(leg) == port, c
                    del self.audio[leg]
                case RingSip(leg=leg) | AnswerSip(leg=leg) | SendSipDtmf(leg=leg):
                    assert leg in self.incoming or leg in self.open_legs, c
                case HoldSip(leg=leg):
                    assert leg in self.open_legs and leg not in self.audio, c
                    self.held.add(leg)
                case ResumeSip(leg=leg):
                    assert leg in self.open_legs, c
                    self.held.discard(leg)
                case BridgeSip(a=a, b=b):
                    assert {a, b} <= self.open_legs, c
                    assert a not in self.audio and b not in self.audio, c
                    self.bridged.add(frozenset((a, b)))
                case TransferSip(leg=leg, replaces=replaces):
                    assert leg in self.open_legs, c
                    assert replaces is None or replaces in self.open_legs, c
                case Join(a=a, b=b):
                    self.joined.add(frozenset((a, b)))
                case Split(a=a, b=b):
                    self.joined.discard(frozenset((a, b)))
        self.max_in_use = max(self.max_in_use, self.cc.sip_legs_in_use)
        assert self.cc.sip_legs_in_use <= PJSUA_MAX_CALLS

    def sip(self, event: object) -> list[CallCommand]:
        """An event from the far end, delivered like the shell would."""
        if isinstance(event, SipIncoming):
            self.open_legs.add(event.leg)
            self.incoming.add(event.leg)
        if isinstance(event, SipReferred):
            self.open_legs.add(event.new_leg)  # the endpoint placed it for the REFER
        if isinstance(event, SipEnded):
            self.open_legs.discard(event.leg)
            self.incoming.discard(event.leg)
            self.audio.pop(event.leg, None)  # the endpoint drops a dead leg's audio itself
            self.held.discard(event.leg)
            self.bridged = {b for b in self.bridged if event.leg not in b}
        before = len(self.sent)
        self._commands(self.cc.handle_sip(event, self.now))
        return self.sent[before:]

    def incoming_call(
        self,
        called: str,
        *,
        kind: str = "trunk",
        account: str = "prov",
        peer: str = "prov",
        caller: m.CallerId | None = CID,
    ) -> int:
        leg = self.cc.new_leg()
        self.sip(SipIncoming(leg, account, kind, peer, called, caller))  # type: ignore[arg-type]
        return leg

    def advance(self, ms: int) -> None:
        end = self.now + ms
        for _ in range(10_000):
            machines: list[FxsPort | FxoPort] = [*self.fxs.values(), *self.fxo.values()]
            due = [
                d
                for d in [self.cc.next_deadline(), *(p.next_deadline() for p in machines)]
                if d is not None and d <= end
            ]
            if not due:
                break
            self.now = max(self.now, min(due))
            for port, fxs in self.fxs.items():
                self._run(port, fxs.handle_timer(self.now))
            for port, fxo in self.fxo.items():
                self._run(port, fxo.handle_timer(self.now))
            self._commands(self.cc.handle_timer(self.now))
        self.now = end

    # --- the people -------------------------------------------------------------------------

    def st(self, port: int) -> FxsState:
        return self.fxs[port].state

    def tone(self, port: int) -> m.Tone | None:
        return self.fxs[port].tone

    def line(self, port: int) -> FxoState:
        return self.fxo[port].state

    def seized(self, port: int) -> bool:
        return self.fxo[port].off_hook

    def lift(self, port: int) -> None:
        self._run(port, self.fxs[port].handle(m.HookOff(at=self.now), self.now))
        self.advance(500)

    def hang_up(self, port: int) -> None:
        self._run(port, self.fxs[port].handle(m.HookOn(at=self.now), self.now))
        self.advance(2000)  # longer than a flash

    def dial(self, port: int, digits: str) -> None:
        for d in digits:
            self._run(port, self.fxs[port].handle(m.DtmfDigit(d), self.now))
            self.advance(100)

    def ring_line(self, port: int, caller_id: m.CallerId | None = None) -> None:
        """The exchange rings once (2 s), then sends caller ID in the silence (Bell 202)."""
        fxo = self.fxo[port]
        self._run(port, fxo.handle(m.RingVoltage(True, self.now), self.now))
        self.advance(2000)
        self._run(port, fxo.handle(m.RingVoltage(False, self.now), self.now))
        if caller_id is not None:
            self.advance(1000)
            self._run(port, fxo.handle(m.CallerIdDetected(caller_id), self.now))

    def line_event(self, port: int, event: m.FxoEvent) -> None:
        self._run(port, self.fxo[port].handle(event, self.now))

    def loop_current(self, port: int, present: bool = True) -> None:
        self.line_event(port, m.LoopCurrent(present, self.now))

    def far_end_clears(self, port: int) -> None:
        """The exchange drops loop current (US: the disconnect signal), for long enough."""
        self.loop_current(port, True)
        self.advance(100)
        self.loop_current(port, False)
        self.advance(1000)

    # --- what happened ----------------------------------------------------------------------

    def placed(self) -> PlaceSipCall:
        calls = [c for c in self.sent if isinstance(c, PlaceSipCall)]
        assert calls, "no SIP call was placed"
        return calls[-1]

    def since(self, mark: int) -> list[CallCommand]:
        return self.sent[mark:]

    def line_events(self, port: int) -> list[object]:
        return [c.event for c in self.sent if isinstance(c, LineEvent) and c.port == port]


def replace_lines(config: Config, **changes: object) -> Config:
    return check(dataclasses.replace(config, **changes))  # type: ignore[arg-type]
