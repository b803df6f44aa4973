"""The simulator's signal processing, built from ``firmware.dsp`` for every country profile.

``drivers.sim`` cannot import ``firmware``; it asks a :class:`drivers.sim.signals.SignalKit`
for tones, caller ID and detectors.  :class:`DspKit` is the one ``ponte sim start`` uses:
the exchange plays the profile's tones and ring cadence and sends the profile's caller ID
(standard, alerting and timing), the card and the exchange hear DTMF with the conformance
detector, and the simulated telephones decode caller ID like an FXO port does.
"""

from __future__ import annotations

import functools
from typing import Final

from drivers.sim.endpoint import SimError
from drivers.sim.signals import (
    Alerting,
    CallerIdBurst,
    CallerIdReceiver,
    CallerIdRenderer,
    CallWaitingReceiver,
    DecodedCallerId,
    DigitDetector,
    Exchange,
    NoBurst,
    SendAck,
    ToneRenderer,
)
from drivers.sim.tones import Pcm
from firmware.dsp.callerid import transmit, type2
from firmware.dsp.callerid.fsk import FskStandard
from firmware.dsp.callerid.messages import DateTime
from firmware.dsp.dtmf import DtmfDetector, DtmfEnd
from firmware.dsp.profiles import CallerIdSpec, CountryProfile, ProfileError, get_profile
from firmware.dsp.tones import TonePlayer, ToneSpec
from firmware.service import callerid_rx

# Networks that signal a far-end clear by opening the loop (calling-party control):
# GR-506-CORE for North America, BT SIN 351 for the UK; the others send busy tone.
LOOP_DROP_COUNTRIES: Final = frozenset({"US", "CA", "GB"})

# The simulator has no NTT handshake: its CAR is one ring pulse (transmit.NTT_CAR_MS).
_ALERTING: Final = {
    transmit.Alerting.AFTER_FIRST_RING: Alerting.AFTER_FIRST_RING,
    transmit.Alerting.POLARITY_REVERSAL_DTAS: Alerting.POLARITY_REVERSAL_DTAS,
    transmit.Alerting.DTAS: Alerting.DTAS,
    transmit.Alerting.RING_PULSE: Alerting.RING_PULSE,
    transmit.Alerting.POLARITY_REVERSAL: Alerting.POLARITY_REVERSAL,
    transmit.Alerting.NTT_CAR: Alerting.RING_PULSE,
}


class _Tone:
    def __init__(self, spec: ToneSpec) -> None:
        self._player = TonePlayer(spec)

    def read(self, n: int) -> Pcm:
        return self._player.next_frame(n)


def _renderer(spec: ToneSpec) -> ToneRenderer:
    return _Tone(spec)


class _Digits:
    """``firmware.dsp.dtmf.DtmfDetector`` as the simulator's (digit, duration_ms) feed."""

    def __init__(self) -> None:
        self._detector = DtmfDetector()

    def feed(self, frame: Pcm) -> list[tuple[str, int]]:
        return [
            (e.digit, round(e.duration_ms))
            for e in self._detector.feed(frame)
            if isinstance(e, DtmfEnd)
        ]


class _Receiver:
    def __init__(self, profile: CountryProfile) -> None:
        self._rx = callerid_rx.CallerIdReceiver(profile)

    def feed(self, frame: Pcm) -> list[DecodedCallerId]:
        return [DecodedCallerId(h.number, h.name, h.date, h.error) for h in self._rx.feed(frame)]


class _CallWaitingReceiver:
    """A type II telephone (``firmware.dsp.callerid.type2.CallWaitingReceiver``)."""

    def __init__(self, profile: CountryProfile, ack_digit: str) -> None:
        spec = profile.callerid
        standard: FskStandard = "bell202" if spec.standard == "bell202" else "v23"
        try:
            self._rx = type2.CallWaitingReceiver(standard, ack_digit=ack_digit)
        except ValueError as exc:
            raise SimError(str(exc)) from None

    def feed(self, frame: Pcm) -> list[SendAck | NoBurst | DecodedCallerId]:
        out: list[SendAck | NoBurst | DecodedCallerId] = []
        for event in self._rx.feed(frame):
            if isinstance(event, type2.SendAck):
                out.append(SendAck(event.digit))
            elif isinstance(event, type2.NoBurst):
                out.append(NoBurst())
            elif (h := callerid_rx.heard(event)) is not None:
                out.append(DecodedCallerId(h.number, h.name, h.date, h.error))
        return out


def caller_id_renderer(profile: CountryProfile) -> CallerIdRenderer:
    """(number, name, MMDDhhmm) -> the burst the profile's exchange sends.

    The same renderer as the appliance's FXS ports (:mod:`firmware.dsp.callerid.transmit`);
    only the simulator's own burst type differs.
    """
    spec: CallerIdSpec = profile.callerid

    def render(number: str | None, name: str | None, date: str | None) -> CallerIdBurst:
        if spec.standard == "dtmf" and number is None:
            raise ValueError(f"{profile.code} sends caller ID as DTMF: a number is needed")
        when = DateTime.from_bytes(date.encode()) if date else None
        burst = transmit.render_on_hook(spec, number=number, name=name, when=when)
        return CallerIdBurst(
            data=burst.data,
            alerting=_ALERTING[burst.alerting],
            delay_ms=burst.delay_ms,
            data_to_ring_ms=burst.data_to_ring_ms,
            alert=burst.alert,
            pr_to_alert_ms=burst.pr_to_alert_ms,
            ring_pulse_ms=burst.ring_pulse_ms,
        )

    return render


def exchange(profile: CountryProfile) -> Exchange:
    ring = profile.ring.on_off_ms
    pairs = tuple((round(on), round(off)) for on, off in zip(ring[0::2], ring[1::2], strict=True))
    tones = profile.tones
    congestion = tones.get("congestion", tones["busy"])
    return Exchange(
        profile.code,
        dial=functools.partial(_renderer, tones["dial"]),
        ringback=functools.partial(_renderer, tones["ringback"]),
        busy=functools.partial(_renderer, tones["busy"]),
        congestion=functools.partial(_renderer, congestion),
        ring_cadence=pairs,
        flash_ms=profile.flash.send_ms,
        disconnect="loop-drop" if profile.code in LOOP_DROP_COUNTRIES else "tone",
        caller_id=caller_id_renderer(profile),
    )


class DspKit:
    """:class:`drivers.sim.signals.SignalKit` from ``firmware.dsp``: any profiled country."""

    def exchange(self, country: str) -> Exchange:
        return exchange(_profile(country))

    def dtmf_detector(self) -> DigitDetector:
        return _Digits()

    def caller_id_receiver(self, country: str) -> CallerIdReceiver | None:
        return _Receiver(_profile(country))

    def call_waiting_receiver(self, country: str, ack_digit: str) -> CallWaitingReceiver | None:
        return _CallWaitingReceiver(_profile(country), ack_digit)


def _profile(country: str) -> CountryProfile:
    try:
        return get_profile(country)
    except ProfileError as exc:
        raise SimError(str(exc)) from None
