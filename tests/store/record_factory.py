"""Leg records made from a number, for the record-store tests and their child processes."""

from __future__ import annotations

import random

from firmware.store.legs import Direction, Disposition, LegRecord, Party, Place, Quality

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z


def leg_for(seq: int, start: float = T0) -> LegRecord:
    """Record number ``seq`` (1-based), entirely derived from it: a survivor can check it."""
    answered = seq % 3 != 0
    return LegRecord(
        id=f"leg-{seq}",
        call=f"call-{(seq + 1) // 2}",
        direction="internal",
        source=Party(f"1{seq % 100:02d}", f"caller {seq}"),
        destination=Party("102", "Bob"),
        where=Place.port(1 + seq % 4),
        start=start + seq,
        answer=start + seq + 2 if answered else None,
        end=start + seq + 2 + seq % 50,
        disposition="answered" if answered else "busy",
        sip_code=None if answered else 486,
    )


def random_leg(rng: random.Random, i: int, start: float, span_s: float) -> LegRecord:
    paired = rng.random() < 0.5  # two legs of one call, seconds apart
    base = random.Random(i // 2).uniform(0, span_s) if paired else rng.uniform(0, span_s)
    t = start + base + (rng.uniform(0, 5) if paired else 0.0)
    answered = rng.random() < 0.6
    ring = rng.uniform(0, 30)
    talk = rng.uniform(0, 900) if answered else 0.0
    place = rng.choice(
        [Place.port(1), Place.port(2), Place.port(5), Place.trunk("office"), Place.ip("192.0.2.9")]
    )
    direction: Direction = rng.choice(["inbound", "outbound", "internal"])
    disposition: Disposition = (
        "answered" if answered else rng.choice(["busy", "no-answer", "failed", "cancelled"])
    )
    quality = None
    if place.kind != "port":
        quality = Quality(round(rng.uniform(0, 40), 1), round(rng.uniform(0, 5), 2), 4.1)
    return LegRecord(
        id=f"l{i}",
        call=f"c{i // 2}" if paired else f"solo{i}",
        direction=direction,
        source=Party(f"{rng.randrange(100, 999)}", rng.choice(["Ada", "Bob", ""])),
        destination=Party(f"0{rng.randrange(10**6, 10**7)}"),
        where=place,
        start=round(t, 3),
        answer=round(t + ring, 3) if answered else None,
        end=round(t + ring + talk, 3),
        disposition=disposition,
        sip_code=200 if answered and place.kind != "port" else None,
        codec="PCMA" if quality else "",
        quality=quality,
    )
