"""The generated nftables rules, applied in a network namespace this test creates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.sip.errors import SipConfigError
from firmware.sip.firewall import Ban, FirewallSettings, nft_ruleset

PORT = 5060

# Runs inside the namespace: several loopback sources send to one SIP port, count arrivals.
PROBE = """
import json, socket, sys, time
port = int(sys.argv[1])
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(("127.0.0.1", port))
rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
plan = [("127.0.0.2", 300), ("127.0.0.3", 10), ("127.0.0.4", 300), ("127.0.0.5", 10)]
for src, n in plan:
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind((src, 0))
    for _ in range(n):  # about 300 packets per second
        tx.sendto(b"OPTIONS sip:probe@127.0.0.1 SIP/2.0\\r\\n\\r\\n", ("127.0.0.1", port))
        time.sleep(1 / 300)
    tx.close()
time.sleep(0.2)
rx.setblocking(False)
counts = {src: 0 for src, _ in plan}
while True:
    try:
        _, addr = rx.recvfrom(2048)
    except BlockingIOError:
        break
    counts[addr[0]] += 1
print(json.dumps(counts))
"""


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("ip") is None:
        pytest.skip("needs root, nft and ip to create a network namespace")
    name = f"ponte-fw-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {made.stderr.decode().strip()}")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_per_source_rate_limit_bans_and_exemptions_in_the_kernel(netns: str, tmp_path: Path):
    settings = FirewallSettings(ports=(PORT,), rate_per_s=20, exempt=("127.0.0.4/32",))
    rules = tmp_path / "sip.nft"
    rules.write_text(nft_ruleset(settings, [Ban("127.0.0.3", 600)]))
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", str(rules)], check=True)
    # applying it again replaces the table instead of failing or doubling it
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", str(rules)], check=True)
    out = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", PROBE, str(PORT)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    counts = json.loads(out.stdout)
    # the flooder: one burst (40) plus 20/s over its ~1 s of sending, not its 300
    assert 30 <= counts["127.0.0.2"] <= 100, counts
    assert counts["127.0.0.3"] == 0, counts  # banned
    assert counts["127.0.0.4"] == 300, counts  # a trunk host is exempt
    assert counts["127.0.0.5"] == 10, counts  # an ordinary source is untouched


def test_bad_settings_are_refused_with_the_reason() -> None:
    with pytest.raises(SipConfigError, match="port 0"):
        FirewallSettings(ports=(0,))
    with pytest.raises(SipConfigError, match="not an address"):
        FirewallSettings(ports=(5060,), exempt=("provider.example",))
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        Ban("203.0.113.300", 5)
    text = nft_ruleset(FirewallSettings(ports=(5061, 5060, 5060)), [Ban("2001:db8::1", 5)])
    assert "th dport { 5060, 5061 }" in text
    assert "elements = { 2001:db8::1 timeout 5s }" in text
