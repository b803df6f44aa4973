"""The SIP firewall on the box: kernel rules from the configuration, an alarm when they fail.

``security.firewall`` decides: ``on``, ``off``, or ``auto`` (on with a real line card, off in
simulation, where the box shares a developer's machine).  Loading needs nft and root; when
that fails the box runs on (the in-process flood guard still protects pjsua2) with the
``sip.firewall`` alarm raised, never a crash.  ``stop()`` removes the table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from firmware.sip.errors import SipConfigError
from firmware.sip.firewall import Ban
from firmware.sip.nft import FirewallError, NftFirewall
from firmware.sip.policy import trunk_hosts_from_store
from firmware.sip.provision import firewall_settings_from_store, resolve_host
from firmware.store.schema import Config

if TYPE_CHECKING:
    from firmware.sip.endpoint import SipEndpoint

log = logging.getLogger(__name__)

# How often the policy's bans are copied into the kernel.  A ban found by the flood guard's
# screen has no event of its own; until the copy, the in-process guard refuses the source.
BAN_SYNC_INTERVAL_S = 5.0

ALARM_ID = "sip.firewall"
ALARM_SEVERITY = "major"  # calls still work; one layer of flood defence is missing


def firewall_wanted(config: Config, *, simulated: bool) -> bool:
    mode = config.security.firewall
    return mode == "on" or (mode == "auto" and not simulated)


class SipFirewallService:
    def __init__(
        self,
        raise_alarm: Callable[[str, str, str], None],
        clear_alarm: Callable[[str], None],
        firewall: NftFirewall | None = None,
        resolve: Callable[[str], tuple[str, ...]] = resolve_host,
    ) -> None:
        self._raise_alarm = raise_alarm
        self._clear_alarm = clear_alarm
        self.firewall = firewall or NftFirewall()
        self._resolve = resolve
        self.error: str | None = None
        self._banned: frozenset[str] = frozenset()

    @property
    def active(self) -> bool:
        return self.firewall.active

    async def start(self, config: Config, *, simulated: bool) -> bool:
        """Load the rules when the configuration wants them; True when they are loaded."""
        return await self.reload(config, simulated=simulated)

    async def reload(self, config: Config, *, simulated: bool, bans: Iterable[Ban] = ()) -> bool:
        """Apply a (new) configuration: load, replace or remove the table as it says."""
        if not firewall_wanted(config, simulated=simulated):
            if self.firewall.active:
                await self.stop()
            else:
                log.info("SIP firewall off (security.firewall = %s)", config.security.firewall)
            self._ok()
            return False
        try:
            # A registrar given by name is looked up: blocking, so off the loop.
            trunks = await asyncio.to_thread(trunk_hosts_from_store, config, self._resolve)
            settings = firewall_settings_from_store(config, trunks)
            if settings is None:
                log.info("SIP firewall: no SIP transport listens, nothing to guard")
                await self.firewall.remove()
                self._ok()
                return False
            await self.firewall.apply(settings, bans)
        except (FirewallError, SipConfigError) as exc:
            self._failed(str(exc))
            return False
        self._ok()
        return True

    async def update_bans(self, bans: Iterable[Ban]) -> bool:
        """Push the inbound policy's bans into the kernel; False while not loaded or failing."""
        if not self.firewall.active:
            return False
        try:
            await self.firewall.update_bans(bans)
        except FirewallError as exc:
            self._failed(str(exc))
            return False
        return True

    async def sync_bans(self, endpoint: SipEndpoint) -> bool:
        """Copy the endpoint policy's bans into the kernel when the banned set changed."""
        if not self.firewall.active or not endpoint.running:
            return False
        bans = await endpoint.call(lambda core: core.policy.active_bans(time.monotonic()))
        sources = frozenset(b.source for b in bans)
        if sources == self._banned:
            return False
        if not await self.update_bans(bans):
            return False
        self._banned = sources
        return True

    async def keep_bans_in_step(
        self, endpoint: SipEndpoint, interval_s: float = BAN_SYNC_INTERVAL_S
    ) -> None:
        """Run as a task beside the endpoint: ``sync_bans`` every ``interval_s``."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sync_bans(endpoint)
            except Exception as exc:  # the endpoint stopping under us, say: try next time
                log.debug("SIP firewall ban sync skipped: %s", exc)

    async def stop(self) -> None:
        if not self.firewall.active:
            return
        try:
            await self.firewall.remove()
        except FirewallError as exc:
            # Left behind, the table keeps rate-limiting a box that no longer runs SIP: say so.
            log.error("SIP firewall not removed: %s", exc)

    def _failed(self, error: str) -> None:
        self.error = error
        log.error("SIP firewall not loaded: %s", error)
        self._raise_alarm(ALARM_ID, ALARM_SEVERITY, f"SIP firewall not loaded: {error}")

    def _ok(self) -> None:
        self.error = None
        self._clear_alarm(ALARM_ID)
