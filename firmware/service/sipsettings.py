"""The SIP endpoint's settings for this appliance: the stored configuration plus how it runs.

Blocking (DNS lookups of registrars, /etc/resolv.conf, a self-signed certificate written
once): the appliance calls :func:`sip_settings` in a worker thread.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from firmware.sip.policy import InboundPolicy, policy_from_store
from firmware.sip.provision import endpoint_settings_from_store, resolve_host, system_nameservers
from firmware.sip.settings import EndpointSettings
from firmware.store import Config

POLICY_SECRET_BYTES = 32  # nonce HMAC key (RFC 7616 §3.3 leaves the nonce format to us)


def sip_settings(
    config: Config,
    *,
    bind_host: str,
    data_dir: Path,
    line_ports: tuple[int, ...],
    udp_port: int | None = None,
) -> tuple[EndpointSettings, InboundPolicy]:
    """Endpoint settings and inbound policy; ``udp_port`` overrides the UDP port."""
    settings = endpoint_settings_from_store(
        config,
        bind_host=bind_host,
        data_dir=data_dir,
        line_ports=line_ports,
        system_nameservers=system_nameservers(),
    )
    if udp_port is not None:
        settings = dataclasses.replace(
            settings,
            transports=tuple(
                dataclasses.replace(t, port=udp_port) if t.kind == "udp" else t
                for t in settings.transports
            ),
        )
    policy = InboundPolicy(policy_from_store(config, resolve_host), os.urandom(POLICY_SECRET_BYTES))
    return settings, policy
