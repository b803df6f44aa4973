"""SIP floods against one pjsua2 process (issue 4 section 5; docs/capacity.md).

- 300 INVITE/s for 30 s from one source with the flood guard: the process must survive;
- answered short calls as fast as sipp drives them (4 at a time) with the guard;
- the same short calls at 100/s without the guard, to show the limit is real (it aborts).
"""

from __future__ import annotations

from bench.sipflood import run_flood


def main() -> None:
    for rate, seconds, guard, limit in (
        (300, 30.0, True, 200),
        (1000, 10.0, True, 4),
        (100, 5.0, False, 200),
    ):
        r = run_flood(rate, seconds, guard=guard, limit=limit)
        label = f"{rate} INVITE/s x {seconds:.0f} s, {limit} open, guard {'on' if guard else 'off'}"
        target = "yes" if guard else "none"
        print(f"{label}: survived {'yes' if r.alive else 'NO'} (target {target})")
        print(f"   answered calls/s      {r.answered / r.elapsed_s:8.1f}  ({r.elapsed_s:.1f} s)")
        print(f"   refused by the guard  {r.sunk:8d}")
        print(f"   sipp ok / failed      {r.sipp_ok:8d} / {r.sipp_failed}")
        if not r.alive:
            print(f"   aborted with: {r.aborted_with[:150]}")
