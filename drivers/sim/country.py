"""What the virtual exchange sounds like per country (a small table, not firmware.dsp's).

Tone frequencies and cadences from ITU-T E.180 Supplement 2 ("Various tones used in
national networks"); ringing cadences from the same national entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.sim.tones import Tone


@dataclass(frozen=True)
class CountryTones:
    code: str
    dial: Tone
    ringback: Tone
    busy: Tone
    ring_cadence: tuple[tuple[int, int], ...]
    ring_frequency_hz: int
    flash_ms: int  # the handset's hook flash (timed break recall)
    # How the exchange tells a line the far end hung up: "loop-drop" (calling party
    # control open loop, North America and the UK) or "tone" (busy tone, most of Europe).
    disconnect: str


COUNTRIES: dict[str, CountryTones] = {
    c.code: c
    for c in (
        CountryTones(
            "US",
            dial=Tone((350, 440)),
            ringback=Tone((440, 480), ((2000, 4000),)),
            busy=Tone((480, 620), ((500, 500),)),
            ring_cadence=((2000, 4000),),
            ring_frequency_hz=20,
            disconnect="loop-drop",
            flash_ms=600,
        ),
        CountryTones(
            "GB",
            dial=Tone((350, 450)),
            ringback=Tone((400, 450), ((400, 200), (400, 2000))),
            busy=Tone((400,), ((375, 375),)),
            ring_cadence=((400, 200), (400, 2000)),
            ring_frequency_hz=25,
            disconnect="loop-drop",
            flash_ms=100,
        ),
        CountryTones(
            "DE",
            dial=Tone((425,)),
            ringback=Tone((425,), ((1000, 4000),)),
            busy=Tone((425,), ((480, 480),)),
            ring_cadence=((1000, 4000),),
            ring_frequency_hz=25,
            disconnect="tone",
            flash_ms=100,
        ),
        CountryTones(
            "FR",
            dial=Tone((440,)),
            ringback=Tone((440,), ((1500, 3500),)),
            busy=Tone((440,), ((500, 500),)),
            ring_cadence=((1500, 3500),),
            ring_frequency_hz=50,
            disconnect="tone",
            flash_ms=270,
        ),
        CountryTones(
            "IT",
            dial=Tone((425,), ((200, 200), (600, 1000))),
            ringback=Tone((425,), ((1000, 4000),)),
            busy=Tone((425,), ((500, 500),)),
            ring_cadence=((1000, 4000),),
            ring_frequency_hz=25,
            disconnect="tone",
            flash_ms=100,
        ),
    )
}


def country(code: str) -> CountryTones:
    try:
        return COUNTRIES[code.upper()]
    except KeyError:
        raise ValueError(
            f"unknown country {code!r}; the simulator knows {', '.join(sorted(COUNTRIES))}"
        ) from None
