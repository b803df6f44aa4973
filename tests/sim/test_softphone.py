"""``ponte sim softphone``: baresip's files for a softphone on 127.0.0.1."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from drivers.sim.softphone import SoftphoneError, write_config


def test_the_softphone_listens_on_loopback_without_registering(tmp_path: Path) -> None:
    write_config(tmp_path / "sp", port=5071, user="201")
    config = (tmp_path / "sp" / "config").read_text()
    assert "sip_listen\t\t127.0.0.1:5071" in config
    assert "net_interface\t\t127.0.0.1" in config
    assert (tmp_path / "sp" / "accounts").read_text() == "<sip:201@127.0.0.1:5071>;regint=0\n"
    assert (tmp_path / "sp" / "heard").is_dir()
    # baresip itself accepts the files: it starts, reads them and quits on 'q'
    proc = subprocess.run(
        ["baresip", "-f", str(tmp_path / "sp"), "-e", "/quit"],
        input="q", capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert "Populated 1 account" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize(("port", "user"), [(0, "201"), (70000, "201"), (5070, ""), (5070, "a b")])
def test_bad_settings_are_refused_by_name(tmp_path: Path, port: int, user: str) -> None:
    with pytest.raises(SoftphoneError, match=r"port|user"):
        write_config(tmp_path, port=port, user=user)
