"""``ponte bundle``: offline keys, keyrings, building, signing and inspecting bundles."""

from __future__ import annotations

import argparse
import os
import sys

HELP = "offline signing: keygen, keyring, build, sign and inspect firmware bundles"
PASSPHRASE_ENV = "PONTE_KEY_PASSPHRASE"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("keygen", help="new Ed25519 key pair: STEM.key (0600) and STEM.pub")
    p.add_argument("stem")
    p.add_argument("--passphrase-env", metavar="VAR", help="encrypt with the passphrase in $VAR")
    p = sub.add_parser("keyring", help="write a keyring from public keys")
    p.add_argument("out")
    p.add_argument("--key", action="append", required=True, help="a .pub file (repeat)")
    p.add_argument("--threshold", type=int, default=1)
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--revoke", action="append", default=[], help="key id or .pub to revoke")
    p = sub.add_parser("build", help="build a bundle from images (NAME=PATH)")
    p.add_argument("out")
    p.add_argument("images", nargs="+", metavar="NAME=PATH")
    p.add_argument("--compatible", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--security-version", type=int, required=True)
    p.add_argument("--compression", choices=("xz", "gzip", "none"), default="xz")
    p.add_argument("--next-keyring", help="keyring file the device adopts (rotation)")
    p.add_argument("--build-info", default="", help="free text, e.g. the build date")
    p.add_argument("--key", action="append", default=[], help="sign with this .key now")
    p = sub.add_parser("sign", help="add a signature to a bundle")
    p.add_argument("bundle")
    p.add_argument("--key", required=True)
    p.add_argument("--passphrase-env", metavar="VAR")
    p = sub.add_parser("inspect", help="describe a bundle; verify it against a keyring")
    p.add_argument("bundle")
    p.add_argument("--keyring")


def _passphrase(var: str | None) -> bytes | None:
    if not var:
        return None
    value = os.environ.get(var)
    if not value:
        raise SystemExit(f"ponte bundle: ${var} is empty")
    return value.encode()


def main(args: argparse.Namespace) -> int:
    from firmware.update.errors import UpdateError

    try:
        return _ACTIONS[args.action](args)
    except (UpdateError, OSError) as exc:
        print(f"ponte bundle {args.action}: {exc}", file=sys.stderr)
        return 1


def _keygen(args: argparse.Namespace) -> int:
    from firmware.update.keyring import key_id
    from image import keys

    key = keys.generate()
    priv, pub = keys.save(key, args.stem, _passphrase(args.passphrase_env))
    print(f"private key {priv} (keep offline), public key {pub}")
    print(f"key id {key_id(keys.public_bytes(key)).hex()}")
    return 0


def _keyring(args: argparse.Namespace) -> int:
    from firmware.update.keyring import Keyring, key_id
    from image import keys

    publics = [keys.load_public(p) for p in args.key]
    revoked = [key_id(keys.load_public(r)).hex() if os.path.exists(r) else r for r in args.revoke]
    ring = Keyring.create(publics, version=args.version, threshold=args.threshold, revoked=revoked)
    with open(args.out, "wb") as f:
        f.write(ring.to_bytes())
    print(f"keyring v{ring.version}: {len(ring.keys)} keys, threshold {ring.threshold}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from firmware.update.keyring import Keyring
    from image import bundle, keys

    payloads = []
    for spec in args.images:
        name, sep, path = spec.partition("=")
        if not sep:
            print(f"ponte bundle build: {spec!r} is not NAME=PATH", file=sys.stderr)
            return 2
        payloads.append(bundle.Payload(name, path, args.compression))
    ring = None
    if args.next_keyring:
        with open(args.next_keyring, "rb") as f:
            ring = Keyring.from_bytes(f.read(64 * 1024))
    manifest = bundle.build(
        args.out,
        payloads,
        compatible=args.compatible,
        version=args.version,
        security_version=args.security_version,
        keyring=ring,
        build_info=args.build_info,
        signers=[keys.load_private(k) for k in args.key],
    )
    size = os.path.getsize(args.out)
    print(f"{args.out}: {manifest.version}, {len(manifest.images)} image(s), {size} bytes")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from image import bundle, keys

    sig = bundle.sign(args.bundle, keys.load_private(args.key, _passphrase(args.passphrase_env)))
    print(f"{args.bundle}: signed by key {sig.keyid.hex()[:16]}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from firmware.update.keyring import Keyring
    from image import bundle

    ring = None
    if args.keyring:
        with open(args.keyring, "rb") as f:
            ring = Keyring.from_bytes(f.read(64 * 1024))
    text = bundle.inspect(args.bundle, ring)
    print(text)
    return 1 if "verified:   NO" in text else 0


_ACTIONS = {
    "keygen": _keygen,
    "keyring": _keyring,
    "build": _build,
    "sign": _sign,
    "inspect": _inspect,
}
