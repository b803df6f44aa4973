"""Bundle refusal before anything is written: issue 7 tests 2-8, 11 and 27."""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from firmware.update import bundle as fmt
from firmware.update.errors import (
    DigestMismatch,
    FormatError,
    Incompatible,
    Rejected,
    SignatureError,
    SizeExceeded,
)
from firmware.update.keyring import Keyring, Signature
from image import keys
from tests.update.helpers import COMPAT, FACTORY, Sim, payload_bytes, signed_raw


def verify_bytes(data: bytes, ring: Keyring) -> fmt.Verified:
    read = fmt.bytes_reader(data)
    verified = fmt.verify_envelope(fmt.read_envelope_unverified(read), ring)
    fmt.verify_payloads(read, len(data), verified)
    return verified


def refused_untouched(sim: Sim, data: bytes, exc: type[Exception] = Rejected) -> None:
    """Installing ``data`` raises ``exc`` and leaves every device file as it was."""
    before = sim.snapshot()
    path = sim.root / "candidate.pbdl"
    path.write_bytes(data)
    with pytest.raises(exc):
        sim.install(path)
    assert sim.snapshot() == before


def test_02_empty_file_and_random_bytes_refused_before_writing(sim: Sim) -> None:
    refused_untouched(sim, b"", FormatError)
    refused_untouched(sim, os.urandom(4096), FormatError)
    # Random bytes behind a valid magic are still refused.
    refused_untouched(sim, fmt.MAGIC + os.urandom(4096), FormatError)


def test_03_truncation_at_every_byte_is_refused(sim: Sim) -> None:
    path = sim.bundle(payload_bytes(3000))
    data = path.read_bytes()
    for cut in range(len(data)):
        with pytest.raises(Rejected):
            verify_bytes(data[:cut], sim.keyring)
    verify_bytes(data, sim.keyring)  # the whole one is fine


def test_03_truncation_at_each_boundary_installs_nothing(sim: Sim) -> None:
    path = sim.bundle(payload_bytes(3000))
    data = path.read_bytes()
    env = fmt.read_envelope_unverified(fmt.bytes_reader(data))
    boundaries = {0, fmt.HEADER.size, fmt.HEADER.size + len(env.manifest_bytes)}
    boundaries |= {env.payload_offset, len(data) - 1}
    for b in sorted(boundaries):
        for cut in (b - 1, b, b + 1):
            if 0 <= cut < len(data):
                refused_untouched(sim, data[:cut])
    assert sim.env().order == ("A",)


def test_04_flipped_bit_in_manifest_fails_signature(sim: Sim) -> None:
    data = bytearray(sim.bundle().read_bytes())
    env = fmt.read_envelope_unverified(fmt.bytes_reader(bytes(data)))
    for i in range(fmt.HEADER.size, fmt.HEADER.size + len(env.manifest_bytes), 7):
        flipped = bytearray(data)
        flipped[i] ^= 0x04
        with pytest.raises(SignatureError):
            verify_bytes(bytes(flipped), sim.keyring)


def test_04_flipped_bit_in_payload_fails_hash(sim: Sim) -> None:
    data = sim.bundle().read_bytes()
    offset = fmt.read_envelope_unverified(fmt.bytes_reader(data)).payload_offset
    for i in range(offset, len(data), max(1, (len(data) - offset) // 50)):
        flipped = bytearray(data)
        flipped[i] ^= 0x80
        refused = pytest.raises(DigestMismatch)
        with refused:
            verify_bytes(bytes(flipped), sim.keyring)
    flipped = bytearray(data)
    flipped[-1] ^= 1
    refused_untouched(sim, bytes(flipped), DigestMismatch)


def test_05_unknown_key_missing_signature_and_borrowed_signature(
    sim: Sim, signing_keys: list[Ed25519PrivateKey]
) -> None:
    stranger = sim.bundle(signers=[signing_keys[4]])
    refused_untouched(sim, stranger.read_bytes(), SignatureError)
    unsigned = sim.bundle(signers=[])
    refused_untouched(sim, unsigned.read_bytes(), SignatureError)
    # A valid signature lifted from another bundle's manifest onto this one.
    donor = fmt.read_envelope_unverified(fmt.bytes_reader(sim.bundle(version="9").read_bytes()))
    victim_data = sim.bundle(version="10", signers=[]).read_bytes()
    victim = fmt.read_envelope_unverified(fmt.bytes_reader(victim_data))
    grafted = fmt.Envelope(victim.manifest_bytes, donor.signatures).to_bytes()
    grafted += victim_data[victim.payload_offset :]
    refused_untouched(sim, grafted, SignatureError)
    # A signature over the manifest without the domain prefix is not accepted either.
    raw_sig = signing_keys[0].sign(victim.manifest_bytes)
    sig = Signature(donor.signatures[0].keyid, raw_sig)
    undomained = fmt.Envelope(victim.manifest_bytes, (sig,)).to_bytes()
    refused_untouched(sim, undomained + victim_data[victim.payload_offset :], SignatureError)


def test_06_trailing_and_undeclared_bytes_refused(sim: Sim) -> None:
    data = sim.bundle().read_bytes()
    refused_untouched(sim, data + b"\0", FormatError)
    refused_untouched(sim, data + os.urandom(1000), FormatError)
    # Bytes smuggled after the xz stream inside a payload whose size claims them.
    payload = lzma.compress(b"x" * 1000, format=lzma.FORMAT_XZ) + b"JUNK"
    m = fmt.Manifest(
        COMPAT,
        "3",
        5,
        (
            fmt.Image(
                "rootfs",
                "xz",
                1000,
                hashlib.sha256(b"x" * 1000).hexdigest(),
                len(payload),
                hashlib.sha256(payload).hexdigest(),
            ),
        ),
    )
    # The signed digests hold, so this is found while decompressing into the target,
    # which was already taken out of the boot order: refused, nothing activated.
    path = sim.root / "junk.pbdl"
    path.write_bytes(signed_raw(m.to_bytes(), sim.signers, payload))
    with pytest.raises(FormatError, match="after the end of the xz stream"):
        sim.install(path)
    assert sim.env().order == ("A",) and sim.slot_bytes("A") == FACTORY
    assert sim.state().slots["B"].status == "installing"
    assert sim.power_on() == "A"


def test_07_oversized_manifest_refused_without_large_allocation(sim: Sim) -> None:
    header = fmt.HEADER.pack(fmt.MAGIC, fmt.FORMAT_VERSION, 1, 2**32 - 1)
    path = sim.root / "huge.pbdl"
    path.write_bytes(header + b"{" * 100)
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="manifest length"):
            sim.install(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024
    # Just over the cap is refused too; too many signatures as well.
    over = fmt.HEADER.pack(fmt.MAGIC, fmt.FORMAT_VERSION, 1, fmt.MAX_MANIFEST_BYTES + 1)
    refused_untouched(sim, over + b"\0" * 64, FormatError)
    many = fmt.HEADER.pack(fmt.MAGIC, fmt.FORMAT_VERSION, 60000, 10)
    refused_untouched(sim, many + b"\0" * 64, FormatError)


def _manifest_obj(**image: object) -> dict[str, Any]:
    data = b"payload"
    img = {
        "name": "rootfs",
        "compression": "none",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "stored_size": len(data),
        "stored_sha256": hashlib.sha256(data).hexdigest(),
    }
    img.update(image)
    return {
        "format": 1,
        "compatible": COMPAT,
        "version": "5",
        "security_version": 5,
        "images": [img],
    }


def _canon(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"sha256": "00" * 31}, "digest"),
        ({"sha256": "ZZ" * 32}, "digest"),
        ({"sha256": "AB" * 32}, "digest"),
        ({"size": -1}, "out of range"),
        ({"stored_size": -5}, "out of range"),
        ({"size": 2**70}, "out of range"),
        ({"name": "../etc"}, "name"),
        ({"name": "a/../b"}, "name"),
        ({"name": "/rootfs"}, "name"),
        ({"compression": "zip"}, "compression"),
        ({"size": True}, "integer"),
    ],
)
def test_08_bad_manifest_fields_refused(sim: Sim, change: dict[str, object], why: str) -> None:
    mbytes = _canon(_manifest_obj(**change))
    with pytest.raises(FormatError, match=why):
        verify_bytes(signed_raw(mbytes, sim.signers, b"payload"), sim.keyring)
    refused_untouched(sim, signed_raw(mbytes, sim.signers, b"payload"), FormatError)


def test_08_duplicate_images_and_keys_refused(sim: Sim) -> None:
    obj = _manifest_obj()
    obj["images"] = obj["images"] * 2
    with pytest.raises(FormatError, match="duplicate image"):
        verify_bytes(signed_raw(_canon(obj), sim.signers, b"payload" * 2), sim.keyring)
    # A duplicate JSON key (two "security_version"s) and non-canonical spacing.
    text = _canon(_manifest_obj()).decode()
    dup = text.replace('"security_version":5', '"security_version":5,"security_version":9')
    with pytest.raises(FormatError, match="duplicate key"):
        verify_bytes(signed_raw(dup.encode(), sim.signers, b"payload"), sim.keyring)
    spaced = text.replace(":", ": ")
    with pytest.raises(FormatError, match="canonical"):
        verify_bytes(signed_raw(spaced.encode(), sim.signers, b"payload"), sim.keyring)
    floaty = text.replace('"security_version":5', '"security_version":5.0')
    with pytest.raises(FormatError):
        verify_bytes(signed_raw(floaty.encode(), sim.signers, b"payload"), sim.keyring)


def test_11_wrong_compatible_refused(sim: Sim) -> None:
    other = sim.bundle(compatible="ponte-other-arm64")
    refused_untouched(sim, other.read_bytes(), Incompatible)


def test_27_decompression_bomb_stops_at_declared_size(sim: Sim) -> None:
    # 64 MiB of zeros compresses to ~10 KiB; the manifest claims 4 KiB.
    bomb = lzma.compress(b"\0" * (64 * 1024 * 1024), format=lzma.FORMAT_XZ, preset=1)
    declared = 4096
    m = fmt.Manifest(
        COMPAT,
        "6",
        6,
        (
            fmt.Image(
                "rootfs",
                "xz",
                declared,
                hashlib.sha256(b"\0" * declared).hexdigest(),
                len(bomb),
                hashlib.sha256(bomb).hexdigest(),
            ),
        ),
    )
    data = signed_raw(m.to_bytes(), sim.signers, bomb)
    before_b = sim.slot_bytes("B")
    path = sim.root / "bomb.pbdl"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(SizeExceeded, match="beyond its declared 4096"):
            sim.install(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024
    # Nothing beyond the declared size reached the slot, and it is not bootable.
    assert len(sim.slot_bytes("B")) <= declared
    assert sim.slot_bytes("B") != before_b or before_b == b""
    assert "B" not in sim.env().order
    assert sim.power_on() == "A"


def test_27_gzip_bomb_stops_too() -> None:
    import gzip

    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024))
    dec = fmt.Decoder("gzip", 1000, "rootfs")
    with pytest.raises(SizeExceeded):
        for _ in dec.feed(bomb):
            pass
    assert dec.produced <= 1000 + fmt.CHUNK_BYTES


def test_xz_stream_asking_for_too_much_memory_refused() -> None:
    filters = [{"id": lzma.FILTER_LZMA2, "dict_size": 256 * 1024 * 1024}]
    data = lzma.compress(b"abc" * 100, format=lzma.FORMAT_XZ, filters=filters)
    dec = fmt.Decoder("xz", 300, "rootfs")
    with pytest.raises(FormatError, match="corrupt xz"):
        list(dec.feed(data))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs.binary(max_size=600))
def test_02_garbage_only_ever_raises_format_errors(garbage: bytes) -> None:
    ring = Keyring.create([keys.public_bytes(keys.generate())])
    for data in (garbage, fmt.MAGIC + struct.pack("<HHI", 1, 1, 40) + garbage):
        with pytest.raises(Rejected):
            verify_bytes(data, ring)


def test_byte_at_a_time_reader_gives_same_verdict(sim: Sim) -> None:
    data = sim.bundle().read_bytes()

    def trickle(size: int, offset: int) -> bytes:
        # A reader that returns at most one byte per call, like a slow pipe.
        return data[offset : offset + min(size, 1)]

    with pytest.raises(FormatError):
        fmt.read_envelope_unverified(trickle)
    whole = verify_bytes(data, sim.keyring)
    assert whole.manifest.version == "2.0"


def test_inspect_shows_and_verifies(sim: Sim) -> None:
    from image import bundle as builder

    path = sim.bundle()
    text = builder.inspect(str(path), sim.keyring)
    assert "verified:   yes" in text and COMPAT in text
    stranger = Keyring.create([keys.public_bytes(keys.generate())])
    assert "verified:   NO" in builder.inspect(str(path), stranger)


def test_payload_from_file_reader_matches(tmp_path: Path, sim: Sim) -> None:
    path = sim.bundle(compression="gzip")
    with open(path, "rb") as f:
        read = fmt.file_reader(f.fileno())
        v = fmt.verify_envelope(fmt.read_envelope_unverified(read), sim.keyring)
        fmt.verify_payloads(read, os.path.getsize(path), v)
    assert v.manifest.images[0].compression == "gzip"
