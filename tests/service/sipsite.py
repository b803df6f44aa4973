"""A small office on loopback for end-to-end SIP tests.

kamailio is the provider (registrar and proxy with digest users), a real ``ponte run`` in
simulation registers a trunk to it, and baresip is a softphone somewhere out there,
registered to the same provider as user 201.  Everything binds 127.0.0.1 on free ports.
"""

from __future__ import annotations

import dataclasses
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from firmware.store import ConfigStore, default_config
from firmware.store.schema import (
    Account,
    Config,
    DialPlanConfig,
    NatConfig,
    Route,
    TlsTransport,
    Trunk,
)
from tests.service.test_run import Appliance, dominant_hz
from tests.sip.baresip import Baresip
from tests.sip.media import decoded_wav, record_config
from tests.sip.peers import Kamailio, TestPki, free_port, make_pki

BOX_USER, BOX_PASSWORD = "ponte", "pontepw"
PHONE_USER, PHONE_PASSWORD = "201", "pw201"
# The provider's numbers are dialled as 8 + number: a unique match at four digits, so the
# INVITE leaves on the last digit (the internal [1-7]xx plan is kept clear of it).
DIGIT_MAP = "112|911|999|[1-7]xx|8xxx|0[1-9]x.T|*xx|*xxx"
SIP_ROUTE = Route(name="provider", pattern="8xxx", to="trunk:provider", strip=1)


def configure(
    data: Path,
    kam: Kamailio,
    *,
    fxs: int = 2,
    fxo: int = 1,
    tls: TestPki | None = None,
    country: str = "",
    fxo_destination: str | None = None,
    ata: bool = False,
    adjust: Callable[[Config], Config] | None = None,
) -> None:
    """A fresh box's configuration plus a trunk to ``kam`` and a route to it.

    ``ata``: no trunk; phone 1's port registers on its own as ``BOX_USER`` (account "line1").
    ``adjust``: a last change to the configuration (IVR, rooms, recording...).
    """
    config = default_config(fxs, fxo)
    store = ConfigStore.open(data, defaults=config)
    try:
        config = store.current().config
        trunk = Trunk(
            name="provider",
            registrar=f"127.0.0.1:{kam.tls_port if tls else kam.port}",
            username=BOX_USER,
            password=BOX_PASSWORD,
            realm="127.0.0.1",
            expiry_s=300,
            destination="101",
            transport="tls" if tls else "udp",
            srtp="mandatory" if tls else "off",
            nat=NatConfig(keepalive_s=0),
        )
        transports = config.sip.transports
        if tls is not None:
            transports = dataclasses.replace(
                transports,
                tls=TlsTransport(
                    enabled=True,
                    port=free_port(),
                    cert_file=str(tls.cert),
                    key_file=str(tls.key),
                    ca_file=str(tls.ca_cert),
                ),
            )
        plan = config.dialplan
        accounts: tuple[Account, ...] = ()
        if ata:
            accounts = (
                Account(
                    name="line1",
                    fxs=0,
                    registrar=trunk.registrar,
                    username=BOX_USER,
                    password=BOX_PASSWORD,
                    realm="127.0.0.1",
                    expiry_s=300,
                    transport=trunk.transport,
                    srtp=trunk.srtp,
                    nat=NatConfig(keepalive_s=0),
                ),
            )
        config = dataclasses.replace(
            config,
            sip=dataclasses.replace(
                config.sip,
                trunks=() if ata else (trunk,),
                accounts=accounts,
                transports=transports,
            ),
            dialplan=DialPlanConfig(
                digit_map=DIGIT_MAP,
                inter_digit_timeout_ms=plan.inter_digit_timeout_ms,
                emergency_numbers=plan.emergency_numbers,
                routes=plan.routes if ata else (SIP_ROUTE, *plan.routes),
            ),
        )
        if fxo_destination is not None:
            lines = config.lines
            config = dataclasses.replace(
                config,
                lines=dataclasses.replace(
                    lines,
                    fxo=tuple(
                        dataclasses.replace(line, destination=fxo_destination) for line in lines.fxo
                    ),
                ),
            )
        if country:
            config = dataclasses.replace(
                config, system=dataclasses.replace(config.system, country=country)
            )
        if adjust is not None:
            config = adjust(config)
        store.apply(config, author="test", summary="SIP site")
    finally:
        store.close()


class Site:
    def __init__(
        self,
        tmp_path: Path,
        *,
        tls: bool = False,
        fxs: int = 2,
        fxo: int = 1,
        country: str = "",
        fxo_destination: str | None = None,
        ata: bool = False,
        users: dict[str, str] | None = None,
        adjust: Callable[[Config], Config] | None = None,
    ) -> None:
        """``users``: more digest users at the provider (for :meth:`add_phone`)."""
        self.pki = make_pki(tmp_path / "pki")
        self.tls = tls
        self.tmp_path = tmp_path
        self.kam = Kamailio(
            tmp_path / "kam",
            {BOX_USER: BOX_PASSWORD, PHONE_USER: PHONE_PASSWORD, **(users or {})},
            tls=self.pki if tls else None,
        )
        self.others: list[Baresip] = []
        self.phone: Baresip | None = None
        self.box: Appliance | None = None
        try:
            configure(
                tmp_path / "data",
                self.kam,
                fxs=fxs,
                fxo=fxo,
                tls=self.pki if tls else None,
                country=country,
                fxo_destination=fxo_destination,
                ata=ata,
                adjust=adjust,
            )
            self.box = Appliance(tmp_path, "--fxs", str(fxs), "--fxo", str(fxo), "--stderr")
            self.box.wait_notify("READY=1")
            account = "line1" if ata else "provider"
            self.box.wait_log(f"SIP account {account}: registered", timeout=30)
            self.box.wait_log("control API listening", timeout=30)
            port = self.kam.tls_port if tls else self.kam.port
            transport = ";transport=tls" if tls else ""
            media = ";mediaenc=srtp-mand" if tls else ""
            self.phone = Baresip(
                tmp_path / "phone",
                f"<sip:{PHONE_USER}@127.0.0.1:{port}{transport}>;auth_pass={PHONE_PASSWORD};"
                f"regint=300;answermode=manual{media}",
                self.pki,
                extra=record_config(tmp_path / "phone-heard"),
            )
            self.heard_dir = tmp_path / "phone-heard"
            self.wait_registered(PHONE_USER)
        except BaseException:
            self.close()
            raise

    @property
    def provider_uri(self) -> str:
        port = self.kam.tls_port if self.tls else self.kam.port
        return f"127.0.0.1:{port}"  # baresip adds the account's transport itself

    def wait_registered(self, user: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if f"AoR: {user}" in (self.kam.kamcmd("ul.dump") or ""):
                return
            time.sleep(0.1)
        raise AssertionError(f"{user} never registered with the provider")

    def add_phone(self, user: str, password: str) -> tuple[Baresip, Path]:
        """Another softphone at the provider (a user given to the constructor); returns it
        and the directory its decoded audio goes to (:func:`heard_by`)."""
        heard = self.tmp_path / f"heard-{user}"
        phone = Baresip(
            self.tmp_path / f"phone-{user}",
            f"<sip:{user}@{self.provider_uri}>;auth_pass={password};regint=300;answermode=manual",
            self.pki,
            extra=record_config(heard),
        )
        self.others.append(phone)
        self.wait_registered(user)
        return phone, heard

    def close(self) -> None:
        for other in self.others:
            other.stop()
        if self.phone is not None:
            self.phone.stop()
        if self.box is not None:
            self.box.close()
        self.kam.stop()


def phone_heard(site: Site) -> np.ndarray:
    """What the softphone decoded from the box (baresip's sndfile dump), at 8 kHz."""
    return read_wav(decoded_wav(site.heard_dir))


def heard_by(directory: Path) -> np.ndarray:
    """What a softphone of :meth:`Site.add_phone` decoded, at 8 kHz."""
    return read_wav(decoded_wav(directory))


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        raw = w.readframes(w.getnframes())
        pcm = np.frombuffer(raw, "<i2").astype(float)
        if w.getnchannels() > 1:
            pcm = pcm.reshape(-1, w.getnchannels())[:, 0]
        rate = w.getframerate()
    if rate != 8000:  # baresip's aufile writes at its own rate; the checks want 8 kHz
        idx = np.arange(0, len(pcm), rate / 8000).astype(int)
        pcm = pcm[idx[idx < len(pcm)]]
    return pcm


def heard_tone(pcm: np.ndarray, hz: float) -> bool:
    """``hz`` dominates some half second of ``pcm`` (8 kHz)."""
    return any(
        abs(dominant_hz(pcm[i : i + 4000]) - hz) <= 10 for i in range(0, len(pcm) - 4000, 2000)
    )


def softphone_heard(directory: Path, hz: float, timeout: float = 15) -> bool:
    """A softphone decoded ``hz`` in one of its calls (baresip writes one WAV per call and
    completes it when the call closes, so wait for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(directory.glob("dump-*-dec.wav")):
            try:
                if heard_tone(read_wav(path), hz):
                    return True
            except (EOFError, wave.Error):
                pass
        time.sleep(0.2)
    return False
