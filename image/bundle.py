"""Building, signing and inspecting bundles (the format is firmware.update.bundle).

Building streams each payload through SHA-256 and the chosen compressor into a
temporary file, so memory does not grow with the payload; signing rewrites only the
head of the bundle (header, manifest, signatures) and copies the payload after it.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.update import bundle as fmt
from firmware.update.errors import FormatError, UpdateError
from firmware.update.keyring import Keyring, Signature
from image import keys

COPY_CHUNK = 1024 * 1024
# xz preset 6 (8 MiB dictionary): the xz default; the device decodes it in ~9 MiB.
XZ_PRESET = 6


@dataclass(frozen=True)
class Payload:
    name: str
    path: str
    compression: str = "xz"


def _stored(payload: Payload, out: str) -> fmt.Image:
    plain = hashlib.sha256()
    size = 0
    with open(payload.path, "rb") as src, open(out, "wb") as raw:
        sink: lzma.LZMAFile | gzip.GzipFile | BinaryIO
        if payload.compression == "xz":
            sink = lzma.LZMAFile(raw, "wb", format=lzma.FORMAT_XZ, preset=XZ_PRESET)
        elif payload.compression == "gzip":
            sink = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0)
        elif payload.compression == "none":
            sink = raw
        else:
            raise FormatError(f"unknown compression {payload.compression!r}")
        while chunk := src.read(COPY_CHUNK):
            plain.update(chunk)
            size += len(chunk)
            sink.write(chunk)
        if sink is not raw:
            sink.close()
    stored = hashlib.sha256()
    with open(out, "rb") as f:
        while chunk := f.read(COPY_CHUNK):
            stored.update(chunk)
    return fmt.Image(
        name=payload.name,
        compression=payload.compression,
        size=size,
        sha256=plain.hexdigest(),
        stored_size=os.path.getsize(out),
        stored_sha256=stored.hexdigest(),
    )


def _write_atomically(out: str, head: bytes, parts: Sequence[tuple[str, int, int]]) -> None:
    """Write ``head`` then each (file, offset, length) to ``out`` via a temp file."""
    directory = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".bundle-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            for path, offset, length in parts:
                with open(path, "rb") as src:
                    src.seek(offset)
                    remaining = length
                    while remaining:
                        chunk = src.read(min(COPY_CHUNK, remaining))
                        if not chunk:
                            raise FormatError(f"{path} shorter than expected")
                        f.write(chunk)
                        remaining -= len(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def build(
    out: str,
    payloads: Sequence[Payload],
    *,
    compatible: str,
    version: str,
    security_version: int,
    keyring: Keyring | None = None,
    build_info: str = "",
    signers: Sequence[Ed25519PrivateKey] = (),
) -> fmt.Manifest:
    """Build a bundle at ``out``; sign it with ``signers`` (none: sign later)."""
    with tempfile.TemporaryDirectory(prefix="ponte-bundle-") as work:
        images = []
        stored_paths = []
        for n, p in enumerate(payloads):
            path = os.path.join(work, f"{n}.stored")
            images.append(_stored(p, path))
            stored_paths.append(path)
        manifest = fmt.Manifest(
            compatible=compatible,
            version=version,
            security_version=security_version,
            images=tuple(images),
            keyring=keyring,
            build=build_info,
        )
        mbytes = manifest.to_bytes()
        message = fmt.SIGNING_DOMAIN + mbytes
        sigs = [keys.sign(k, message) for k in signers]
        head = fmt.envelope_for(mbytes, sigs).to_bytes()
        parts = [(p, 0, os.path.getsize(p)) for p in stored_paths]
        _write_atomically(out, head, parts)
    return manifest


def read_envelope(path: str) -> fmt.Envelope:
    with open(path, "rb") as f:
        return fmt.read_envelope_unverified(fmt.file_reader(f.fileno()))


def sign(path: str, key: Ed25519PrivateKey, out: str | None = None) -> Signature:
    """Add ``key``'s signature to the bundle at ``path`` (replacing its old one)."""
    env = read_envelope(path)
    sig = keys.sign(key, env.signed_message())
    kept = [s for s in env.signatures if s.keyid != sig.keyid]
    new = fmt.envelope_for(env.manifest_bytes, [*kept, sig])
    size = os.path.getsize(path)
    _write_atomically(
        out or path, new.to_bytes(), [(path, env.payload_offset, size - env.payload_offset)]
    )
    return sig


def inspect(path: str, keyring: Keyring | None = None) -> str:
    """A human description; with a keyring, also the verification verdict."""
    env = read_envelope(path)
    lines = [f"bundle:     {path} ({os.path.getsize(path)} bytes)"]
    try:
        manifest = fmt.Manifest.from_bytes_unverified(env.manifest_bytes)
    except FormatError as exc:
        return "\n".join([*lines, f"manifest:   INVALID ({exc})"])
    lines += [
        f"compatible: {manifest.compatible}",
        f"version:    {manifest.version} (security version {manifest.security_version})",
    ]
    if manifest.build:
        lines.append(f"build:      {manifest.build}")
    for i in manifest.images:
        lines.append(
            f"image:      {i.name} {i.size} bytes, {i.compression} {i.stored_size} bytes, "
            f"sha256 {i.sha256}"
        )
    if manifest.keyring is not None:
        lines.append(
            f"keyring:    carries v{manifest.keyring.version} "
            f"({len(manifest.keyring.keys)} keys, threshold {manifest.keyring.threshold})"
        )
    for s in env.signatures:
        lines.append(f"signature:  key {s.keyid.hex()[:16]}")
    if keyring is not None:
        with open(path, "rb") as f:
            read = fmt.file_reader(f.fileno())
            try:
                verified = fmt.verify_envelope(env, keyring)
                fmt.verify_payloads(read, os.path.getsize(path), verified)
                lines.append(f"verified:   yes ({len(verified.signers)} valid signature(s))")
            except UpdateError as exc:
                lines.append(f"verified:   NO ({exc})")
    return "\n".join(lines)
