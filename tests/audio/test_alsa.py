"""ALSA backend against real alsa-lib, with PCMs from a configuration file the test writes.

The machine has no sound card: the ``file`` plugin (over a ``null`` slave) writes what is
played to a file and reads captured audio from one.  ALSA_CONFIG_PATH points alsa-lib at our
file only, so the user's ~/.asoundrc and /etc are never read or touched.
"""

from __future__ import annotations

import array
import math
from pathlib import Path

import pytest

from drivers.audio import (
    AudioDeviceError,
    AudioFormatError,
    PcmFormat,
    backend_class,
    open_stream,
)
from drivers.audio.alsa import AlsaStream

ALSA_CONF = """
pcm.ponte_out {{
    type file
    slave.pcm {{ type null }}
    file "{out}"
    format "raw"
}}
pcm.ponte_in {{
    type file
    slave.pcm {{ type null }}
    file "/dev/null"
    infile "{inp}"
    format "raw"
}}
"""


@pytest.fixture
def alsa_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    conf = tmp_path / "asound.conf"
    conf.write_text(ALSA_CONF.format(out=tmp_path / "out.raw", inp=tmp_path / "in.raw"))
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))
    return tmp_path


def tone(fmt: PcmFormat, frames: int, hz: float = 1004.0) -> list[bytes]:
    """A 1004 Hz test tone (ITU-T O.133's digital milliwatt frequency), frame by frame."""
    n = fmt.samples_per_frame
    samples = array.array(
        "h", [round(12000 * math.sin(2 * math.pi * hz * i / fmt.rate)) for i in range(frames * n)]
    )
    raw = samples.tobytes()
    return [raw[k * 2 * n : (k + 1) * 2 * n] for k in range(frames)]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_played_frames_land_in_the_file_plugin_output(alsa_dir: Path, rate: int) -> None:
    fmt = PcmFormat(rate)
    frames = tone(fmt, 50)
    with open_stream("alsa", fmt, device="ponte_out", capture_device="") as stream:
        assert isinstance(stream, AlsaStream)
        for frame in frames:
            stream.write_frame(frame)
    written = (alsa_dir / "out.raw").read_bytes()
    assert written == b"".join(frames)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_captured_frames_come_from_the_file_plugin_input(alsa_dir: Path, rate: int) -> None:
    fmt = PcmFormat(rate)
    frames = tone(fmt, 20, hz=697.0)
    (alsa_dir / "in.raw").write_bytes(b"".join(frames))
    with AlsaStream(fmt, device="ponte_out", capture_device="ponte_in") as stream:
        got = [stream.read_frame() for _ in range(20)]
    # (Past the end of its input file, alsa-lib's file plugin hands out whatever is in its
    # buffer, so nothing is asserted about later reads.)
    assert got == frames


def test_unknown_pcm_is_named_in_the_error(alsa_dir: Path) -> None:
    with pytest.raises(AudioDeviceError, match="no_such_pcm"):
        AlsaStream(PcmFormat(), device="no_such_pcm", capture_device="")


def test_bad_capture_pcm_closes_the_playback_one(alsa_dir: Path) -> None:
    with pytest.raises(AudioDeviceError, match="capture PCM 'nope'"):
        AlsaStream(PcmFormat(), device="ponte_out", capture_device="nope")
    # The playback PCM was released: it can be opened again and works.
    with AlsaStream(PcmFormat(), device="ponte_out", capture_device="") as stream:
        stream.write_frame(bytes(320))


def test_wrong_frame_size_is_refused_before_the_device(alsa_dir: Path) -> None:
    with AlsaStream(PcmFormat(8000), device="ponte_out", capture_device="") as stream:
        with pytest.raises(AudioFormatError, match="320 bytes, got 640"):
            stream.write_frame(bytes(640))
        stream.write_frame(bytes(320))
    assert (alsa_dir / "out.raw").read_bytes() == bytes(320)


def test_closed_stream_refuses_io(alsa_dir: Path) -> None:
    stream = AlsaStream(PcmFormat(), device="ponte_out", capture_device="")
    stream.close()
    stream.close()  # idempotent
    with pytest.raises(AudioDeviceError, match="closed"):
        stream.write_frame(bytes(320))
    with pytest.raises(AudioDeviceError, match="closed"):
        stream.read_frame()


def test_playback_only_stream_cannot_read(alsa_dir: Path) -> None:
    with AlsaStream(PcmFormat(), device="ponte_out", capture_device="") as stream:
        with pytest.raises(AudioDeviceError, match="without capture"):
            stream.read_frame()


def test_registry_finds_every_backend() -> None:
    assert backend_class("alsa") is AlsaStream
    assert backend_class("memory").__name__ == "MemoryStream"
    assert backend_class("socket").__name__ == "SocketStream"
    with pytest.raises(LookupError, match="known: alsa, memory, socket"):
        backend_class("pulse")
