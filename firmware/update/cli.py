"""``ponte update``: install a signed bundle, show the slots, mark good, roll back."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any

HELP = "install signed firmware bundles; A/B slot status, mark-good and rollback"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", help="simulated device directory (or $PONTE_UPDATE_ROOT)")
    parser.add_argument("--config", help="device config (default /etc/ponte/update.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("install", help="verify and install a bundle from a file or URL")
    p.add_argument("source", help="bundle file, or http(s):// URL")
    p.add_argument(
        "--allow-same-security-version",
        action="store_true",
        help="accept a bundle whose security version equals the rollback floor",
    )
    p.add_argument(
        "--progress",
        choices=("auto", "bar", "lines", "none"),
        default="auto",
        help="progress display (lines: one machine-readable line per MiB)",
    )
    p.add_argument("--download-dir", help="where a URL is downloaded (default: state dir)")
    p = sub.add_parser("status", help="show both slots, the boot order and the floor")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("mark-good", help="confirm the running slot (health check passed)")
    p.add_argument("--slot", choices=("A", "B"), help="refuse unless this is the running slot")
    p = sub.add_parser("rollback", help="boot the other (good) slot next")
    p.add_argument("--allow-below-floor", action="store_true")
    sub.add_parser("boot", help="after boot: record a slot that failed to come up")
    p = sub.add_parser("health-check", help="probe the service; mark the slot good if healthy")
    p.add_argument("--deadline", type=float, default=120.0, help="seconds for all probes")
    p.add_argument("--trunk", action="append", default=[], help="HOST[:PORT] (SIP, UDP)")
    p.add_argument("--check-cmd", action="append", default=[], help="command that must exit 0")
    p.add_argument("--api-socket", help="control API socket that must accept")
    p.add_argument("--no-mark", action="store_true", help="only report")
    sub.add_parser("simulate-boot", help="simulator only: power-cycle the device")
    p = sub.add_parser("init", help="simulator only: create a device under --root")
    p.add_argument("--compatible", required=True)
    p.add_argument("--keyring", required=True, help="keyring file (ponte bundle keyring)")
    p.add_argument("--security-version", type=int, default=0)
    p.add_argument("--version", default="factory")


class _Progress:
    def __init__(self, mode: str) -> None:
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.mode = mode
        self.meters: dict[str, Any] = {}
        self.last_step = -1
        self.last_draw = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        from firmware.update.progress import Meter

        if self.mode == "none":
            return
        now = time.monotonic()
        meter = self.meters.get(phase)
        if meter is None:
            meter = self.meters[phase] = Meter(total, now)
            self.last_step = -1
        snap = meter.update(done, now)
        if self.mode == "lines":
            step = done // (1024 * 1024)
            if step != self.last_step or done == total:
                self.last_step = step
                print(f"progress {phase} {done} {total}", flush=True)
        elif now - self.last_draw > 0.2 or done == total:
            self.last_draw = now
            end = "\n" if done == total else ""
            # \x1b[K clears what a longer previous line left behind.
            print(f"\r{snap.render(phase)}\x1b[K", end=end, file=sys.stderr, flush=True)


def _device(args: argparse.Namespace) -> Any:
    from firmware.update.device import Device, DeviceConfig, config_path

    return Device(DeviceConfig.load(config_path(args.root, args.config)))


def main(args: argparse.Namespace) -> int:
    from firmware.update.errors import UpdateError

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(message)s",
    )
    try:
        return _ACTIONS[args.action](args)
    except (UpdateError, OSError) as exc:
        print(f"ponte update {args.action}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _install(args: argparse.Namespace) -> int:
    from firmware.update import install as inst
    from firmware.update.download import download

    dev = _device(args)
    progress = _Progress(args.progress)
    source = args.source
    downloaded = None
    if source.startswith(("http://", "https://")):
        directory = args.download_dir or dev.config.state_dir
        name = os.path.basename(source.split("?", 1)[0]) or "bundle"
        downloaded = os.path.join(directory, f"download-{name}")
        download(source, downloaded, progress=progress)  # keeps a .part to resume
        source = downloaded
    opts = inst.Options(allow_equal_security_version=args.allow_same_security_version)
    try:
        result = inst.Installer(dev, options=opts, progress=progress).install(source)
    finally:
        if downloaded is not None:
            os.unlink(downloaded)  # a whole bundle on /data is not worth keeping
    print(
        f"installed {result.version} (security version {result.security_version}) "
        f"into slot {result.target}; it boots next and must pass its health check"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    import json

    from firmware.update import install as inst

    s = inst.status(_device(args))
    if args.json:
        print(
            json.dumps(
                {
                    "booted": s.booted,
                    "floor": s.state.floor,
                    "last_good": s.state.last_good,
                    "order": list(s.env.order),
                    "slots": {
                        n: {**r.to_obj(), "attempts_left": s.env.left[n]}
                        for n, r in s.state.slots.items()
                    },
                },
                indent=2,
                sort_keys=True,
            )
        )
        return 0
    print(f"booted slot:     {s.booted}")
    print(f"boot order:      {' '.join(s.env.order) or '(empty)'}")
    print(f"last good:       {s.state.last_good}")
    print(f"rollback floor:  security version {s.state.floor}")
    for name, rec in s.state.slots.items():
        mark = "*" if name == s.booted else " "
        print(
            f"{mark} slot {name}: {rec.status:<10} {rec.version or '-':<16} "
            f"security {rec.security_version}  attempts left {s.env.left[name]}"
        )
    return 0


def _mark_good(args: argparse.Namespace) -> int:
    from firmware.update import install as inst

    s = inst.mark_good(_device(args), args.slot)
    print(f"slot {s.last_good} marked good; rollback floor is now {s.floor}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from firmware.update import install as inst

    target = inst.rollback(_device(args), allow_below_floor=args.allow_below_floor)
    print(f"slot {target} boots next; reboot to roll back")
    return 0


def _boot(args: argparse.Namespace) -> int:
    from firmware.update import install as inst

    inst.after_boot(_device(args))
    return 0


def _health_check(args: argparse.Namespace) -> int:
    import asyncio
    import shlex

    from firmware.update import health
    from firmware.update import install as inst

    dev = _device(args)
    cfg = dev.config
    probes: list[tuple[str, health.Probe]] = []
    for spec in [*cfg.health_trunks, *args.trunk]:
        host, _, port = spec.rpartition(":") if ":" in spec else (spec, "", "")
        probes.append((f"trunk {spec}", health.sip_trunk_probe(host, int(port or health.SIP_PORT))))
    commands = [*cfg.health_commands, *(tuple(shlex.split(c)) for c in args.check_cmd)]
    for argv in commands:
        probes.append((f"command {' '.join(argv)}", health.command_probe(argv)))
    socket = args.api_socket or cfg.api_socket
    if socket:
        probes.append((f"control API {socket}", health.socket_probe(socket)))
    report = asyncio.run(health.run(probes, args.deadline))
    print(report.render() or "no probes configured: the service reported ready")
    if not report.ok:
        print("health check failed: slot not marked good", file=sys.stderr)
        return 1
    if not args.no_mark:
        s = inst.mark_good(dev)
        print(f"slot {s.last_good} marked good; rollback floor is now {s.floor}")
    return 0


def _simulate_boot(args: argparse.Namespace) -> int:
    from firmware.update import install as inst
    from firmware.update.bootloader import FileBootloader
    from firmware.update.errors import Refused

    dev = _device(args)
    if not isinstance(dev.bootloader, FileBootloader):
        raise Refused("simulate-boot needs the file bootloader (a simulated device)")
    choice = dev.bootloader.power_on()
    inst.after_boot(dev)
    note = " (fallback: no slot had attempts left)" if choice.fallback else ""
    print(f"booted slot {choice.slot}{note}")
    return 0


def _init(args: argparse.Namespace) -> int:
    from firmware.update.device import ROOT_ENV, init_simulated
    from firmware.update.errors import Refused
    from firmware.update.keyring import Keyring

    root = args.root or os.environ.get(ROOT_ENV)
    if not root:
        raise Refused("init needs --root DIR (or PONTE_UPDATE_ROOT)")
    with open(args.keyring, "rb") as f:
        ring = Keyring.from_bytes(f.read(64 * 1024))
    init_simulated(
        root,
        compatible=args.compatible,
        keyring=ring,
        version=args.version,
        security_version=args.security_version,
    )
    print(f"simulated device in {root}: slot A good ({args.version}), slot B empty")
    return 0


_ACTIONS = {
    "install": _install,
    "status": _status,
    "mark-good": _mark_good,
    "rollback": _rollback,
    "boot": _boot,
    "health-check": _health_check,
    "simulate-boot": _simulate_boot,
    "init": _init,
}

__all__ = ["HELP", "configure", "main"]
