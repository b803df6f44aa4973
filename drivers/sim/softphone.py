"""A SIP softphone beside the simulated box: baresip (Debian package) on 127.0.0.1.

Not a simulation: real SIP and RTP, so that a simulated analogue phone can call a softphone
and be called by it.  Without a sound card the softphone sends a 440 Hz test tone and keeps
what it hears in WAV files (baresip's sndfile module).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

DEFAULT_PORT = 5070
DEFAULT_USER = "201"
BARESIP_MODULES = Path("/usr/lib/baresip/modules")

CONFIG = """\
# written by 'ponte sim softphone': baresip on 127.0.0.1 without a sound card
net_interface\t\t127.0.0.1
sip_listen\t\t127.0.0.1:{port}
audio_player\t\taufile,{dir}/unused.wav
audio_source\t\tausine,440
ausrc_srate\t\t48000
ausrc_channels\t\t2
audio_alert\t\taufile,{dir}/unused.wav
module_path\t\t{modules}
module\t\t\tg711.so
module\t\t\tausine.so
module\t\t\taufile.so
module\t\t\tsndfile.so
snd_path\t\t{dir}/heard
module_tmp\t\tuuid.so
module_tmp\t\taccount.so
module_app\t\tcontact.so
module_app\t\tmenu.so
module\t\t\tstdio.so
"""


class SoftphoneError(Exception):
    """baresip is missing or the directory cannot be written."""


def write_config(directory: Path, *, port: int, user: str) -> None:
    if not 1 <= port <= 65535:
        raise SoftphoneError(f"port {port} outside 1..65535")
    if not user or not user.replace("+", "").isalnum():
        raise SoftphoneError(f"user {user!r}: digits or letters only")
    (directory / "heard").mkdir(parents=True, exist_ok=True)
    (directory / "config").write_text(
        CONFIG.format(port=port, dir=directory.resolve(), modules=BARESIP_MODULES)
    )
    # No registration: the box reaches it as an IP-authenticated trunk at this address.
    (directory / "accounts").write_text(f"<sip:{user}@127.0.0.1:{port}>;regint=0\n")
    (directory / "contacts").write_text(
        '"Ponte phone 1" <sip:101@127.0.0.1:5060>\n"Ponte phone 2" <sip:102@127.0.0.1:5060>\n'
    )


def run(directory: Path, *, port: int = DEFAULT_PORT, user: str = DEFAULT_USER) -> None:
    """Write the configuration and replace this process with baresip (its console)."""
    baresip = shutil.which("baresip")
    if baresip is None:
        raise SoftphoneError("baresip is not installed (Debian package baresip-core)")
    try:
        write_config(directory, port=port, user=user)
    except OSError as exc:
        raise SoftphoneError(f"cannot write {directory}: {exc}") from None
    os.execv(baresip, [baresip, "-f", str(directory)])
