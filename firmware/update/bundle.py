"""The bundle format: a fixed header, a signed canonical manifest, signatures, payloads.

Layout (all integers little-endian; see docs/bundle-format.md)::

    header     16 bytes   magic "PONTEBDL", format u16, signature count u16, manifest length u32
    manifest   n bytes    canonical JSON (canonical.py), at most MAX_MANIFEST_BYTES
    signatures 96 bytes each: key id (SHA-256 of the public key, 32) + Ed25519 signature (64)
    payloads   the stored bytes of each image, in manifest order, nothing after the last

Signatures cover ``SIGNING_DOMAIN + manifest``; the manifest carries each payload's size
and SHA-256, so one signature check covers every byte.  The reading order follows
RAUC's "verify before parse": the header is fixed-size binary, the signatures are
checked over the raw manifest bytes, and only a manifest that passed is parsed as JSON.
Functions that skip a check say ``unverified`` in their name.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from firmware.update import canonical
from firmware.update.errors import DigestMismatch, FormatError, SizeExceeded
from firmware.update.keyring import (
    ED25519_SIGNATURE_BYTES,
    KEYID_BYTES,
    Keyring,
    Signature,
)

MAGIC = b"PONTEBDL"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sHHI")
SIGNATURE_ENTRY_BYTES = KEYID_BYTES + ED25519_SIGNATURE_BYTES
# Domain separation: a signature made for a bundle manifest can never be replayed as a
# signature over anything else we (or another product) sign with the same key.
SIGNING_DOMAIN = b"ponte/bundle-manifest/v1\x00"

MAX_MANIFEST_BYTES = 64 * 1024  # a manifest is a few hundred bytes; bound the read
MAX_SIGNATURES = 16
MAX_IMAGES = 8
MAX_IMAGE_BYTES = 64 * 2**30  # larger than any eMMC slot we ship on
MAX_TEXT = 64
CHUNK_BYTES = 1024 * 1024  # every read and every decompressed piece is at most this
# liblzma memory cap: presets up to -8 (32 MiB dictionary) decode under it; a stream
# asking for more fails instead of allocating (xz(1) "--memlimit").
XZ_MEMLIMIT = 40 * 1024 * 1024

COMPRESSIONS = ("none", "xz", "gzip")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_COMPATIBLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MANIFEST_FIELDS = {"format", "compatible", "version", "security_version", "images"}
_OPTIONAL_FIELDS = {"keyring", "build"}
_IMAGE_FIELDS = {"name", "compression", "size", "sha256", "stored_size", "stored_sha256"}


# --- manifest -----------------------------------------------------------------------


def _int(obj: dict[str, Any], key: str, where: str, lo: int, hi: int) -> int:
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise FormatError(f"{where}: {key} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise FormatError(f"{where}: {key} {value} out of range {lo}..{hi}")
    return value


def _str(obj: dict[str, Any], key: str, where: str, pattern: re.Pattern[str]) -> str:
    value = obj[key]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise FormatError(f"{where}: {key} {str(value)[:40]!r} is not valid")
    return value


@dataclass(frozen=True)
class Image:
    name: str
    compression: str
    size: int  # bytes written to the slot
    sha256: str  # of those bytes
    stored_size: int  # bytes in the bundle
    stored_sha256: str

    def __post_init__(self) -> None:
        where = f"image {self.name!r}"
        if not _NAME.fullmatch(self.name) or ".." in self.name:
            raise FormatError(f"image name {self.name[:40]!r} is not a plain lowercase name")
        if self.compression not in COMPRESSIONS:
            raise FormatError(f"{where}: unknown compression {self.compression!r}")
        for n in (self.size, self.stored_size):
            if not 0 <= n <= MAX_IMAGE_BYTES:
                raise FormatError(f"{where}: size {n} out of range 0..{MAX_IMAGE_BYTES}")
        for d in (self.sha256, self.stored_sha256):
            if not _HEX64.fullmatch(d):
                raise FormatError(f"{where}: digest {d[:70]!r} is not 64 lowercase hex digits")
        if self.compression == "none" and (
            self.size != self.stored_size or self.sha256 != self.stored_sha256
        ):
            raise FormatError(f"{where}: uncompressed image with differing stored size or digest")

    @classmethod
    def from_obj(cls, obj: Any, index: int) -> Image:
        where = f"images[{index}]"
        if not isinstance(obj, dict) or set(obj) != _IMAGE_FIELDS:
            got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise FormatError(f"{where}: fields must be {sorted(_IMAGE_FIELDS)}, got {got}")
        for key in ("name", "compression", "sha256", "stored_sha256"):
            if not isinstance(obj[key], str):
                raise FormatError(f"{where}: {key} must be a string")
        return cls(
            name=obj["name"],
            compression=obj["compression"],
            size=_int(obj, "size", where, 0, MAX_IMAGE_BYTES),
            sha256=obj["sha256"],
            stored_size=_int(obj, "stored_size", where, 0, MAX_IMAGE_BYTES),
            stored_sha256=obj["stored_sha256"],
        )

    def to_obj(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "compression": self.compression,
            "size": self.size,
            "sha256": self.sha256,
            "stored_size": self.stored_size,
            "stored_sha256": self.stored_sha256,
        }


@dataclass(frozen=True)
class Manifest:
    compatible: str
    version: str
    security_version: int
    images: tuple[Image, ...]
    keyring: Keyring | None = None
    build: str = ""  # informational (e.g. build date); never used for a decision

    def __post_init__(self) -> None:
        if not _COMPATIBLE.fullmatch(self.compatible):
            raise FormatError(f"compatible {self.compatible[:70]!r} is not valid")
        if not 1 <= len(self.version) <= MAX_TEXT or not self.version.isprintable():
            raise FormatError(f"version {self.version[:70]!r} is not valid")
        if not 0 <= self.security_version < 2**31:
            raise FormatError(f"security_version {self.security_version} out of range")
        if not 1 <= len(self.images) <= MAX_IMAGES:
            raise FormatError(f"a bundle holds 1..{MAX_IMAGES} images, got {len(self.images)}")
        names = [i.name for i in self.images]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise FormatError(f"duplicate image name {sorted(dup)[0]!r}")
        if len(self.build) > MAX_TEXT or not self.build.isprintable():
            raise FormatError("build text is not valid")

    @property
    def payload_size(self) -> int:
        return sum(i.stored_size for i in self.images)

    def to_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "compatible": self.compatible,
            "version": self.version,
            "security_version": self.security_version,
            "images": [i.to_obj() for i in self.images],
        }
        if self.keyring is not None:
            obj["keyring"] = self.keyring.to_obj()
        if self.build:
            obj["build"] = self.build
        return obj

    def to_bytes(self) -> bytes:
        data = canonical.encode(self.to_obj())
        if len(data) > MAX_MANIFEST_BYTES:
            raise FormatError(f"manifest is {len(data)} bytes, at most {MAX_MANIFEST_BYTES}")
        return data

    @classmethod
    def from_bytes_unverified(cls, data: bytes) -> Manifest:
        """Parse manifest bytes.  Only call on bytes whose signatures were checked."""
        obj = canonical.decode(data, what="manifest")
        if not isinstance(obj, dict):
            raise FormatError("manifest must be a JSON object")
        missing = _MANIFEST_FIELDS - set(obj)
        extra = set(obj) - _MANIFEST_FIELDS - _OPTIONAL_FIELDS
        if missing or extra:
            raise FormatError(
                f"manifest fields: missing {sorted(missing)}, unknown {sorted(extra)}"
            )
        if obj["format"] != FORMAT_VERSION:
            raise FormatError(f"manifest format {obj['format']!r} is not {FORMAT_VERSION}")
        for key in ("compatible", "version"):
            if not isinstance(obj[key], str):
                raise FormatError(f"manifest {key} must be a string")
        images = obj["images"]
        if not isinstance(images, list):
            raise FormatError("manifest images must be a list")
        build = obj.get("build", "")
        if not isinstance(build, str):
            raise FormatError("manifest build must be a string")
        keyring = Keyring.from_obj(obj["keyring"]) if "keyring" in obj else None
        return cls(
            compatible=obj["compatible"],
            version=obj["version"],
            security_version=_int(obj, "security_version", "manifest", 0, 2**31 - 1),
            images=tuple(Image.from_obj(o, n) for n, o in enumerate(images)),
            keyring=keyring,
            build=build,
        )


# --- envelope -----------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """Header, raw manifest bytes and signatures, as read from a bundle: unverified."""

    manifest_bytes: bytes
    signatures: tuple[Signature, ...]

    @property
    def payload_offset(self) -> int:
        return HEADER.size + len(self.manifest_bytes) + SIGNATURE_ENTRY_BYTES * len(self.signatures)

    def signed_message(self) -> bytes:
        return SIGNING_DOMAIN + self.manifest_bytes

    def to_bytes(self) -> bytes:
        head = HEADER.pack(MAGIC, FORMAT_VERSION, len(self.signatures), len(self.manifest_bytes))
        return head + self.manifest_bytes + b"".join(s.keyid + s.sig for s in self.signatures)


def parse_header(data: bytes) -> tuple[int, int]:
    """Return (signature count, manifest length) from the 16 header bytes."""
    if len(data) < HEADER.size:
        raise FormatError(f"bundle is shorter than its {HEADER.size}-byte header")
    magic, version, nsig, mlen = HEADER.unpack(data[: HEADER.size])
    if magic != MAGIC:
        raise FormatError(f"not a Ponte bundle (magic {magic!r})")
    if version != FORMAT_VERSION:
        raise FormatError(f"bundle format {version} is not supported (want {FORMAT_VERSION})")
    if not 0 < mlen <= MAX_MANIFEST_BYTES:
        raise FormatError(f"manifest length {mlen} out of range 1..{MAX_MANIFEST_BYTES}")
    if nsig > MAX_SIGNATURES:
        raise FormatError(f"{nsig} signatures, at most {MAX_SIGNATURES}")
    return nsig, mlen


class Reader(Protocol):
    def __call__(self, size: int, offset: int, /) -> bytes: ...


def read_exact(read: Reader, size: int, offset: int, what: str) -> bytes:
    data = read(size, offset)
    if len(data) != size:
        raise FormatError(f"bundle truncated in {what} (wanted {size} bytes at {offset})")
    return data


def read_envelope_unverified(read: Reader) -> Envelope:
    nsig, mlen = parse_header(read_exact(read, HEADER.size, 0, "header"))
    manifest = read_exact(read, mlen, HEADER.size, "manifest")
    raw = read_exact(read, nsig * SIGNATURE_ENTRY_BYTES, HEADER.size + mlen, "signatures")
    sigs = tuple(
        Signature(raw[o : o + KEYID_BYTES], raw[o + KEYID_BYTES : o + SIGNATURE_ENTRY_BYTES])
        for o in range(0, len(raw), SIGNATURE_ENTRY_BYTES)
    )
    return Envelope(manifest, sigs)


@dataclass(frozen=True)
class Verified:
    """A manifest whose signatures met the keyring; payload offsets in the bundle."""

    envelope: Envelope
    manifest: Manifest
    signers: frozenset[str]
    offsets: tuple[int, ...]

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.envelope.manifest_bytes).hexdigest()

    @property
    def total_size(self) -> int:
        return self.envelope.payload_offset + self.manifest.payload_size


def verify_envelope(envelope: Envelope, keyring: Keyring) -> Verified:
    """Check signatures over the raw manifest, then parse it.

    A manifest that carries the next keyring must also satisfy that keyring's threshold.
    """
    message = envelope.signed_message()
    signers = keyring.check(message, envelope.signatures, role="bundle")
    manifest = Manifest.from_bytes_unverified(envelope.manifest_bytes)
    if manifest.keyring is not None:
        keyring.accept_successor(manifest.keyring)
        manifest.keyring.check(message, envelope.signatures, role="new keyring")
    offsets = []
    offset = envelope.payload_offset
    for image in manifest.images:
        offsets.append(offset)
        offset += image.stored_size
    return Verified(envelope, manifest, frozenset(signers), tuple(offsets))


def verify_payloads(
    read: Reader, file_size: int, verified: Verified, progress: ProgressFn | None = None
) -> None:
    """Hash every stored payload; refuse trailing or missing bytes."""
    if file_size != verified.total_size:
        kind = "trailing" if file_size > verified.total_size else "missing"
        raise FormatError(
            f"bundle is {file_size} bytes, manifest declares {verified.total_size} "
            f"({abs(file_size - verified.total_size)} {kind} bytes)"
        )
    done = 0
    total = verified.manifest.payload_size
    for image, offset in zip(verified.manifest.images, verified.offsets, strict=True):
        h = hashlib.sha256()
        for chunk in iter_stored(read, offset, image.stored_size, image.name):
            h.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress("verify", done, total)
        if h.hexdigest() != image.stored_sha256:
            raise DigestMismatch(f"image {image.name!r}: payload SHA-256 does not match manifest")


class ProgressFn(Protocol):
    def __call__(self, phase: str, done: int, total: int, /) -> None: ...


def iter_stored(read: Reader, offset: int, size: int, name: str) -> Iterator[bytes]:
    remaining = size
    while remaining:
        n = min(CHUNK_BYTES, remaining)
        chunk = read(n, offset)
        if len(chunk) != n:
            raise FormatError(f"image {name!r}: bundle truncated at byte {offset}")
        offset += n
        remaining -= n
        yield chunk


def file_reader(fd: int) -> Reader:
    def read(size: int, offset: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            piece = os.pread(fd, size - len(out), offset + len(out))
            if not piece:
                break
            out += piece
        return bytes(out)

    return read


def bytes_reader(data: bytes) -> Reader:
    def read(size: int, offset: int) -> bytes:
        return data[offset : offset + size]

    return read


# --- bounded decompression ----------------------------------------------------------


def _at_eof(d: Any) -> bool:
    # A function so that the type checker does not carry d.eof's narrowing across calls
    # to decompress(), which change it.
    return bool(d.eof)


class Decoder:
    """Streams a stored payload to its plain bytes, never more than ``limit`` in total.

    Output comes in pieces of at most CHUNK_BYTES, so neither a decompression bomb nor
    a highly compressible payload can make memory grow; the first byte beyond the
    declared size raises ``SizeExceeded`` before it is handed on.
    """

    def __init__(self, compression: str, limit: int, name: str) -> None:
        self.compression = compression
        self.limit = limit
        self.name = name
        self.produced = 0
        self._xz: lzma.LZMADecompressor | None = None
        self._gz: Any = None  # zlib._Decompress has no public type
        if compression == "xz":
            self._xz = lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=XZ_MEMLIMIT)
        elif compression == "gzip":
            self._gz = zlib.decompressobj(wbits=31)  # 31: gzip header (zlib manual)
        elif compression != "none":
            raise FormatError(f"unknown compression {compression!r}")

    def _count(self, out: bytes) -> bytes:
        self.produced += len(out)
        if self.produced > self.limit:
            raise SizeExceeded(
                f"image {self.name!r}: decompresses beyond its declared {self.limit} bytes"
            )
        return out

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            if self._xz is not None:
                yield from self._feed_xz(self._xz, data)
            elif self._gz is not None:
                yield from self._feed_gz(data)
            else:
                yield self._count(data)
        except (lzma.LZMAError, zlib.error) as exc:
            raise FormatError(
                f"image {self.name!r}: corrupt {self.compression} data: {exc}"
            ) from None

    def _feed_xz(self, d: lzma.LZMADecompressor, data: bytes) -> Iterator[bytes]:
        if d.eof:
            if data:
                raise FormatError(f"image {self.name!r}: data after the end of the xz stream")
            return
        out = d.decompress(data, max_length=CHUNK_BYTES)
        while True:
            if out:
                yield self._count(out)
            if _at_eof(d):
                if d.unused_data:
                    raise FormatError(f"image {self.name!r}: data after the end of the xz stream")
                return
            if d.needs_input:
                return
            out = d.decompress(b"", max_length=CHUNK_BYTES)

    def _feed_gz(self, data: bytes) -> Iterator[bytes]:
        d = self._gz
        if d.eof:
            if data:
                raise FormatError(f"image {self.name!r}: data after the end of the gzip stream")
            return
        out = d.decompress(data, CHUNK_BYTES)
        while True:
            if out:
                yield self._count(out)
            if d.eof:
                if d.unused_data:
                    raise FormatError(f"image {self.name!r}: data after the end of the gzip stream")
                return
            if not d.unconsumed_tail:
                return
            out = d.decompress(d.unconsumed_tail, CHUNK_BYTES)

    def finish(self) -> None:
        if self._xz is not None and not self._xz.eof:
            raise FormatError(f"image {self.name!r}: xz stream ends early")
        if self._gz is not None and not self._gz.eof:
            raise FormatError(f"image {self.name!r}: gzip stream ends early")
        if self.produced != self.limit:
            raise SizeExceeded(
                f"image {self.name!r}: {self.produced} bytes, manifest declares {self.limit}"
            )


def envelope_for(manifest_bytes: bytes, signatures: Sequence[Signature]) -> Envelope:
    if len(signatures) > MAX_SIGNATURES:
        raise FormatError(f"at most {MAX_SIGNATURES} signatures")
    return Envelope(manifest_bytes, tuple(signatures))
