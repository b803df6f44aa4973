"""``ponte sim``: run the line-card simulator, and drive a running one from the shell.

    ponte sim start --fxs 4 --fxo 2 --listen socket://127.0.0.1:7000
    ponte sim handset 1 off-hook
    ponte sim handset 1 dial 102
    ponte sim co ring 1 --caller-id 5551234

Every command but ``start`` talks to the running simulator over its control socket
(``--control PATH``; default ``$PONTE_SIM_CONTROL``, else ``$XDG_RUNTIME_DIR/ponte-sim.sock``,
else ``/tmp/ponte-sim-<uid>.sock``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drivers.sim.signals import SignalKit

HELP = "line-card simulator: start one, or drive its handsets and central office"


def _common() -> argparse.ArgumentParser:
    # Accepted anywhere on the line; SUPPRESS keeps a leaf from resetting an earlier value.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--control",
        type=Path,
        default=argparse.SUPPRESS,
        help="control socket of the simulator (default: $PONTE_SIM_CONTROL, ...)",
    )
    return common


COMMON = _common()


def _audio_actions(sub: Any, *, numbered: bool) -> None:
    """play / tone / stop-audio / record / stop-recording for handsets and lines."""

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, parents=[COMMON])
        if numbered:
            parser.add_argument("number", type=int, help="exchange line (1 = first FXO port)")
        return parser

    play = add("play", "play a WAV file into the line")
    play.add_argument("file", type=Path)
    tone = add("tone", "play a tone (sum of sines) until stop-audio")
    tone.add_argument("freqs", type=float, nargs="+", metavar="HZ")
    tone.add_argument("--level", type=float, default=-13.0, help="dBm0 per frequency")
    add("stop-audio", "stop playing")
    record = add("record", "record what is heard to a WAV file (written on stop-recording)")
    record.add_argument("file", type=Path)
    record.add_argument("--seconds", type=float, help="stop by itself after this long")
    add("stop-recording", "stop recording and write the file")
    add("status", "show the state")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--control", type=Path, default=None, help="control socket of the simulator"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    start = commands.add_parser("start", help="run a simulator in the foreground", parents=[COMMON])
    start.add_argument("--fxs", type=int, default=4, help="FXS ports with handsets (4)")
    start.add_argument("--fxo", type=int, default=2, help="FXO ports to the exchange (2)")
    start.add_argument(
        "--listen",
        default="socket://127.0.0.1:0",
        help="UART: socket://HOST:PORT (port 0 picks one), pty, or pty:LINKPATH",
    )
    start.add_argument("--audio-port", type=int, default=0, help="PCM TCP port on 127.0.0.1")
    start.add_argument(
        "--country", default="US", help="exchange tones, cadences and caller ID (US)"
    )
    start.add_argument(
        "--no-card-dtmf", action="store_true", help="the card does not report DTMF digits"
    )
    start.add_argument("--seed", type=int, help="seed for boot ids (reproducible runs)")
    start.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    phone = commands.add_parser(
        "softphone",
        help="run a SIP softphone (baresip) on 127.0.0.1 in the foreground",
        parents=[COMMON],
    )
    phone.add_argument("--dir", type=Path, default=Path("var/softphone"), help="its files")
    phone.add_argument("--port", type=int, default=5070, help="SIP port (5070)")
    phone.add_argument("--user", default="201", help="its number (201)")

    for name, text in (("status", "show the whole simulator"), ("stop", "stop the simulator")):
        commands.add_parser(name, help=text, parents=[COMMON])

    handset = commands.add_parser(
        "handset", help="act on the phone of an FXS port", parents=[COMMON]
    )
    handset.add_argument("number", type=int, help="handset (= FXS port) number, from 1")
    hs = handset.add_subparsers(dest="action", required=True, metavar="ACTION")
    hs.add_parser("off-hook", help="lift the handset", parents=[COMMON])
    hs.add_parser("on-hook", help="hang up", parents=[COMMON])
    flash = hs.add_parser("flash", help="hook flash", parents=[COMMON])
    flash.add_argument("--ms", type=int, help="duration (default: the country's)")
    dial = hs.add_parser("dial", help="dial digits (DTMF unless --pulse)", parents=[COMMON])
    dial.add_argument("digits")
    dial.add_argument("--pulse", action="store_true", help="decadic pulses (rotary phone)")
    dial.add_argument("--no-wait", action="store_true", help="return before dialling ends")
    answer = hs.add_parser(
        "auto-answer", help="lift the handset this long after it starts ringing", parents=[COMMON]
    )
    answer.add_argument("--seconds", type=float, help="omit to stop answering by itself")
    answer.add_argument("--hangup-after", type=float, help="and hang up this long after lifting")
    cwid = hs.add_parser(
        "call-waiting-id",
        help="caller ID on call waiting (type II): acknowledge with D or A, or off",
        parents=[COMMON],
    )
    cwid.add_argument("ack", choices=["D", "A", "off"])
    _audio_actions(hs, numbered=False)

    co = commands.add_parser(
        "co", help="act on the central office behind an FXO port", parents=[COMMON]
    )
    cs = co.add_subparsers(dest="action", required=True, metavar="ACTION")
    ring = cs.add_parser("ring", help="ring the line (an incoming call)", parents=[COMMON])
    ring.add_argument("number", type=int, help="exchange line (1 = first FXO port)")
    ring.add_argument("--caller-id", help="calling number (digits)")
    ring.add_argument("--name", help="calling name (sent with the number where the country can)")
    for name, text in (
        ("cancel", "the caller gives up before the line answers"),
        ("answer", "the far end answers the call the line made"),
    ):
        cs.add_parser(name, help=text, parents=[COMMON]).add_argument("number", type=int)
    disconnect = cs.add_parser("disconnect", help="the far end hangs up", parents=[COMMON])
    disconnect.add_argument("number", type=int)
    disconnect.add_argument(
        "--mode", choices=["tone", "reversal", "loop-drop"], help="default: the country's"
    )
    auto = cs.add_parser(
        "auto-answer", help="far end answers this long after dialling", parents=[COMMON]
    )
    auto.add_argument("number", type=int)
    auto.add_argument("--seconds", type=float, help="omit to answer only on 'co answer'")
    reversal = cs.add_parser(
        "answer-reversal", help="signal answer by polarity reversal", parents=[COMMON]
    )
    reversal.add_argument("number", type=int)
    reversal.add_argument("enable", choices=["on", "off"])
    keys = cs.add_parser("dtmf", help="the far party presses keys (in a call)", parents=[COMMON])
    keys.add_argument("number", type=int)
    keys.add_argument("digits")
    _audio_actions(cs, numbered=True)

    card = commands.add_parser(
        "card", help="card-level faults: reset, unplug, garbage", parents=[COMMON]
    )
    ca = card.add_subparsers(dest="action", required=True, metavar="ACTION")
    ca.add_parser("reset", help="reboot the card mid-stream", parents=[COMMON])
    ca.add_parser("unplug", help="cut the UART (the host must notice within 1 s)", parents=[COMMON])
    ca.add_parser("plug", help="reconnect the UART", parents=[COMMON])
    garbage = ca.add_parser("garbage", help="send raw bytes to the host", parents=[COMMON])
    garbage.add_argument("hex", help="bytes in hexadecimal, e.g. deadbeef00")
    fault = ca.add_parser("fault", help="raise (or --clear) a port fault", parents=[COMMON])
    fault.add_argument("port", type=int)
    fault.add_argument("kind", choices=["over-current", "thermal", "foreign-voltage"])
    fault.add_argument("--clear", action="store_true")


def _request(args: argparse.Namespace) -> dict[str, Any]:
    req: dict[str, Any] = {"target": args.command}
    if args.command in ("status", "stop"):
        return req
    req["action"] = args.action
    if args.command in ("handset", "co"):
        req["number"] = args.number
    keys = (
        "digits", "pulse", "ms", "seconds", "caller_id", "name", "mode", "hex", "port", "kind",
        "hangup_after",
    )  # fmt: skip
    for key in keys:
        value = getattr(args, key, None)
        if value is not None:
            req[key] = value
    if getattr(args, "file", None) is not None:
        req["file"] = str(args.file.resolve())
    if getattr(args, "freqs", None) is not None:
        req["freqs"] = args.freqs
        req["level"] = args.level
    if getattr(args, "enable", None) is not None:
        req["enable"] = args.enable == "on"
    if args.command == "card" and args.action == "fault":
        req["active"] = not args.clear
    if getattr(args, "ack", None) is not None:
        req["ack"] = None if args.ack == "off" else args.ack
    return req


def _start(args: argparse.Namespace, control: Path, signals: SignalKit | None) -> int:
    import asyncio
    import logging
    import signal

    from drivers.sim.endpoint import SimError
    from drivers.sim.simulator import Simulator

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def run() -> int:
        sim = Simulator(
            fxs=args.fxs,
            fxo=args.fxo,
            listen=args.listen,
            audio_port=args.audio_port,
            control=control,
            country=args.country,
            card_dtmf=not args.no_card_dtmf,
            seed=args.seed,
            signals=signals,
        )
        try:
            await sim.start()
        except (SimError, OSError) as exc:
            print(f"ponte sim: cannot start: {exc}", file=sys.stderr)
            return 1
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(sim.stop()))
        print(f"linecard: {sim.url}", flush=True)
        print(f"audio:    {sim.audio_url}", flush=True)
        print(f"control:  {control}", flush=True)
        await sim.wait_stopped()
        return 0

    return asyncio.run(run())


def main(args: argparse.Namespace, signals: SignalKit | None = None) -> int:
    """Run ``args``; ``start`` uses ``signals`` (default: the simulator's built-in ones)."""
    from drivers.sim.control import default_control_path, request

    control: Path = args.control or default_control_path()
    if args.command == "start":
        return _start(args, control, signals)
    if args.command == "softphone":
        from drivers.sim.softphone import SoftphoneError, run

        print(
            f"softphone {args.user} on 127.0.0.1:{args.port}: '/dial 101@127.0.0.1' calls phone 1"
        )
        print("('a' answers, 'b' hangs up, 'q' quits; what it hears goes to --dir/heard)")
        try:
            run(args.dir, port=args.port, user=args.user)
        except SoftphoneError as exc:
            print(f"ponte sim softphone: {exc}", file=sys.stderr)
            return 1
        return 0  # not reached: baresip replaced this process
    req = _request(args)
    try:
        response = request(control, req)
    except (FileNotFoundError, ConnectionRefusedError):
        print(
            f"ponte sim: no simulator is running at {control} (start one with 'ponte sim start')",
            file=sys.stderr,
        )
        return 1
    except (OSError, ValueError) as exc:
        print(f"ponte sim: control socket {control}: {exc}", file=sys.stderr)
        return 1
    if not response.get("ok"):
        print(f"ponte sim: {response.get('error')}", file=sys.stderr)
        return 1
    result = response.get("result") or {}
    if args.command == "status" or getattr(args, "action", None) == "status":
        print(json.dumps(result, indent=2))
    else:
        print("ok" + "".join(f" {k}={v}" for k, v in result.items()))
    wait = result.get("ends_in") if isinstance(result, dict) else None
    if isinstance(wait, int | float) and wait > 0 and not getattr(args, "no_wait", False):
        time.sleep(wait)  # so that scripted steps follow the dialling or flash
    return 0
