"""Call-record store figures over 100k records: insert rate, summary, paging, CSV, retention."""

from __future__ import annotations

import io
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from firmware.store.legs import LegRecord, Party, Place, Quality
from firmware.store.records import RecordQuery, RecordStore

RECORDS = 100_000
BATCH = 100  # records per transaction, as the service writes a second's worth at a time
SINGLE = 300  # one-record transactions measured (each an fsync)
T0 = 1_760_000_000.0
SPAN_S = 90 * 86400.0  # three months of traffic


def _legs(n: int, seed: int = 1) -> list[LegRecord]:
    rng = random.Random(seed)
    places = [Place.port(p) for p in range(1, 7)] + [Place.trunk("office"), Place.trunk("backup")]
    out = []
    for i in range(n):
        t = T0 + rng.uniform(0, SPAN_S)
        answered = rng.random() < 0.6
        place = rng.choice(places)
        ip = place.kind == "trunk"
        out.append(
            LegRecord(
                id=f"leg-{i}",
                call=f"call-{i // 2}",
                direction=rng.choice(["inbound", "outbound", "internal"]),
                source=Party(f"0{rng.randrange(10**8, 10**9)}", rng.choice(["Ada", "Bob", ""])),
                destination=Party(str(rng.randrange(101, 107)), "Port"),
                where=place,
                start=t,
                answer=t + 5 if answered else None,
                end=t + 5 + (rng.uniform(10, 600) if answered else 0),
                disposition="answered" if answered else "no-answer",
                sip_code=200 if ip and answered else None,
                codec="PCMA" if ip else "",
                quality=Quality(3.2, 0.1, 4.38) if ip else None,
            )
        )
    return out


def _ms(fn: object, n: int = 5) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _show(what: str, value: float, unit: str, digits: int = 1) -> None:
    print(f"   {what:<40} {value:10.{digits}f} {unit}")


def main() -> None:
    # fsync cost depends on the file system: PONTE_BENCH_DIR=/var/lib/... measures the real one.
    base = os.environ.get("PONTE_BENCH_DIR", tempfile.gettempdir())
    legs = _legs(RECORDS)
    with tempfile.TemporaryDirectory(dir=base, prefix=".bench-records-") as tmp:
        store = RecordStore.open(tmp)
        started = time.perf_counter()
        for i in range(0, RECORDS, BATCH):
            store.insert(legs[i : i + BATCH])
        _show(f"insert, {BATCH} a transaction", RECORDS / (time.perf_counter() - started), "/s", 0)
        extra = _legs(SINGLE, seed=2)
        started = time.perf_counter()
        for leg in extra:
            store.insert([leg])
        _show(
            "insert, 1 a transaction (an fsync each)",
            SINGLE / (time.perf_counter() - started),
            "/s",
            0,
        )
        berlin = ZoneInfo("Europe/Berlin")
        month = (T0 + 30 * 86400, T0 + 60 * 86400)
        _show(f"summary, all {store.count()} records", _ms(lambda: store.summary(tz=berlin)), "ms")
        _show("summary, one month", _ms(lambda: store.summary(*month, berlin)), "ms")
        page = store.query(RecordQuery(), limit=100)
        _show(
            "list, first page of 100", _ms(lambda: store.query(RecordQuery(), limit=100)), "ms", 2
        )
        cursor = page.next_cursor
        _show(
            "list, next page by cursor",
            _ms(lambda: store.query(RecordQuery(), limit=100, cursor=cursor)),
            "ms",
            2,
        )
        _show(
            "list, port 3 in one month",
            _ms(lambda: store.query(RecordQuery(*month, port=3))),
            "ms",
            2,
        )
        out = io.StringIO(newline="")
        started = time.perf_counter()
        rows = store.export_csv(out, RecordQuery(), berlin)
        _show(f"CSV export, {rows} rows", (time.perf_counter() - started) * 1000, "ms", 0)
        _show("CSV size", len(out.getvalue().encode()) / 2**20, "MiB")
        started = time.perf_counter()
        gone = store.prune(T0 + SPAN_S, retention_days=60, max_rows=50_000)
        _show(f"retention, {gone} deleted", (time.perf_counter() - started) * 1000, "ms", 0)
        store.close()
        size = sum(f.stat().st_size for f in Path(tmp).iterdir())
        _show("database file (freed pages are reused)", size / 2**20, "MiB")
        print(f"   (directory: {base})")


if __name__ == "__main__":
    main()
