"""``ponte api``: call methods, watch events and list methods from a shell."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

HELP = "talk to the control API: call a method, watch events, list methods"


def configure(parser: argparse.ArgumentParser) -> None:
    from firmware.api.client import SOCKET_ENV, default_socket_path

    parser.add_argument(
        "--socket",
        default=default_socket_path(),
        metavar="PATH",
        help=f"control socket (default: ${SOCKET_ENV} or /run/ponte/api.sock)",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    call = sub.add_parser("call", help="call METHOD with a JSON object of params")
    call.add_argument("method")
    call.add_argument("params", nargs="?", default="{}", help="JSON object (default {})")
    call.add_argument("--timeout", type=float, default=None, help="seconds to wait")
    watch = sub.add_parser("watch", help="print events as JSON lines until interrupted")
    watch.add_argument("topics", nargs="*", default=["*"], help="topic patterns (default *)")
    watch.add_argument("--count", type=int, default=None, help="stop after N events")
    methods = sub.add_parser("methods", help="list the server's methods")
    methods.add_argument("--json", action="store_true", help="full schemas as JSON")
    sub.add_parser("docs", help="print docs/api.md's generated method table (offline)")
    serve = sub.add_parser("serve", help="run a bare API server (built-in methods only)")
    serve.add_argument(
        "--credentials", required=True, metavar="FILE", help="admin password hash file"
    )


def main(args: argparse.Namespace) -> int:
    from firmware.api.client import ApiError

    try:
        if args.action == "call":
            return _call(args)
        if args.action == "watch":
            return asyncio.run(_watch(args))
        if args.action == "methods":
            return _methods(args)
        if args.action == "docs":
            return _docs()
        if args.action == "serve":
            return _serve(args)
    except ApiError as exc:
        print(f"ponte api: {exc}", file=sys.stderr)
        if exc.data:
            print(json.dumps(exc.data), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unhandled action {args.action}")


def _call(args: argparse.Namespace) -> int:
    from firmware.api.client import SyncApiClient

    try:
        params = json.loads(args.params)
    except ValueError as exc:
        print(f"ponte api: PARAMS is not JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(params, dict):
        print("ponte api: PARAMS must be a JSON object", file=sys.stderr)
        return 2
    with SyncApiClient(args.socket, client_name="ponte-cli") as api:
        result = api.call(args.method, params, timeout=args.timeout)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


async def _watch(args: argparse.Namespace) -> int:
    from firmware.api.client import ApiClient

    async with ApiClient(args.socket, client_name="ponte-cli-watch") as api:
        await api.subscribe(*args.topics)
        seen = 0
        while args.count is None or seen < args.count:
            event = await api.next_event()
            line = {"event": event.topic, "seq": event.seq, "data": event.data}
            print(json.dumps(line, ensure_ascii=False), flush=True)
            seen += 1
    return 0


def _methods(args: argparse.Namespace) -> int:
    from firmware.api.client import SyncApiClient

    with SyncApiClient(args.socket, client_name="ponte-cli") as api:
        result: Any = api.call("api.methods")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    width = max((len(m["name"]) for m in result["methods"]), default=0)
    for m in result["methods"]:
        login = " [login]" if m["requires_login"] else ""
        print(f"{m['name']:<{width}}  ({m['signature']}){login}\n{'':<{width}}  {m['summary']}")
    return 0


def _docs() -> int:
    from firmware.api.auth import MemoryCredentialStore
    from firmware.api.docgen import generated_block
    from firmware.api.server import ApiServer

    server = ApiServer("/nonexistent/api.sock", credentials=MemoryCredentialStore())
    print(generated_block(server.method_specs()))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import logging
    import signal

    from firmware.api.auth import FileCredentialStore
    from firmware.api.server import ApiServer

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    async def run() -> None:
        server = ApiServer(args.socket, credentials=FileCredentialStore(args.credentials))
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await server.stop()

    asyncio.run(run())
    return 0
