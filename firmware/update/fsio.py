"""The file operations the updater performs, behind one seam.

Everything that changes persistent state (slot writes, boot state, bootloader
environment, keyring) goes through a ``FileOps``.  ``FaultyOps`` is the same
operations with faults injected: a simulated crash at the n-th write, fsync or
rename (optionally tearing the write in half first), ENOSPC or EIO on a path, or a
disk that silently corrupts what it is given (test 21, 24, 25).  It ships in the
package so that the simulator and the tests exercise the real code paths.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field

OpKind = str  # "write" | "fsync" | "rename"
KINDS = ("write", "fsync", "rename")


class SimulatedCrash(BaseException):
    """The machine lost power here.  A BaseException so that no handler swallows it."""


class FileOps:
    """Plain POSIX file operations that record what they touched."""

    def __init__(self) -> None:
        self._paths: dict[int, str] = {}
        self.log: list[tuple[OpKind, str]] = []
        self.log_cap = 100_000  # a record for tests and diagnostics, bounded

    def _note(self, kind: OpKind, path: str) -> None:
        if len(self.log) < self.log_cap:
            self.log.append((kind, path))

    def path_of(self, fd: int) -> str:
        return self._paths.get(fd, f"fd {fd}")

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        fd = os.open(path, flags | os.O_CLOEXEC, mode)
        self._paths[fd] = path
        if flags & (os.O_WRONLY | os.O_RDWR):
            self._note("open-write", path)
        return fd

    def close(self, fd: int) -> None:
        self._paths.pop(fd, None)
        os.close(fd)

    def write(self, fd: int, data: bytes | memoryview) -> None:
        self._note("write", self.path_of(fd))
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def fsync(self, fd: int) -> None:
        self._note("fsync", self.path_of(fd))
        os.fsync(fd)

    def rename(self, src: str, dst: str) -> None:
        self._note("rename", dst)
        os.rename(src, dst)

    def truncate(self, fd: int, size: int) -> None:
        self._note("truncate", self.path_of(fd))
        os.ftruncate(fd, size)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._paths[fd] = path
        try:
            self.fsync(fd)
        finally:
            self.close(fd)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        return os.pread(fd, size, offset)

    def drop_cache(self, fd: int) -> None:
        # Ask the kernel to forget cached pages so the read-back comes from the device.
        # Block devices and most file systems honour it; where they do not, the read-back
        # still checks what the kernel will serve to the next reader.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def write_atomic(ops: FileOps, path: str, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename, fsync the directory."""
    tmp = f"{path}.tmp"
    fd = ops.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        ops.write(fd, data)
        ops.fsync(fd)
    finally:
        ops.close(fd)
    ops.rename(tmp, path)
    ops.fsync_dir(os.path.dirname(path) or ".")


@dataclass
class Fault:
    """Raise at the ``index``-th (0-based) operation of ``kind`` whose path matches."""

    kind: OpKind
    index: int = 0
    error: int | None = None  # errno to raise instead of crashing
    torn: bool = False  # for a crash at a write: write the first half first
    match: Callable[[str], bool] = field(default=lambda _path: True)


class FaultyOps(FileOps):
    def __init__(
        self,
        faults: list[Fault] | None = None,
        corrupt: Callable[[str], bool] | None = None,
        power_loss: bool = False,
    ) -> None:
        super().__init__()
        self.faults = list(faults or [])
        self.corrupt = corrupt
        # With power_loss, a crash also loses every write not yet fsynced (the worst a
        # page cache can do): such files are cut to zero length.
        self.power_loss = power_loss
        self.dirty: set[str] = set()
        self.counts: dict[OpKind, int] = dict.fromkeys(KINDS, 0)
        self.fired = False

    def _check(self, kind: OpKind, path: str) -> Fault | None:
        hit = None
        for f in self.faults:
            if f.kind == kind and f.match(path):
                hit = f
        if hit is None:
            return None
        index = self.counts[kind]
        self.counts[kind] += 1
        if index != hit.index:
            return None
        self.fired = True
        return hit

    def _raise(self, fault: Fault, path: str) -> None:
        if fault.error is not None:
            raise OSError(fault.error, os.strerror(fault.error), path)
        if self.power_loss:
            for lost in sorted(self.dirty):
                if os.path.isfile(lost):
                    os.truncate(lost, 0)
        raise SimulatedCrash(f"crash at {fault.kind} #{fault.index} ({path})")

    def write(self, fd: int, data: bytes | memoryview) -> None:
        path = self.path_of(fd)
        fault = self._check("write", path)
        if fault is not None:
            if fault.torn or fault.error == errno.ENOSPC:
                super().write(fd, bytes(data[: len(data) // 2]))
            self._raise(fault, path)
        if self.corrupt is not None and self.corrupt(path) and len(data):
            # A lying disk: the write "succeeds" with one bit flipped in the middle.
            buf = bytearray(data)
            buf[len(buf) // 2] ^= 0x10
            data = bytes(buf)
        self.dirty.add(path)
        super().write(fd, data)

    def fsync(self, fd: int) -> None:
        path = self.path_of(fd)
        fault = self._check("fsync", path)
        if fault is not None:
            self._raise(fault, path)
        super().fsync(fd)
        self.dirty.discard(path)

    def rename(self, src: str, dst: str) -> None:
        fault = self._check("rename", dst)
        if fault is not None:
            self._raise(fault, dst)
        super().rename(src, dst)
        if src in self.dirty:
            self.dirty.discard(src)
            self.dirty.add(dst)
