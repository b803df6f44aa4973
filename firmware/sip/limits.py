"""Hard limits of the pjsua2 build we ship, measured and written down in DESIGN.md.

Crossing some of them does not return an error: pjsua2 hits a C assertion and the whole
process aborts.  ``firmware.sip`` checks these numbers itself before asking pjsua2.
"""

from __future__ import annotations

# DESIGN.md "pjsua2 as shipped": PJSUA_MAX_ACC is 8; a 9th Account.create aborts the process.
PJSUA_MAX_ACCOUNTS = 8

# DESIGN.md "pjsua2 as shipped": at most 4 concurrent calls whatever maxCalls says; the 5th
# makeCall raises PJ_ETOOMANY and a 5th incoming INVITE gets 486 from pjsua itself.
PJSUA_MAX_CALLS = 4

# pjlib pj/config.h: PJ_IOQUEUE_MAX_HANDLES defaults to 64 and the wheel keeps the default;
# pjmedia's own ioqueue (MediaConfig.hasIoqueue) is created with that many keys.
PJ_IOQUEUE_MAX_HANDLES = 64

# pjlib pj/config.h: PJ_IOQUEUE_KEY_FREE_DELAY (ms) a closed socket's key stays unusable.
PJ_IOQUEUE_KEY_FREE_DELAY_MS = 500

# pjsua_media.c: every call's audio stream opens an RTP and an RTCP socket (no rtcp-mux).
MEDIA_SOCKETS_PER_CALL = 2

# The media ioqueue's keys: live calls hold MEDIA_SOCKETS_PER_CALL each, closed ones are held
# for PJ_IOQUEUE_KEY_FREE_DELAY_MS.  New media sessions per second that just fill it:
#   (64 - 4 * 2) / (2 * 0.5 s) = 56 /s   (measured abort: 65-75 short calls/s; see docs/capacity.md)
MEDIA_SESSIONS_PER_S_CEILING = (
    PJ_IOQUEUE_MAX_HANDLES - PJSUA_MAX_CALLS * MEDIA_SOCKETS_PER_CALL
) / (MEDIA_SOCKETS_PER_CALL * PJ_IOQUEUE_KEY_FREE_DELAY_MS / 1000)

# pjsua.h PJSUA_MAX_CONF_PORTS: slots in pjmedia's conference bridge
# (``EpConfig().medConfig.maxMediaPorts`` reads 254 in the wheel).  Every line port, every
# application port (firmware.pbx.apps.APP_PORTS) and every call's stream takes one.
PJSUA_MAX_CONF_PORTS = 254
