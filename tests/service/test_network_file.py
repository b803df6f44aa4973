"""The systemd-networkd file written from the [network] settings."""

from __future__ import annotations

from firmware.service.control import network_file_text
from firmware.store import NetworkConfig


def test_dhcp() -> None:
    text = network_file_text(NetworkConfig())
    assert "DHCP=yes" in text and "NTP=pool.ntp.org" in text and "Address=" not in text


def test_static() -> None:
    net = NetworkConfig(
        mode="static",
        address="192.168.1.10/24",
        gateway="192.168.1.1",
        dns=("192.168.1.1", "9.9.9.9"),
        ntp=("ntp.example.org",),
    )
    lines = network_file_text(net).splitlines()
    for want in [
        "[Match]",
        "Name=eth0",
        "Address=192.168.1.10/24",
        "Gateway=192.168.1.1",
        "DNS=192.168.1.1",
        "DNS=9.9.9.9",
        "NTP=ntp.example.org",
    ]:
        assert want in lines
    assert "DHCP=yes" not in lines
