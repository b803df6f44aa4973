"""``ponte config`` end to end, through the real command registry."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from firmware import cli
from firmware.store import ConfigStore, dumps_toml

from .helpers import rich_config


def run(capsys: pytest.CaptureFixture[str], data: Path, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["config", "--data-dir", str(data), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_set_show_history_diff_rollback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, tmp_path, "set", "lines.fxs[1].gain_rx", "-3")[0] == 0
    code, out, _ = run(capsys, tmp_path, "set", "lines.fxs[1].gain_rx", "-6.0", "--author", "alice")
    assert (code, out) == (0, "version 3: 1 change: lines.fxs[1].gain_rx\n")
    assert run(capsys, tmp_path, "set", "system.hostname", "office")[0] == 0
    assert run(capsys, tmp_path, "show", "system.hostname")[1] == '"office"\n'
    assert run(capsys, tmp_path, "show", "lines.fxs[1].gain_rx")[1] == "-6.0\n"
    shown = tomllib.loads(run(capsys, tmp_path, "show", "lines.fxs[1]")[1])
    assert shown["gain_rx"] == -6.0

    code, out, _ = run(capsys, tmp_path, "diff", "2", "3")
    assert out == "lines.fxs[1].gain_rx: -3.0 -> -6.0\n"
    code, out, _ = run(capsys, tmp_path, "history")
    lines = out.splitlines()
    assert lines[0].startswith("*    4") and "system.hostname" in lines[0]
    assert "alice" in lines[1]
    assert run(capsys, tmp_path, "rollback", "1")[1] == "version 5: rollback to version 1\n"
    assert run(capsys, tmp_path, "show", "system.hostname")[1] == '"ponte"\n'
    assert run(capsys, tmp_path, "set", "system.hostname", "ponte")[1] == "no change (version 5)\n"


def test_set_list_and_inline_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, tmp_path, "set", "network.ntp", '["ntp1.example.net", "10.0.0.1"]')
    assert code == 0, err
    trunk = '{name = "prov", registrar = "sip.example.net", username = "u", password = "p"}'
    code, _, err = run(capsys, tmp_path, "set", "sip.trunks[0]", trunk)
    assert code == 0, err
    assert run(capsys, tmp_path, "show", "sip.trunks[0].password")[1] == '"<redacted>"\n'
    assert run(capsys, tmp_path, "show", "sip.trunks[0].password", "--secrets")[1] == '"p"\n'


def test_bad_values_name_every_problem_and_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, tmp_path, "set", "lines.fxs[1].country", "XX")
    assert code == 1
    assert "lines.fxs[1].country: unknown country 'XX'" in err
    code, _, err = run(capsys, tmp_path, "set", "lines.fxs[1].gain_rx", "loud")
    assert (code, "is not a TOML value" in err) == (1, True)
    code, _, err = run(capsys, tmp_path, "set", "lines.fxs[7].gain_rx", "1")
    assert (code, "lines.fxs[7]: no such item (2 present" in err) == (1, True)
    code, _, err = run(capsys, tmp_path, "set", "lines.fsx[0].gain_rx", "1")
    assert (code, "unknown key 'fsx'" in err) == (1, True)
    code, _, err = run(capsys, tmp_path, "diff", "1", "9")
    assert (code, "no configuration version 9" in err) == (1, True)
    code, _, err = run(
        capsys, tmp_path, "set", "lines.fxs[0].gain_rx", "2", "--expect-version", "7"
    )
    assert (code, "not 7" in err) == (1, True)
    with ConfigStore.open(tmp_path) as store:
        assert store.head() == 1


def test_export_import_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    source = tmp_path / "site.toml"
    source.write_text(dumps_toml(rich_config()))
    assert run(capsys, data, "validate", str(source))[1] == f"{source}: valid\n"
    code, out, err = run(capsys, data, "import", str(source))
    assert (code, out.startswith("version 2: ")) == (0, True), err

    full, redacted = tmp_path / "full.toml", tmp_path / "redacted.toml"
    assert run(capsys, data, "export", str(full))[0] == 0
    assert run(capsys, data, "export", str(redacted), "--redact")[0] == 0
    assert stat.S_IMODE(full.stat().st_mode) == 0o600
    assert "secret-provider" in full.read_text()
    assert "secret-provider" not in redacted.read_text()
    assert tomllib.loads(full.read_text()) == tomllib.loads(source.read_text().split("\n", 1)[1])
    # A redacted backup re-imported keeps the secrets: no change at all.
    assert run(capsys, data, "import", str(redacted))[1] == "no change (version 2)\n"

    broken = tmp_path / "broken.toml"
    broken.write_text(
        full.read_text()
        .replace('hostname = "ponte"', 'hostname = "no such host"')
        .replace("port = 5061", "port = 0")
    )
    for action in ("validate", "import"):
        code, out, err = run(capsys, data, action, str(broken))
        assert code == 1
        assert "refused, 2 problem(s); nothing was changed" in err
        assert "system.hostname: 'no such host' is not a host name" in err
        assert "sip.transports.tls.port: 0 is out of range 1..65535" in err
    code, _, err = run(capsys, data, "import", str(tmp_path / "missing.toml"))
    assert code == 1 and "missing.toml" in err
    assert run(capsys, data, "export", "-")[1].startswith("# Ponte configuration")


def test_corrupt_database_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ponte.db").write_bytes(b"\x00garbage" * 50)
    code, _, err = run(capsys, tmp_path, "show")
    assert code == 1
    assert "not a SQLite database" in err and "left untouched" in err


def test_data_dir_from_environment_in_a_real_process(tmp_path: Path) -> None:
    env = {**os.environ, "PONTE_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "firmware", "config", "set", "system.country", "DE"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ponte.db").exists()
    with ConfigStore.open(tmp_path) as store:
        assert store.current().config.system.country == "DE"


def test_unset_removes_items_and_resets_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ConfigStore.open(tmp_path) as store:
        store.apply(rich_config(), author="t")
    code, _, err = run(capsys, tmp_path, "unset", "sip.trunks[0]")
    # Route 'mobile' still sends calls to the removed trunk: refused, and named.
    assert code == 1
    assert "dialplan.routes[3].to: 'trunk:provider': no trunk named 'provider'" in err
    assert run(capsys, tmp_path, "unset", "dialplan.routes[3]")[0] == 0
    code, _, err = run(capsys, tmp_path, "unset", "sip.trunks[0]")
    assert code == 0, err
    assert run(capsys, tmp_path, "show", "sip.trunks[0].name")[1] == '"backup"\n'
    assert run(capsys, tmp_path, "set", "lines.fxs[0].gain_rx", "3")[0] == 0
    assert run(capsys, tmp_path, "unset", "lines.fxs[0].gain_rx")[0] == 0
    assert run(capsys, tmp_path, "show", "lines.fxs[0].gain_rx")[1] == "0.0\n"
    code, _, err = run(capsys, tmp_path, "unset", "sip.trunks[5]")
    assert code == 1 and "sip.trunks[5]: no such item (1 present)" in err
