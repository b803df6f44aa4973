"""The SIP firewall on the box: kernel rules from the configuration, an alarm when they fail.

``security.firewall`` decides: ``on``, ``off``, or ``auto`` (on with a real line card, off in
simulation, where the box shares a developer's machine).  Loading needs nft and root; when
that fails the box runs on (the in-process flood guard still protects pjsua2) with the
``sip.firewall`` alarm raised, never a crash.  ``stop()`` removes the table.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from firmware.sip.errors import SipConfigError
from firmware.sip.firewall import Ban
from firmware.sip.nft import FirewallError, NftFirewall
from firmware.sip.policy import trunk_hosts_from_store
from firmware.sip.provision import firewall_settings_from_store, resolve_host
from firmware.store.schema import Config

log = logging.getLogger(__name__)

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

    async def update_bans(self, bans: Iterable[Ban]) -> None:
        """Push the inbound policy's bans into the kernel (no-op while not loaded)."""
        if not self.firewall.active:
            return
        try:
            await self.firewall.update_bans(bans)
        except FirewallError as exc:
            self._failed(str(exc))

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
