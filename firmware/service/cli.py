"""``ponte run``: start the appliance (with the simulator unless a line card is named)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firmware.service.appliance import Options

HELP = "start the appliance (simulated line card unless --linecard is given)"

log = logging.getLogger("ponte")


def configure(parser: argparse.ArgumentParser) -> None:
    from firmware.store import default_data_dir

    parser.add_argument(
        "--simulate",
        action="store_true",
        help="run against the built-in line-card simulator (the default without --linecard)",
    )
    parser.add_argument(
        "--linecard",
        metavar="URL",
        help="line card serial URL: /dev/ttyS1, /dev/ttyUSB0, socket://HOST:PORT, a pty",
    )
    parser.add_argument(
        "--audio", metavar="URL", help="PCM socket of the line card (tcp://HOST:PORT)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="configuration and records (default: $PONTE_DATA_DIR or /var/lib/ponte)",
    )
    parser.add_argument("--fxs", type=int, default=4, help="simulated FXS ports (default 4)")
    parser.add_argument("--fxo", type=int, default=2, help="simulated FXO ports (default 2)")
    parser.add_argument(
        "--sim-control",
        type=Path,
        help="control socket of the simulator (default: DATA_DIR/sim.sock)",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument(
        "--stderr", action="store_true", help="log to stderr even under systemd's journal"
    )


def main(args: argparse.Namespace) -> int:
    from firmware.service import logs
    from firmware.service.appliance import Options

    if args.simulate and args.linecard:
        print("ponte run: --simulate and --linecard exclude each other", file=sys.stderr)
        return 2
    if not 1 <= args.fxs + args.fxo <= 32 or args.fxs < 0 or args.fxo < 0:
        print("ponte run: --fxs/--fxo: between 1 and 32 ports in all", file=sys.stderr)
        return 2
    logs.configure(args.log_level, force_stderr=args.stderr)
    options = Options(
        data_dir=args.data_dir,
        linecard=args.linecard,
        audio=args.audio,
        fxs=args.fxs,
        fxo=args.fxo,
        sim_control=args.sim_control,
    )
    try:
        return asyncio.run(_serve(options))
    except KeyboardInterrupt:
        return 0


async def _serve(options: Options) -> int:
    from drivers.linecard.link import LinkOpenError
    from firmware.service.appliance import Appliance
    from firmware.service.simulator import SimulatorError
    from firmware.store import StoreError

    appliance = Appliance(options)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await appliance.start()
    except (SimulatorError, StoreError, LinkOpenError, OSError, TimeoutError) as e:
        log.error("cannot start: %s", e)
        return 1
    if appliance.sim is not None:
        control = appliance.sim.args[appliance.sim.args.index("--control") + 1]
        log.info(
            "simulation ready: pick up a phone with "
            "'ponte sim --control %s handset 1 off-hook' and listen with "
            "'... handset 1 record dial.wav --seconds 3'",
            control,
        )
    await stop.wait()
    log.info("stopping")
    await appliance.stop()
    log.info("stopped")
    return 0
