"""Call control against the real line machines: their reports in, its commands back."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.lines import FxoPort, FxsPort, FxsState, timing_for
from firmware.lines import messages as m
from firmware.pbx.calls import (
    FXO_DIAL_DELAY_MS,
    CallCommand,
    CallControl,
    Join,
    LineEvent,
    PortInfo,
    SendDtmf,
    Split,
)
from firmware.store.schema import default_config


class Box:
    """Two FXS ports (1, 2) and one FXO port (3), wired to call control."""

    def __init__(self, config: object = None) -> None:
        timing = timing_for("US")
        self.config = config or default_config(2, 1)
        self.fxs = {1: FxsPort(timing), 2: FxsPort(timing)}
        self.fxo = {3: FxoPort(timing)}
        self.cc = CallControl(
            self.config,  # type: ignore[arg-type]
            [
                PortInfo(1, "fxs", 0),
                PortInfo(2, "fxs", 1),
                PortInfo(3, "fxo", 0, timing.release_guard_ms),
            ],
        )
        self.now = 0
        self.sent: list[CallCommand] = []
        self.outputs: dict[int, list[m.Output]] = {1: [], 2: [], 3: []}

    def _run(self, port: int, outputs: list[m.Output]) -> None:
        self.outputs[port] += outputs
        for out in outputs:
            if isinstance(out, m.OffHook | m.Answered | m.DigitDialled | m.HungUp | m.Disconnected):
                self._commands(self.cc.handle(port, out, self.now))

    def _commands(self, commands: list[CallCommand]) -> None:
        for c in commands:
            self.sent.append(c)
            if isinstance(c, LineEvent):
                machine = self.fxs.get(c.port) or self.fxo[c.port]
                self._run(c.port, machine.handle(c.event, self.now))  # type: ignore[arg-type]

    def hw(self, port: int, event: m.FxsEvent) -> None:
        self._run(port, self.fxs[port].handle(event, self.now))

    def advance(self, ms: int) -> None:
        end = self.now + ms
        for _ in range(1000):
            due = [
                d
                for d in [
                    self.cc.next_deadline(),
                    *(p.next_deadline() for p in self.fxs.values()),
                    *(p.next_deadline() for p in self.fxo.values()),
                ]
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

    def st(self, port: int) -> FxsState:
        return self.fxs[port].state

    def seized(self) -> bool:
        return self.fxo[3].off_hook

    def lift(self, port: int) -> None:
        self.hw(port, m.HookOff(at=self.now))
        self.advance(500)  # hook debounce

    def hang_up(self, port: int) -> None:
        self.hw(port, m.HookOn(at=self.now))
        self.advance(2000)  # longer than a flash

    def dial(self, port: int, digits: str) -> None:
        for d in digits:
            self.hw(port, m.DtmfDigit(d))
            self.advance(100)


def test_extension_call_rings_connects_and_clears() -> None:
    box = Box()
    box.lift(1)
    box.dial(1, "102")
    assert box.st(1) is FxsState.ALERTING  # ringback
    assert box.st(2) is FxsState.RINGING
    alert = next(c for c in box.sent if isinstance(c, LineEvent) and c.port == 2)
    assert alert.event == m.Alert(m.CallerId("101", "Port 1"))
    box.lift(2)
    assert box.st(1) is FxsState.TALKING and box.st(2) is FxsState.TALKING
    assert Join(1, 2) in box.sent
    box.hang_up(2)
    assert Split(1, 2) in box.sent
    assert box.st(1) is FxsState.BUSY
    box.hang_up(1)
    assert box.st(1) is FxsState.IDLE and box.cc.call_of(1) is None
    box.lift(2)  # free again for a new call
    box.dial(2, "101")
    assert box.st(1) is FxsState.RINGING


def test_caller_gives_up_while_it_rings() -> None:
    box = Box()
    box.lift(1)
    box.dial(1, "102")
    box.hang_up(1)
    assert LineEvent(2, m.CancelAlert()) in box.sent
    assert box.st(2) is FxsState.IDLE and box.cc.call_of(2) is None


def test_busy_extension_unknown_number_and_self() -> None:
    config = default_config(2, 1)
    extensions = tuple(dataclasses.replace(e, voicemail=False) for e in config.extensions)
    box = Box(dataclasses.replace(config, extensions=extensions))  # busy: no voicemail
    box.lift(2)
    box.lift(1)
    box.dial(1, "102")
    assert box.st(1) is FxsState.BUSY
    box.hang_up(1)
    box.lift(1)
    box.dial(1, "109")
    assert box.st(1) is FxsState.CONGESTION
    box.hang_up(1)
    box.lift(1)
    box.dial(1, "101")
    assert box.st(1) is FxsState.BUSY


def test_outside_line_is_seized_and_dialled() -> None:
    box = Box()
    box.lift(1)
    box.dial(1, "05551234")
    box.advance(4000)  # 0[1-9]x.T: the inter-digit timer completes it
    assert box.seized()
    assert Join(1, 3) in box.sent
    box.advance(FXO_DIAL_DELAY_MS)
    assert SendDtmf(3, "5551234") in box.sent  # the route strips the 0
    assert box.st(1) is FxsState.TALKING
    box.hang_up(1)
    assert not box.seized() and Split(1, 3) in box.sent


ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["lift", "hang", "dial", "wait"]),
        st.sampled_from([1, 2]),
        st.text(alphabet="0123456789*#", min_size=1, max_size=4),
    ),
    max_size=25,
)


@settings(max_examples=100, deadline=None)
@given(ACTIONS)
def test_any_sequence_of_user_actions_keeps_machines_and_calls_consistent(
    actions: list[tuple[str, int, str]],
) -> None:
    box = Box()
    for what, port, digits in actions:
        on_hook = box.fxs[port].hook_on
        if what == "lift" and on_hook:
            box.lift(port)
        elif what == "hang" and not on_hook:
            box.hang_up(port)
        elif what == "dial" and not on_hook:
            box.dial(port, digits)
        else:
            box.advance(3000)
    for port, fxs in box.fxs.items():
        if fxs.hook_on and fxs.state is FxsState.IDLE:
            assert box.cc.call_of(port) is None or box.cc.call_of(port).callee == port  # type: ignore[union-attr]


def test_answer_racing_the_callers_hang_up_gives_busy() -> None:
    box = Box()
    box.lift(1)
    box.dial(1, "102")
    box.hw(1, m.HookOn(at=box.now))  # the caller lets go ...
    box.hw(2, m.HookOff(at=box.now))  # ... as the called phone is lifted
    box.advance(2000)
    assert box.st(1) is FxsState.IDLE
    assert box.st(2) in (FxsState.BUSY, FxsState.DIAL_TONE)
    box.hang_up(2)
    assert box.cc.call_of(1) is None and box.cc.call_of(2) is None
