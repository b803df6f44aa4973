"""A record kept in two copies, each with a generation counter and a checksum.

Like U-Boot's redundant environment: a save always overwrites the *older* copy (via
temp file, fsync, rename), so the newest valid copy is never touched while it is the
only good one.  A load takes the valid copy with the highest generation; a torn or
corrupted copy is simply not valid.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
from dataclasses import dataclass

from firmware.update.errors import StateError
from firmware.update.fsio import FileOps, write_atomic

log = logging.getLogger(__name__)

RECORD_MAGIC = b"PONTE-DUAL-1\n"
_HEAD = struct.Struct("<QI")  # generation, payload length
DIGEST_BYTES = 32
MAX_RECORD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Record:
    generation: int
    payload: bytes
    copy: int  # which file (0 or 1) it came from


def encode_record(generation: int, payload: bytes) -> bytes:
    if len(payload) > MAX_RECORD_BYTES:
        raise StateError(f"record of {len(payload)} bytes exceeds {MAX_RECORD_BYTES}")
    body = RECORD_MAGIC + _HEAD.pack(generation, len(payload)) + payload
    return body + hashlib.sha256(body).digest()


def decode_record(data: bytes) -> tuple[int, bytes] | None:
    """(generation, payload), or None if the copy is torn, corrupt or foreign."""
    fixed = len(RECORD_MAGIC) + _HEAD.size
    if len(data) < fixed + DIGEST_BYTES or not data.startswith(RECORD_MAGIC):
        return None
    generation, length = _HEAD.unpack_from(data, len(RECORD_MAGIC))
    if len(data) != fixed + length + DIGEST_BYTES:
        return None
    body, digest = data[:-DIGEST_BYTES], data[-DIGEST_BYTES:]
    if hashlib.sha256(body).digest() != digest:
        return None
    return generation, body[fixed:]


class DualStore:
    def __init__(self, ops: FileOps, directory: str, stem: str) -> None:
        self.ops = ops
        self.paths = (os.path.join(directory, f"{stem}.0"), os.path.join(directory, f"{stem}.1"))

    def _read(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as f:
                return f.read(MAX_RECORD_BYTES + 256)
        except FileNotFoundError:
            return None

    def load(self) -> Record | None:
        """The newest valid copy; None if neither file exists.  Both invalid: StateError."""
        best: Record | None = None
        present = 0
        for copy, path in enumerate(self.paths):
            data = self._read(path)
            if data is None:
                continue
            present += 1
            decoded = decode_record(data)
            if decoded is None:
                log.warning("boot state copy %s is damaged; using the other copy", path)
                continue
            if best is None or decoded[0] > best.generation:
                best = Record(decoded[0], decoded[1], copy)
        if best is None and present:
            raise StateError(f"both copies of {self.paths[0][:-2]} are damaged")
        return best

    def save(self, payload: bytes, current: Record | None) -> Record:
        generation = 1 if current is None else current.generation + 1
        copy = 0 if current is None else 1 - current.copy
        write_atomic(self.ops, self.paths[copy], encode_record(generation, payload))
        return Record(generation, payload, copy)
