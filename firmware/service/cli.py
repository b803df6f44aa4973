"""``ponte run``: start the appliance (with the simulator unless a line card is named)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firmware.service.appliance import Appliance, Options
    from firmware.service.apps import Apps

HELP = "start the appliance (simulated line card unless --linecard is given)"

log = logging.getLogger("ponte")

SYSTEM_NETWORK_FILE = Path("/etc/systemd/network/10-ponte.network")


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
    parser.add_argument(
        "--api-socket",
        type=Path,
        help="control API socket (default: $PONTE_API_SOCKET, else DATA_DIR/api.sock when "
        "simulating, else /run/ponte/api.sock)",
    )
    parser.add_argument(
        "--network-file",
        type=Path,
        help="where the network settings are written (default: DATA_DIR/network/10-ponte."
        "network when simulating, else /etc/systemd/network/10-ponte.network)",
    )
    parser.add_argument(
        "--sip-host",
        metavar="ADDRESS",
        help="address SIP and RTP bind to (default: 127.0.0.1 when simulating, else 0.0.0.0)",
    )
    parser.add_argument(
        "--sip-port",
        type=int,
        metavar="PORT",
        help="SIP UDP port instead of the configured one (0: any free port)",
    )
    parser.add_argument(
        "--no-sip", action="store_true", help="do not start the SIP stack (local calls only)"
    )
    parser.add_argument(
        "--api-docs",
        action="store_true",
        help="print the table of this service's API methods for docs/api.md and exit",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument(
        "--stderr", action="store_true", help="log to stderr even under systemd's journal"
    )


def main(args: argparse.Namespace) -> int:
    from firmware.service import logs
    from firmware.service.appliance import Options

    if args.api_docs:
        print(api_docs_block())
        return 0
    if args.simulate and args.linecard:
        print("ponte run: --simulate and --linecard exclude each other", file=sys.stderr)
        return 2
    if args.sip_port is not None and not 0 <= args.sip_port <= 65535:
        print("ponte run: --sip-port: 0..65535", file=sys.stderr)
        return 2
    if not 1 <= args.fxs + args.fxo <= 32 or args.fxs < 0 or args.fxo < 0:
        print("ponte run: --fxs/--fxo: between 1 and 32 ports in all", file=sys.stderr)
        return 2
    logs.configure(args.log_level, force_stderr=args.stderr)
    simulated = args.linecard is None
    api_socket = args.api_socket or _default_api_socket(args.data_dir, simulated)
    network_file = args.network_file or (
        args.data_dir / "network" / "10-ponte.network" if simulated else SYSTEM_NETWORK_FILE
    )
    options = Options(
        data_dir=args.data_dir,
        linecard=args.linecard,
        audio=args.audio,
        fxs=args.fxs,
        fxo=args.fxo,
        sim_control=args.sim_control,
        sip=not args.no_sip,
        sip_host=args.sip_host,
        sip_port=args.sip_port,
    )
    try:
        return asyncio.run(_serve(options, api_socket, network_file))
    except KeyboardInterrupt:
        return 0


def api_docs_block() -> str:
    """The generated methods table, from a registry built exactly as ``_serve`` builds it."""
    from firmware.api.auth import MemoryCredentialStore
    from firmware.api.server import ApiServer
    from firmware.service.appliance import Appliance, Options
    from firmware.service.control import ControlApi, methods_doc_block
    from firmware.service.logring import LogRing
    from firmware.service.records import RecordsService, register_records_api

    server = ApiServer("/nonexistent/api.sock", credentials=MemoryCredentialStore())
    appliance = Appliance(Options(data_dir=Path("/nonexistent")))
    ControlApi(
        server,
        appliance,
        data_dir=Path("/nonexistent"),
        network_file=None,
        logs=LogRing(),
        simulated=True,
    )
    register_records_api(server, RecordsService(Path("/nonexistent"), config=lambda: None))
    return methods_doc_block(server)


def _default_api_socket(data_dir: Path, simulated: bool) -> Path:
    from firmware.api.server import DEFAULT_SOCKET_PATH, SOCKET_ENV

    if os.environ.get(SOCKET_ENV):
        return Path(os.environ[SOCKET_ENV])
    return data_dir / "api.sock" if simulated else Path(DEFAULT_SOCKET_PATH)


async def _start_apps(appliance: Appliance, data_dir: Path) -> Apps | None:
    """Voicemail on the lines: the store (recovered), the prompts, the MWI state."""
    from firmware.prompts.library import PromptLibrary
    from firmware.service.apps import Apps
    from firmware.store import StoreError
    from firmware.store.voicemail import VoicemailStore

    config, calls = appliance.config, appliance.calls
    if config is None or calls is None:
        return None
    try:
        store = await asyncio.to_thread(VoicemailStore.open, data_dir, config.voicemail)
    except (StoreError, OSError) as e:
        log.error("voicemail is not available: %s", e)
        return None
    appliance.voicemail = store
    apps = Apps(
        appliance,
        store,
        PromptLibrary.for_data_dir(data_dir),
        calls.app_finished,
        calls.app_transfer,
    )
    calls.apps = apps
    apps.start()
    return apps


async def _serve(options: Options, api_socket: Path, network_file: Path) -> int:
    from drivers.linecard.link import LinkOpenError
    from firmware.api.credentials import ConfigCredentialStore
    from firmware.api.server import ApiServer, ServerStartError
    from firmware.service.appliance import Appliance
    from firmware.service.control import ControlApi
    from firmware.service.logring import LogRing
    from firmware.service.records import RecordsService, register_records_api
    from firmware.service.simulator import SimulatorError
    from firmware.service.sipfirewall import BAN_SYNC_INTERVAL_S, SipFirewallService
    from firmware.store import Config, StoreError

    ring = LogRing()
    logging.getLogger().addHandler(ring)
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
    assert appliance.store is not None and appliance.config is not None
    firewall = SipFirewallService(appliance.raise_alarm, appliance.clear_alarm)
    await firewall.start(appliance.config, simulated=options.linecard is None)
    assert appliance.store is not None
    records = RecordsService(options.data_dir, config=lambda: appliance.config)
    try:
        await records.start()
    except StoreError as e:
        log.error("cannot open the call records: %s", e)
        await appliance.stop()
        return 1
    apps = await _start_apps(appliance, options.data_dir)
    server = ApiServer(api_socket, credentials=ConfigCredentialStore(appliance.store))
    control = ControlApi(
        server,
        appliance,
        data_dir=options.data_dir,
        network_file=network_file,
        logs=ring,
        simulated=options.linecard is None,
    )
    register_records_api(server, records)
    if apps is not None:
        apps.conferences = control.conferences  # conference.list shows the rooms in use
    if appliance.calls is not None:
        appliance.calls.recordings = lambda: control.recordings
    if appliance.calls is not None:
        appliance.calls.attach_records(records.recorder)
    try:
        await server.start()
    except (ServerStartError, OSError) as e:
        log.error("cannot start the control API on %s: %s", api_socket, e)
        await appliance.stop()
        await firewall.stop()
        await records.stop()
        return 1
    control.attach()
    records.publish = server.publish

    async def reload_firewall(config: Config) -> None:
        await firewall.reload(config, simulated=options.linecard is None)

    appliance.config_listeners.append(reload_firewall)

    # Bans the SIP policy decides go into the kernel too (when the firewall is loaded); the
    # SIP stack may be rebuilt by a new configuration, so ask for it each time.
    async def keep_bans_in_step() -> None:
        while True:
            await asyncio.sleep(BAN_SYNC_INTERVAL_S)
            if appliance.sip is not None:
                try:
                    await firewall.sync_bans(appliance.sip.endpoint)
                except Exception as exc:  # the SIP stack restarting under us: next time
                    log.debug("SIP firewall ban sync skipped: %s", exc)

    bans = asyncio.create_task(keep_bans_in_step(), name="sip-bans")
    if appliance.sim is not None:
        sim_control = appliance.sim.args[appliance.sim.args.index("--control") + 1]
        log.info(
            "simulation ready: pick up a phone with "
            "'ponte sim --control %s handset 1 off-hook' and listen with "
            "'... handset 1 record dial.wav --seconds 3'",
            sim_control,
        )
    await stop.wait()
    log.info("stopping")
    # Clients first (they get shutting_down, jobs are cancelled), then the appliance
    # whose state they were watching.
    control.detach()
    records.publish = lambda topic, data: None
    await server.stop()
    if apps is not None:
        await apps.stop()
    # Records last: calls ended while the appliance stops still reach the store.
    bans.cancel()
    await appliance.stop()
    if appliance.voicemail is not None:
        appliance.voicemail.close()
    await firewall.stop()
    await records.stop()
    logging.getLogger().removeHandler(ring)
    log.info("stopped")
    return 0
