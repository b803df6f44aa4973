"""The I/O shell of the SIP firewall: loads ``firewall.nft_ruleset`` into the kernel with nft.

The ruleset is one ``nft -f -`` transaction (the table is declared, deleted and rebuilt in
one batch), so applying it again replaces the old table atomically: no moment without
rules, never two copies.  ``remove()`` deletes the table the same way and is idempotent.
Needs CAP_NET_ADMIN (root on the box); failures are ``FirewallError`` naming the cause, for
the service to raise an alarm, never a crash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from firmware.sip.errors import SipError
from firmware.sip.firewall import TABLE, Ban, FirewallSettings, nft_ruleset

log = logging.getLogger(__name__)

NFT_TIMEOUT_S = 10.0  # nft answers in milliseconds; a hung one must not hang the service
MAX_STDERR = 2000  # characters of nft's complaint kept in the error


class FirewallError(SipError):
    """The kernel rules could not be loaded or removed (no nft, no permission, refused)."""


class NftFirewall:
    """Owns the ``inet ponte_sip`` table.  ``command`` is how nft is run (a seam for tests
    that run it inside a network namespace: ``("ip", "netns", "exec", NS, "nft")``)."""

    def __init__(self, command: tuple[str, ...] = ("nft",)) -> None:
        if not command:
            raise ValueError("the nft command is empty")
        self._command = command
        self._settings: FirewallSettings | None = None
        self.applied = 0  # rulesets loaded, for status and tests

    @property
    def active(self) -> bool:
        return self._settings is not None

    @property
    def settings(self) -> FirewallSettings | None:
        return self._settings

    async def apply(self, settings: FirewallSettings, bans: Iterable[Ban] = ()) -> None:
        """Load (or replace) the table; bans are dropped by the kernel until they run out."""
        await self._nft(nft_ruleset(settings, bans), "loading the SIP firewall")
        self._settings = settings
        self.applied += 1
        log.info(
            "SIP firewall loaded: ports %s, %d/s per source, %d exempt",
            ",".join(map(str, settings.ports)),
            settings.rate_per_s,
            len(settings.exempt),
        )

    async def update_bans(self, bans: Iterable[Ban]) -> None:
        """Rewrite the table with these bans (the inbound policy's), same settings."""
        if self._settings is None:
            raise FirewallError("the SIP firewall is not loaded")
        await self.apply(self._settings, bans)

    async def remove(self) -> None:
        """Delete the table; fine when it is not there."""
        await self._nft(f"table inet {TABLE}\ndelete table inet {TABLE}\n", "removing it")
        if self._settings is not None:
            log.info("SIP firewall removed")
        self._settings = None

    async def _nft(self, script: str, what: str) -> None:
        argv = (*self._command, "-f", "-")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:  # FileNotFoundError above all: nftables is not installed
            raise FirewallError(f"{what}: cannot run {argv[0]}: {exc}") from None
        try:
            _, err = await asyncio.wait_for(proc.communicate(script.encode()), NFT_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise FirewallError(f"{what}: {argv[0]} did not finish in {NFT_TIMEOUT_S} s") from None
        if proc.returncode != 0:
            text = err.decode(errors="replace").strip()[-MAX_STDERR:]
            raise FirewallError(f"{what}: nft failed (exit {proc.returncode}): {text}")
