from __future__ import annotations

import json

import numpy as np
import pytest

from firmware.dsp.callerid import analysis
from firmware.dsp.callerid.dtmf_clip import FORMAT_A_C, DtmfClip
from firmware.dsp.callerid.fsk import FskStandard, fsk_modulate
from firmware.dsp.callerid.messages import (
    Absence,
    CallerIdMessage,
    CallSetup,
    ChecksumError,
    DateTime,
    InvalidMessage,
    MessageWaiting,
    SdmfCallerId,
    encode_message,
)
from firmware.dsp.profiles import get_profile


def test_build_message_from_options():
    msg = analysis.build_message(
        "mdmf", number="5551234", name="J SMITH", date="03141509", redirecting="5550000"
    )
    assert msg == CallSetup(
        date_time=DateTime(3, 14, 15, 9),
        number="5551234",
        name="J SMITH",
        redirecting_number="5550000",
    )
    assert analysis.build_message("mdmf", absence="private") == CallSetup(
        number_absence=Absence.PRIVATE, name_absence=Absence.PRIVATE
    )
    assert analysis.build_message("sdmf", number="5551234", date="01020304") == SdmfCallerId(
        DateTime(1, 2, 3, 4), number="5551234"
    )
    assert analysis.build_message("vmwi-off") == MessageWaiting(active=False)
    assert analysis.build_message("dtmf", number="0812345", dtmf_format=FORMAT_A_C) == DtmfClip(
        FORMAT_A_C, number="0812345"
    )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"fmt": "xml"}, "unknown caller ID format"),
        ({"fmt": "sdmf", "number": "1"}, "date and time"),
        ({"fmt": "mdmf", "absence": "gone"}, "private or unavailable"),
        ({"fmt": "dtmf", "number": "1"}, "national format"),
        ({"fmt": "mdmf", "number": "12-34"}, "digits"),
    ],
)
def test_build_message_names_bad_options(kwargs, fragment):
    with pytest.raises(InvalidMessage, match=fragment):
        analysis.build_message(**kwargs)


@pytest.mark.parametrize("country", ["US", "GB", "DE", "SE", "NL", "IN"])
def test_render_then_analyse_for_each_country_profile(country):
    spec = get_profile(country).callerid
    if spec.fsk:
        msg: CallerIdMessage | DtmfClip = CallSetup(
            date_time=DateTime(5, 6, 7, 8), number="0123456"
        )
    else:
        assert spec.dtmf_format is not None
        msg = analysis.build_message("dtmf", number="0123456", dtmf_format=spec.dtmf_format)
    pcm = np.concatenate([np.zeros(2000), analysis.render(msg, spec=spec), np.zeros(2000)])
    found = analysis.analyse(pcm, dtmf_format=spec.dtmf_format)
    assert [f.result for f in found] == [msg]
    assert found[0].signalling == (spec.standard if spec.fsk else f"dtmf {spec.dtmf_format}")
    assert 0 < found[0].at_ms <= len(pcm) / 8


def test_standard_detection():
    msg = CallSetup(number="1")
    standards: tuple[FskStandard, ...] = ("bell202", "v23")
    for standard in standards:
        pcm = analysis.render(msg, standard=standard)
        assert analysis.detect_fsk_standard(pcm) == standard
    assert analysis.detect_fsk_standard(np.zeros(8000)) is None
    assert analysis.detect_fsk_standard(np.zeros(10)) is None


def test_json_description_of_messages_and_errors():
    msg = CallSetup(date_time=DateTime(12, 24, 18, 0), number="123", name_absence=Absence.PRIVATE)
    doc = analysis.to_dict(msg)
    assert doc == {
        "kind": "CallSetup",
        "message_type": "0x80",
        "checksum": "ok",
        "fields": {"date_time": "12-24 18:00", "number": "123", "name_absence": "private"},
    }
    data = bytearray(encode_message(msg))
    data[-1] ^= 1
    burst = np.concatenate([np.zeros(1000), fsk_modulate(bytes(data)), np.zeros(1000)])
    (finding,) = analysis.analyse(burst, standard="bell202")
    assert isinstance(finding.result, ChecksumError)
    err = analysis.to_dict(finding.result)
    assert err["checksum"] == "bad" and err["data"] == bytes(data).hex()
    clip = analysis.to_dict(DtmfClip.withheld(FORMAT_A_C, Absence.UNAVAILABLE))
    assert clip["fields"] == {
        "format": "A...C",
        "info_code": "00",
        "digits": "B00C",
        "absence": "unavailable",
    }
    json.dumps([doc, err, clip])
