"""Fetch a bundle over HTTP(S) into a file, resuming with Range requests.

A partial download is kept as ``NAME.part`` next to a ``NAME.part.json`` that
records the URL and the validator (ETag or Last-Modified) the bytes came with.  A
retry sends ``Range: bytes=N-`` with ``If-Range``; a 206 whose Content-Range starts at
N is appended, a 200 (the server ignored the range, or the file changed) restarts
from zero.  The downloaded file is verified in full by the installer afterwards, so
nothing here is trusted.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from firmware.update.bundle import CHUNK_BYTES
from firmware.update.errors import InstallFailed, Rejected

log = logging.getLogger(__name__)

MAX_DOWNLOAD_BYTES = 8 * 2**30  # refuse anything announced larger than this
TIMEOUT_S = 30.0
DEFAULT_RETRIES = 5
RETRY_DELAY_S = 1.0
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Attempt:
    status: int
    start: int  # offset the body was written at


def _meta_path(part: str) -> str:
    return part + ".json"


def _load_meta(part: str, url: str) -> str | None:
    try:
        with open(_meta_path(part), encoding="utf-8") as f:
            meta = json.loads(f.read(4096))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("url") != url:
        return None
    validator = meta.get("validator")
    return validator if isinstance(validator, str) else None


def _save_meta(part: str, url: str, validator: str | None) -> None:
    with open(_meta_path(part), "w", encoding="utf-8") as f:
        json.dump({"url": url, "validator": validator}, f)


def fetch_once(url: str, part: str, progress: Progress | None = None) -> Attempt:
    """One request; raises OSError/urllib errors when the connection breaks."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    validator = _load_meta(part, url) if have else None
    req = urllib.request.Request(url, headers={"User-Agent": "ponte-update"})
    if have and validator:
        req.add_header("Range", f"bytes={have}-")
        req.add_header("If-Range", validator)
    elif have:
        have = 0  # no validator: cannot prove the bytes are from the same file
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            # Range not satisfiable: our partial file is not a prefix of theirs.
            os.unlink(part)
        raise
    with resp:
        status = resp.status
        length = resp.headers.get("Content-Length")
        if status == 206:
            m = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                raise Rejected(f"server answered a range we did not ask for ({m and m.group(0)})")
            total = int(m.group(3)) if m.group(3) != "*" else 0
            start = have
        elif status == 200:
            if have:
                log.info("server ignored the range request; downloading from the start")
            start = 0
            total = int(length) if length and length.isdigit() else 0
        else:
            raise Rejected(f"unexpected HTTP status {status} for {url}")
        if total > MAX_DOWNLOAD_BYTES:
            raise Rejected(f"{url} is {total} bytes, more than {MAX_DOWNLOAD_BYTES}")
        new_validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
        _save_meta(part, url, new_validator)
        mode = "r+b" if start else "wb"
        if start == 0 and not os.path.exists(part):
            mode = "wb"
        with open(part, mode) as f:
            f.seek(start)
            f.truncate()
            done = start
            while True:
                chunk = resp.read(CHUNK_BYTES)
                if not chunk:
                    break
                f.write(chunk)
                done += len(chunk)
                if done > MAX_DOWNLOAD_BYTES or (total and done > total):
                    raise Rejected(f"{url} sends more bytes than it announced")
                if progress is not None:
                    progress("download", done, total or done)
            f.flush()
            os.fsync(f.fileno())
        if total and done != total:
            raise ConnectionError(f"connection closed at {done} of {total} bytes")
    return Attempt(status, start)


def download(
    url: str,
    dest: str,
    *,
    retries: int = DEFAULT_RETRIES,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Attempt]:
    """Download ``url`` to ``dest`` (atomically renamed when complete)."""
    part = dest + ".part"
    attempts: list[Attempt] = []
    for n in range(retries + 1):
        try:
            attempts.append(fetch_once(url, part, progress))
            break
        except (OSError, http.client.HTTPException) as exc:
            kept = os.path.getsize(part) if os.path.exists(part) else 0
            log.warning("download attempt %d failed after %d bytes: %s", n + 1, kept, exc)
            if n == retries:
                raise InstallFailed(f"download of {url} failed: {exc}") from None
            sleep(RETRY_DELAY_S)
    os.replace(part, dest)
    try:
        os.unlink(_meta_path(part))
    except FileNotFoundError:
        pass
    return attempts
