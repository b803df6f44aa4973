"""Documents shared by the store tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from firmware.store import Account, Config, Route, SipConfig, Trunk, default_config
from firmware.store.schema import TlsTransport, TransportsConfig


def trunk(name: str, **kw: Any) -> Trunk:
    values: dict[str, Any] = {
        "name": name,
        "registrar": "sip.example.net",
        "username": f"user-{name}",
        "password": f"secret-{name}",
    }
    values.update(kw)
    return Trunk(**values)


def account(name: str, fxs: int, **kw: Any) -> Account:
    values: dict[str, Any] = {
        "name": name,
        "fxs": fxs,
        "registrar": "sip:voip.example.org:5070",
        "username": f"acc-{name}",
        "password": f"pw-{name}",
    }
    values.update(kw)
    return Account(**values)


def rich_config() -> Config:
    """Everything a real site has: TLS, two trunks, per-port accounts, routes to trunks."""
    base = default_config(fxs_ports=4, fxo_ports=2)
    tls = TlsTransport(
        enabled=True, cert_file="/etc/ponte/tls/cert.pem", key_file="/etc/ponte/tls/key.pem"
    )
    sip = SipConfig(
        transports=TransportsConfig(tls=tls),
        trunks=(
            trunk(
                "provider",
                transport="tls",
                srtp="mandatory",
                codecs=("PCMA", "G722"),
                realm="example.net",
            ),
            trunk(
                "backup",
                registrar="[2001:db8::1]:5062",
                register=False,
                allowed_hosts=("2001:db8::/64",),
            ),
        ),
        accounts=(account("port3", 2, dtmf="info"),),
    )
    routes = (
        *base.dialplan.routes,
        Route(name="mobile", pattern="07xxxxxxxxx", to="trunk:provider", strip=1, prefix="447"),
    )
    return dataclasses.replace(
        base, sip=sip, dialplan=dataclasses.replace(base.dialplan, routes=routes)
    )
