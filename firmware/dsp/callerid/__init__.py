"""Caller ID: message formats, FSK (Bell 202 / V.23) and DTMF signalling, call-waiting (type II).

Generation is for the FXS ports (we are the exchange), decoding for the FXO ports (we are the
telephone).  The layers are independent:

- :mod:`.messages`: the data link layer (SDMF, MDMF, ETSI EN 300 659-3), bytes in and out;
- :mod:`.fsk`: the physical layer, bytes to audio and audio to messages, frame by frame;
- :mod:`.dtmf_clip`: caller ID sent as DTMF digits in its national variants;
- :mod:`.type2`: the CPE alerting signal of caller ID on call waiting and its detector.
"""

from firmware.dsp.callerid.dtmf_clip import (
    DtmfClip,
    DtmfClipDecoder,
    DtmfClipError,
    dtmf_clip_signal,
)
from firmware.dsp.callerid.fsk import (
    FskDemodulator,
    FskStandard,
    decode_callerid,
    fsk_modulate,
    modulate_message,
)
from firmware.dsp.callerid.messages import (
    Absence,
    CallerIdError,
    CallerIdMessage,
    CallSetup,
    ChecksumError,
    DateTime,
    FramingError,
    InvalidMessage,
    LengthError,
    MessageWaiting,
    Parameter,
    SdmfCallerId,
    SdmfVmwi,
    UnknownMessage,
    decode_message,
    encode_message,
)
from firmware.dsp.callerid.type2 import (
    CallWaitingReceiver,
    CallWaitingSender,
    CasDetected,
    CasDetector,
    cas_tone,
)

__all__ = [
    "Absence",
    "CallSetup",
    "CallWaitingReceiver",
    "CallWaitingSender",
    "CallerIdError",
    "CallerIdMessage",
    "CasDetected",
    "CasDetector",
    "ChecksumError",
    "DateTime",
    "DtmfClip",
    "DtmfClipDecoder",
    "DtmfClipError",
    "FramingError",
    "FskDemodulator",
    "FskStandard",
    "InvalidMessage",
    "LengthError",
    "MessageWaiting",
    "Parameter",
    "SdmfCallerId",
    "SdmfVmwi",
    "UnknownMessage",
    "cas_tone",
    "decode_callerid",
    "decode_message",
    "dtmf_clip_signal",
    "encode_message",
    "fsk_modulate",
    "modulate_message",
]
