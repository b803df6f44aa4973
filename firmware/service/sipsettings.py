"""The SIP endpoint's settings for this appliance: the stored configuration plus how it runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from firmware.sip.settings import (
    EndpointSettings,
    TlsSettings,
    TransportSettings,
    endpoint_from_store,
)
from firmware.store import Config


def sip_settings(
    config: Config,
    *,
    bind_host: str,
    data_dir: Path,
    line_ports: tuple[int, ...],
    udp_port: int | None = None,
) -> EndpointSettings:
    """Transports on ``bind_host`` as configured (``udp_port`` overrides the UDP port)."""
    t = config.sip.transports
    transports: list[TransportSettings] = []
    if t.udp.enabled:
        transports.append(
            TransportSettings("udp", bind_host, t.udp.port if udp_port is None else udp_port)
        )
    if t.tcp.enabled:
        transports.append(TransportSettings("tcp", bind_host, t.tcp.port))
    if t.tls.enabled and t.tls.cert_file and t.tls.key_file:
        tls = TlsSettings(
            cert_file=t.tls.cert_file,
            key_file=t.tls.key_file,
            ca_file=t.tls.ca_file,
            verify_server=t.tls.verify_server,
            require_client_cert=t.tls.require_client_cert,
        )
        transports.append(TransportSettings("tls", bind_host, t.tls.port, tls))
    if not transports:
        transports.append(TransportSettings("udp", bind_host, 0 if udp_port is None else udp_port))
    settings = endpoint_from_store(config.sip, tuple(transports))
    return dataclasses.replace(settings, line_ports=line_ports)
