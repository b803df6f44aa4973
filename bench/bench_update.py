"""Verify-and-install throughput and peak extra memory of the A/B installer.

Each run happens in a fresh subprocess so that its peak RSS (ru_maxrss) belongs to
that install alone; the baseline is taken after imports and device set-up, so the
difference is what verifying and installing the bundle added.  Payloads live in a
temporary directory and are removed afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from firmware.update.device import init_simulated
from firmware.update.keyring import Keyring
from image import bundle, keys

MIB = 1024 * 1024
TARGET_MEMORY_MIB = 64  # issue 7: peak extra memory for a 200 MB bundle

CHILD = r"""
import json, sys, time
from firmware.update.device import Device, DeviceConfig
from firmware.update.install import Installer

def status(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))

dev = Device(DeviceConfig.load(sys.argv[1]))
# Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS (proc(5)), so
# the peak below belongs to the install alone, not to the imports before it.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS")
t = time.perf_counter()
Installer(dev).install(sys.argv[2])
elapsed = time.perf_counter() - t
print(json.dumps({"elapsed": elapsed, "base_kib": base, "peak_kib": status("VmHWM")}))
"""


def _payload(path: Path, size: int) -> None:
    # Each MiB: a quarter random, the rest text-like runs; xz gets it to about a third.
    with open(path, "wb") as f:
        for n in range(size // MIB):
            text = (b"ponte %d " % n) * (3 * MIB // 4 // 8)
            f.write(os.urandom(MIB // 4) + text[: MIB - MIB // 4])


def _run(work: Path, size_mib: int, compression: str) -> dict[str, float]:
    key = keys.generate()
    ring = Keyring.create([keys.public_bytes(key)])
    root = work / f"dev-{size_mib}-{compression}"
    init_simulated(str(root), compatible="bench", keyring=ring, security_version=1)
    src = work / f"payload-{size_mib}.img"
    if not src.exists():
        _payload(src, size_mib * MIB)
    out = work / f"b-{size_mib}-{compression}.pbdl"
    bundle.build(
        str(out),
        [bundle.Payload("rootfs", str(src), compression)],
        compatible="bench",
        version="b",
        security_version=2,
        signers=[key],
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root / "update.toml"), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    r = json.loads(proc.stdout)
    return {
        "bundle_mb": out.stat().st_size / 1e6,
        "payload_mb": size_mib * MIB / 1e6,
        "elapsed": r["elapsed"],
        "extra_mib": (r["peak_kib"] - r["base_kib"]) / 1024,
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ponte-bench-update-") as tmp:
        work = Path(tmp)
        for size, comp in ((200, "none"), (50, "none"), (200, "xz"), (50, "xz")):
            r = _run(work, size, comp)
            rate = r["payload_mb"] / r["elapsed"]
            print(
                f"install {size} MiB payload ({comp}, bundle {r['bundle_mb']:.0f} MB): "
                f"{rate:7.1f} MB/s  ({r['elapsed']:.2f} s verify + write + read-back)"
            )
            target = f"  target <= {TARGET_MEMORY_MIB}" if size == 200 else ""
            print(f"  peak extra memory                        {r['extra_mib']:7.1f} MiB{target}")


if __name__ == "__main__":
    main()
