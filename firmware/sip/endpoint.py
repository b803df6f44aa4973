"""The pjsua2 endpoint on its own thread (DESIGN.md "Threads and time").

One ``SipEndpoint`` owns one thread.  That thread creates the pjsua2 ``Endpoint``
(``threadCnt=0``, ``mainThreadOnly``), its transports and accounts, polls
``libHandleEvents`` and runs queued commands; no other thread touches pjsua2.  pjsua2
callbacks become frozen events (``firmware.sip.events``) handed to the asyncio loop with
``call_soon_threadsafe``; at most ``events_cap`` are in flight, beyond that they are dropped,
counted and logged.  ``stop()`` hangs up calls, unregisters, drops every Call and Account
before ``libDestroy`` (otherwise pjsua2 aborts the process at exit).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import gc
import glob
import ipaddress
import logging
import os
import queue
import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, TypeVar

import pjsua2 as pj

from firmware.sip.admission import SourceBuckets, TokenBucket
from firmware.sip.audio import LINE_FORMAT, LineAudio, LinePort, vector_fast_path_problem
from firmware.sip.backoff import backoff_delay
from firmware.sip.errors import PeerProtocolError, PjsuaError, SipLimitError, SipUsageError
from firmware.sip.events import (
    DTMF_DIGITS,
    CallerIdentity,
    CallMediaChanged,
    CallStateChanged,
    DtmfMethod,
    DtmfReceived,
    IncomingCall,
    InviteRefused,
    RegistrationChanged,
    RegistrationRetryScheduled,
    SipEvent,
    TransferCallPlaced,
    TransferStatus,
    TransportInfo,
)
from firmware.sip.identity import called_of, caller_of, from_header, refer_target
from firmware.sip.limits import PJSUA_MAX_ACCOUNTS, PJSUA_MAX_CALLS
from firmware.sip.message import parse_request, source_host
from firmware.sip.policy import Decision, InboundPolicy, PolicySettings, Verdict
from firmware.sip.quality import CallQuality, call_quality
from firmware.sip.settings import (
    CODEC_IDS,
    AccountSettings,
    EndpointSettings,
    TransportSettings,
    nameserver_address,
)
from firmware.sip.trace import SipTrace, TraceRing, parse_message_log

log = logging.getLogger(__name__)
pjlog = logging.getLogger("firmware.sip.pjsip")

T = TypeVar("T")

UNREGISTER_RETRY_S = 0.2
SINK_USER = "ponte-sink"
SINK_RTP_ADDRESS = "192.0.2.1"  # RFC 5737 TEST-NET-1: never a local address, bind fails
POLL_MS = 10  # libHandleEvents timeout: the latency of a queued command at worst
STOP_GRACE_S = 2.0  # time given to BYEs and un-REGISTERs to complete on stop
START_TIMEOUT_S = 10.0
COMMAND_QUEUE_CAP = 256  # commands waiting for the endpoint thread
OVERFLOW_LOG_EVERY = 100  # log one line per this many dropped events
# Answers to a REFER from the far end (RFC 3515 section 2.4.2; RFC 3261 section 21).
REFER_ACCEPTED = 202
REFER_BAD = 400  # no usable Refer-To
REFER_FORBIDDEN = 403  # a target elsewhere than the call's provider, or the toll rules
REFER_NOT_IMPLEMENTED = 501  # a call of the local account: its target would be this box
REFER_BUSY = 503  # all of pjsua's calls are up: the new one could not be placed
REFERRED_CAP = 4  # accepted REFERs whose new call has not reported yet (one per call)

# Judges a REFER's target number for an account: (status, reason), 202 to place the call.
ReferCheck = Callable[[str, str], tuple[int, str]]

# pjlib log levels (pj/log.h): 1 error, 2 warning, 3 info, 4..6 debug.
_PJ_TO_LOGGING = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}
PJ_MSG_LOG_LEVEL = 4  # pjsua_core.c logs every SIP message sent and received at level 4
# The bridge runs at the lines' rate (drivers.audio.format, 8 kHz narrowband): line ports
# then cross it without resampling, and G.711 calls (the common case) neither.
BRIDGE_CLOCK_HZ = LINE_FORMAT.rate
MAX_DTMF_DIGITS = 32  # one send_dtmf; pjsua queues RFC 4733 digits in a fixed array
_DTMF_METHODS: dict[str, int] = {
    "rfc4733": pj.PJSUA_DTMF_METHOD_RFC2833,
    "info": pj.PJSUA_DTMF_METHOD_SIP_INFO,
}
_DTMF_METHOD_NAMES: dict[int, DtmfMethod] = {
    pj.PJSUA_DTMF_METHOD_RFC2833: "rfc4733",
    pj.PJSUA_DTMF_METHOD_SIP_INFO: "info",
}
# pjsua_call_media_status: audio flows (possibly one way) and the call has a bridge slot.
_MEDIA_UP = (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD)

_INV_STATES = {
    pj.PJSIP_INV_STATE_NULL: "null",
    pj.PJSIP_INV_STATE_CALLING: "calling",
    pj.PJSIP_INV_STATE_INCOMING: "incoming",
    pj.PJSIP_INV_STATE_EARLY: "early",
    pj.PJSIP_INV_STATE_CONNECTING: "connecting",
    pj.PJSIP_INV_STATE_CONFIRMED: "confirmed",
    pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected",
}
_TRANSPORT_TYPES = {
    ("udp", 4): pj.PJSIP_TRANSPORT_UDP,
    ("tcp", 4): pj.PJSIP_TRANSPORT_TCP,
    ("tls", 4): pj.PJSIP_TRANSPORT_TLS,
    ("udp", 6): pj.PJSIP_TRANSPORT_UDP6,
    ("tcp", 6): pj.PJSIP_TRANSPORT_TCP6,
    ("tls", 6): pj.PJSIP_TRANSPORT_TLS6,
}
_SRTP = {
    "off": pj.PJMEDIA_SRTP_DISABLED,
    "optional": pj.PJMEDIA_SRTP_OPTIONAL,
    "mandatory": pj.PJMEDIA_SRTP_MANDATORY,
}


def tls_library_version() -> str:
    """The OpenSSL that pjsua2's wheel bundles and uses (DESIGN.md: 1.0.2k, TLS 1.2 at most)."""
    libs = os.path.join(os.path.dirname(os.path.dirname(pj.__file__)), "pjsua2_python.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libcrypto*"))):
        lib = ctypes.CDLL(path)  # already loaded by pjsua2: dlopen hands back the same copy
        fn = lib.SSLeay_version  # OpenSSL 1.0.x name of OpenSSL_version
        fn.restype = ctypes.c_char_p
        fn.argtypes = [ctypes.c_int]
        version: bytes = fn(0)
        return version.decode("ascii", "replace")
    return "unknown (no bundled libcrypto found)"


# pjlib's log level before libInit hands it our LogConfig: warnings and errors.
PRE_INIT_LOG_LEVEL = 2


def _quiet_until_init() -> None:
    """Keep libCreate's chatter off stdout.

    Until libInit installs our log writer, pjlib prints to stdout at its global level: 5 in
    a fresh process, and after a restart whatever the previous endpoint set (with that
    endpoint's decor, i.e. without newlines).  pjsua2 exposes no setter before libInit, so
    set pjlib's own global through the extension module that carries it.
    """
    so = glob.glob(os.path.join(os.path.dirname(pj.__file__), "_pjsua2*.so"))
    if so:
        ctypes.CDLL(so[0]).pj_log_set_level(PRE_INIT_LOG_LEVEL)


def pjsua_version() -> str:
    """Version of the pjsua2 wheel (the pin in pyproject.toml)."""
    return version("pjsua2-python")


def _detached(exc: BaseException) -> BaseException:
    """``exc`` without the frames behind it, ready to cross to another thread.

    A traceback keeps every frame's locals alive, pjsua2 objects included; if the last
    reference died on the asyncio thread, pjsua2 would run a destructor on a thread it does
    not know (an assertion) or keep its Endpoint singleton alive past ``libDestroy``.
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)
        e = e.__cause__ or e.__context__
    exc.__context__ = None
    exc.__cause__ = None
    return exc.with_traceback(None)


def _raise_pj(operation: str, exc: Any) -> PjsuaError:
    return PjsuaError(operation, int(getattr(exc, "status", -1)), str(getattr(exc, "reason", exc)))


@dataclass
class _Command:
    fn: Callable[[_Core], Any]
    future: concurrent.futures.Future[Any]


@dataclass
class _RegRetry:
    attempts: int = 0
    due: float | None = None


@dataclass
class _Counters:
    events_dropped: int = 0
    commands_run: int = 0
    invites_screened: int = 0
    sunk_by_policy: int = 0
    sunk_by_rate: int = 0


# ---------------------------------------------------------------------- pjsua2 subclasses
# These run on the endpoint thread only.  They hold a reference to the core, never to the loop.


class _LogWriter(pj.LogWriter):  # type: ignore[misc]  # pjsua2 ships no type information
    """pjlib's log: SIP messages into the trace ring, the rest up to ``level`` to logging.

    Called on whichever thread pjlib logs from (the endpoint's, pjmedia's clock).
    """

    def __init__(self, level: int, ring: TraceRing | None) -> None:
        super().__init__()
        self._level = level
        self._ring = ring

    def write(self, entry: Any) -> None:
        level = int(entry.level)
        msg = str(entry.msg)
        if level == PJ_MSG_LOG_LEVEL and self._ring is not None:
            trace = parse_message_log(msg, time.time())
            if trace is not None:
                self._ring.add(trace)
                return
        if level <= self._level:
            pjlog.log(_PJ_TO_LOGGING.get(level, logging.DEBUG), "%s", msg.rstrip())


class _Endpoint(pj.Endpoint):  # type: ignore[misc]
    def __init__(self, core: _Core) -> None:
        super().__init__()
        self._core: _Core | None = core

    def release(self) -> None:
        self._core = None

    def onSelectAccount(self, prm: Any) -> None:
        if self._core is not None:
            self._core.on_select_account(prm)


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, core: _Core, settings: AccountSettings | None, name: str) -> None:
        super().__init__()
        self.core = core
        self.settings = settings
        self.name = name

    def onRegState(self, prm: Any) -> None:
        self.core.on_reg_state(self, prm)

    def onIncomingCall(self, prm: Any) -> None:
        self.core.on_incoming_call(self, prm)


class _Call(pj.Call):  # type: ignore[misc]
    def __init__(self, core: _Core, account: _Account, call_id: int) -> None:
        super().__init__(account, call_id)
        self.core = core
        self.account = account
        self.call_id = call_id

    def onCallState(self, prm: Any) -> None:
        self.core.on_call_state(self)

    def onCallMediaState(self, prm: Any) -> None:
        self.core.on_call_media_state(self)

    def onDtmfDigit(self, prm: Any) -> None:
        self.core.on_dtmf_digit(self, str(prm.digit), int(prm.method))

    def onCallTransferStatus(self, prm: Any) -> None:
        self.core.on_transfer_status(self, prm)

    def onCallTransferRequest(self, prm: Any) -> None:
        self.core.on_transfer_request(self, prm)


# ---------------------------------------------------------------------- the thread's world


class _Core:
    """Everything that lives on the endpoint thread: pjsua2 objects and what they need."""

    def __init__(
        self,
        settings: EndpointSettings,
        policy: InboundPolicy,
        emit: Callable[[SipEvent], None],
        line_audio: dict[int, LineAudio] | None = None,
        trace: TraceRing | None = None,
        refer_check: ReferCheck | None = None,
    ) -> None:
        self.settings = settings
        self.refer_check = refer_check
        # New calls pjsua places for REFERs we accepted, until they report: (call, the
        # referred call's id, the target number).
        self.referred: list[tuple[_Call, int, str]] = []
        self.policy = policy
        self.emit = emit
        self.rng = random.Random()
        ring = trace if settings.trace_messages else None
        self.log_writer = _LogWriter(settings.log_level, ring)
        self.line_audio = line_audio if line_audio is not None else {}
        self.ports: dict[int, LinePort] = {}
        self.bindings: dict[int, int] = {}  # call id -> line port its audio goes to
        self.pairs: dict[int, int] = {}  # call id -> the call its audio is bridged with
        self.fast_frames = True
        self.ep: Any = _Endpoint(self)
        self.transports: dict[str, int] = {}
        self.transport_info: list[TransportInfo] = []
        self.accounts: dict[str, _Account] = {}
        self.local: _Account | None = None
        self.sink: _Account | None = None
        self.bucket = TokenBucket(settings.media_sessions_per_s, settings.media_burst)
        self.per_source = SourceBuckets(
            settings.per_source_sessions_per_s, settings.per_source_burst
        )
        self.calls: dict[int, _Call] = {}
        self.graveyard: list[_Call] = []
        self.retries: dict[str, _RegRetry] = {}
        self.counters = _Counters()
        try:
            self._create()
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """Undo a half-done start so that the next one can create pjsua2's singleton again.

        The exception's traceback keeps this object alive; it must not keep the C++ Endpoint.
        """
        self._drop_line_ports()
        for acc in (*self.accounts.values(), *(a for a in (self.local, self.sink) if a)):
            acc.shutdown()
        self.accounts.clear()
        self.local = self.sink = None
        try:
            self.ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
        except pj.Error as exc:
            log.warning("destroying a half-started endpoint: %s", exc.reason)
        self.ep.release()
        self.ep = None
        gc.collect()

    # --------------------------------------------------------------- creation

    def _create(self) -> None:
        s = self.settings
        _quiet_until_init()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = s.max_calls
        cfg.uaConfig.userAgent = s.user_agent
        for server in s.stun_servers:
            cfg.uaConfig.stunServer.append(server)
        cfg.uaConfig.stunIgnoreFailure = True
        for server in s.nameservers:
            cfg.uaConfig.nameserver.append(nameserver_address(server))
        # DESIGN.md: without a sound device call ports leak in the bridge unless this is -1.
        cfg.medConfig.sndAutoCloseTime = -1
        cfg.medConfig.clockRate = BRIDGE_CLOCK_HZ
        cfg.medConfig.sndClockRate = BRIDGE_CLOCK_HZ
        # Send every frame: a line's silence is still the line (comfort noise is not ours).
        cfg.medConfig.noVad = True
        level = max(s.log_level, PJ_MSG_LOG_LEVEL) if s.trace_messages else s.log_level
        cfg.logConfig.writer = self.log_writer
        cfg.logConfig.msgLogging = s.trace_messages
        cfg.logConfig.level = level
        # pjsua only hands entries up to consoleLevel to the writer
        cfg.logConfig.consoleLevel = level
        cfg.logConfig.decor = 0  # logging adds time and level
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()
        self._set_codecs(s.codecs)
        for t in s.transports:
            self._create_transport(t)
        self.ep.libStart()
        self._create_line_ports()
        self._create_local_account()
        if self.settings.guard:
            self._create_sink_account()
        for acc in s.accounts:
            self.add_account(acc)

    def _create_line_ports(self) -> None:
        problem = vector_fast_path_problem()
        if problem is not None:
            log.warning("line audio takes the slow frame copy (~100 us a frame): %s", problem)
        self.fast_frames = problem is None
        for number in self.settings.line_ports:
            audio = self.line_audio.get(number)
            if audio is None:
                audio = self.line_audio[number] = LineAudio(number)
            audio.call_id = None
            port = LinePort(audio, self.fast_frames)
            try:
                port.create()
            except pj.Error as exc:
                raise _raise_pj(f"creating the bridge port of line {number}", exc) from None
            self.ports[number] = port

    def _drop_line_ports(self) -> None:
        """Take the line ports out of the bridge: on this thread, before libDestroy.

        Each port leaves the bridge in its C++ destructor, which waits for the bridge's lock
        without holding the GIL; pjmedia's clock would meanwhile call into the Python object
        being destroyed.  Stopping the clock (pjsua_set_no_snd_dev) first rules that out.
        """
        if not self.ports:
            return
        try:
            self.ep.audDevManager().setNoDev()
        except pj.Error as exc:
            log.warning("stopping the bridge clock: %s", exc.reason)
        for audio in self.line_audio.values():
            audio.call_id = None
        self.ports.clear()  # no other reference may remain: the destructors run here

    def _set_codecs(self, order: tuple[str, ...]) -> None:
        wanted: dict[str, int] = {}
        prio = 250  # pjmedia codec priorities run 0 (disabled) .. 255 (highest)
        for name in order:
            for cid in CODEC_IDS[name]:
                wanted[cid] = prio
                prio -= 10
        for info in self.ep.codecEnum2():
            cid = str(info.codecId)
            self.ep.codecSetPriority(cid, wanted.get(cid, 0))

    def _create_transport(self, t: TransportSettings) -> None:
        key = t.kind if ":" not in t.host else f"{t.kind}6"
        if key in self.transports:
            raise SipUsageError(f"two {key} transports configured; pjsua picks one per kind")
        tc = pj.TransportConfig()
        tc.port = t.port
        tc.boundAddress = t.host
        if t.tls is not None:
            tls = tc.tlsConfig
            tls.certFile = t.tls.cert_file
            tls.privKeyFile = t.tls.key_file
            tls.CaListFile = t.tls.ca_file
            tls.verifyServer = t.tls.verify_server
            tls.verifyClient = t.tls.verify_client or t.tls.require_client_cert
            tls.requireClientCert = t.tls.require_client_cert
            tls.proto = pj.PJ_SSL_SOCK_PROTO_TLS1_2
            available = set(self.ep.utilSslGetAvailableCiphers())
            ciphers = [c for c in t.tls.ciphers if c in available]
            if not ciphers:
                raise SipUsageError("none of the configured TLS ciphers is available in pjsua2")
            for c in ciphers:
                tls.ciphers.append(c)
        try:
            kind = _TRANSPORT_TYPES[(t.kind, ipaddress.ip_address(t.host).version)]
            tid = self.ep.transportCreate(kind, tc)
        except pj.Error as exc:
            raise _raise_pj(f"creating the {t.kind} transport on {t.host}:{t.port}", exc) from None
        info = self.ep.transportGetInfo(tid)
        host, _, port = str(info.localName).rpartition(":")
        self.transports[key] = tid
        self.transport_info.append(TransportInfo(tid, t.kind, host.strip("[]"), int(port)))

    def _create_local_account(self) -> None:
        """The account IP peers call (and pjsua's default for INVITEs it cannot place)."""
        info = self.transport_info[0]
        cfg = pj.AccountConfig()
        host = f"[{info.host}]" if ":" in info.host else info.host
        cfg.idUri = f"sip:{self.settings.local_user}@{host}"
        cfg.regConfig.registerOnAdd = False
        self._bind_media(cfg)
        self.local = _Account(self, None, "local")
        self.local.create(cfg, True)

    def _bind_media(self, cfg: Any) -> None:
        """RTP on the SIP transport's address when that is a specific one.

        pjsua binds RTP to every interface and puts the host's default address in the SDP;
        a box told to speak SIP on one address (127.0.0.1 in simulation) must not offer media
        on another.
        """
        host = self.transport_info[0].host
        if ipaddress.ip_address(host).is_unspecified:
            return
        cfg.mediaConfig.transportConfig.boundAddress = host
        cfg.mediaConfig.transportConfig.publicAddress = host

    def _create_sink_account(self) -> None:
        """An account no INVITE can pass: pjsua refuses it before opening media sockets.

        Requiring 100rel and session timers makes pjsip_inv_verify_request2 answer 420/421
        to any INVITE that does not support them, before a dialog exists; one that does
        support both still finds SRTP demanded over end-to-end secure signalling and RTP
        bound to an address this host does not have (TEST-NET-1, RFC 5737), so no socket
        is ever registered with the ioqueue.
        """
        info = self.transport_info[0]
        cfg = pj.AccountConfig()
        host = f"[{info.host}]" if ":" in info.host else info.host
        cfg.idUri = f"sip:{SINK_USER}@{host}"
        cfg.regConfig.registerOnAdd = False
        cfg.callConfig.prackUse = pj.PJSUA_100REL_MANDATORY
        cfg.callConfig.timerUse = pj.PJSUA_SIP_TIMER_REQUIRED
        cfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY
        cfg.mediaConfig.srtpSecureSignaling = 2
        cfg.mediaConfig.transportConfig.boundAddress = SINK_RTP_ADDRESS
        cfg.mediaConfig.transportConfig.port = 0
        self.sink = _Account(self, None, "sink")
        self.sink.create(cfg, False)

    def add_account(self, s: AccountSettings) -> None:
        if s.name in self.accounts:
            raise SipUsageError(f"account {s.name!r} exists already")
        # The local and sink accounts are among pjsua's PJSUA_MAX_ACCOUNTS too.
        own = 1 + (self.sink is not None)
        if len(self.accounts) + own >= PJSUA_MAX_ACCOUNTS:
            raise SipLimitError(
                f"account {s.name!r} would be number {len(self.accounts) + own + 1} of at most "
                f"{PJSUA_MAX_ACCOUNTS} (DESIGN.md: one more aborts the process)"
            )
        cfg = pj.AccountConfig()
        cfg.idUri = s.id_uri
        reg = cfg.regConfig
        reg.registrarUri = s.registrar_uri
        reg.registerOnAdd = s.register
        reg.timeoutSec = s.expiry_s
        reg.retryIntervalSec = 0  # our back-off (firmware.sip.backoff) retries instead
        reg.firstRetryIntervalSec = 0
        reg.dropCallsOnFail = False
        sip = cfg.sipConfig
        tid = self.transports.get(s.transport, self.transports.get(f"{s.transport}6"))
        if tid is None:
            raise SipUsageError(f"account {s.name!r}: no {s.transport} transport is running")
        sip.transportId = tid
        if s.proxy_uri:
            sip.proxies.append(s.proxy_uri)
        cred = pj.AuthCredInfo(
            "digest", s.realm or "*", s.auth_username or s.username, 0, s.password
        )
        sip.authCreds.append(cred)
        nat = cfg.natConfig
        nat.viaRewriteUse = 1 if s.rport else 0
        nat.contactUseSrcPort = 1 if s.rport else 0
        nat.contactRewriteUse = 1 if s.contact_rewrite else 0
        nat.sipStunUse = pj.PJSUA_STUN_USE_DEFAULT if s.use_stun else pj.PJSUA_STUN_USE_DISABLED
        nat.mediaStunUse = nat.sipStunUse
        nat.udpKaIntervalSec = s.keepalive_s
        self._bind_media(cfg)
        med = cfg.mediaConfig
        med.srtpUse = _SRTP[s.srtp]
        # pjsua's default 1 would refuse SRTP over UDP even when only optional.
        med.srtpSecureSignaling = 1 if s.srtp == "mandatory" else 0
        acc = _Account(self, s, s.name)
        try:
            acc.create(cfg, False)
        except pj.Error as exc:
            raise _raise_pj(f"creating account {s.name!r}", exc) from None
        self.accounts[s.name] = acc
        self.retries[s.name] = _RegRetry()

    def account_reg_info(self, name: str) -> tuple[bool, int, str, int]:
        info = self.accounts[name].getInfo()
        return (
            bool(info.regIsActive),
            int(info.regStatus),
            str(info.regStatusText),
            int(info.regExpiresSec),
        )

    # --------------------------------------------------------------- callbacks

    def on_reg_state(self, acc: _Account, prm: Any) -> None:
        code = int(prm.code)
        expires = max(0, int(prm.expiration))
        registered = 200 <= code < 300 and expires > 0
        self.emit(RegistrationChanged(acc.name, code, str(prm.reason), expires, registered))
        retry = self.retries.get(acc.name)
        if retry is None or acc.settings is None:
            return
        if registered or (200 <= code < 300):
            retry.attempts, retry.due = 0, None
            return
        retry.attempts += 1
        delay = backoff_delay(acc.settings.retry_s, retry.attempts, self.rng.random())
        retry.due = time.monotonic() + delay
        self.emit(RegistrationRetryScheduled(acc.name, retry.attempts, delay))

    def on_select_account(self, prm: Any) -> None:
        """The guard in front of pjsua's media code (docs/capacity.md).

        pjsua_call_on_incoming asks for the account before it creates the INVITE's media
        sockets.  An INVITE from a banned or disallowed source, or beyond the media-session
        budget, is pointed at the sink account, whose settings make pjsua refuse it before
        any socket is opened.  Everything else goes to the account pjsua chose.
        """
        self.counters.invites_screened += 1
        if self.sink is None:
            return
        now = time.monotonic()
        try:
            source = source_host(str(prm.rdata.srcAddress))
        except Exception:
            prm.accountIndex = self.sink.getId()
            return
        refusal = self.policy.screen(source, now)
        if refusal is not None:
            self.counters.sunk_by_policy += 1
            prm.accountIndex = self.sink.getId()
            return
        # Trunk hosts skip the per-source share (a provider may bring many calls), never
        # the global budget: UDP source addresses can be forged.
        if self.policy.trunk_for(source) is None and not self.per_source.take(source, now):
            self.counters.sunk_by_rate += 1
            prm.accountIndex = self.sink.getId()
            return
        if not self.bucket.take(now):
            self.counters.sunk_by_rate += 1
            prm.accountIndex = self.sink.getId()
            return
        # A trunk's calls take the trunk's account (its SRTP and codec settings): pjsua
        # matches the Request-URI's user and host, which the local account may share.
        # pjsua falls back to the local account; a per-port account it matched stays.
        trunk = self.policy.trunk_for(source)
        account = self.accounts.get(trunk) if trunk is not None else None
        if account is not None and self.local is not None:
            if int(prm.accountIndex) == self.local.getId():
                prm.accountIndex = account.getId()

    def on_incoming_call(self, acc: _Account, prm: Any) -> None:
        call = _Call(self, acc, int(prm.callId))
        source = source_host(str(prm.rdata.srcAddress))
        try:
            request = parse_request(str(prm.rdata.wholeMsg))
            decision = self.policy.decide(request, source, time.monotonic())
        except Exception as exc:  # a message we cannot judge is refused, never admitted
            log.warning("refusing INVITE from %s: %s", source, exc)
            decision = Decision(Verdict.FORBID, 400, "Bad Request")
            request = None
        if not decision.admitted:
            self._answer(call, decision.code, decision.reason, decision.headers)
            self.graveyard.append(call)
            self.emit(
                InviteRefused(source, decision.code, decision.reason, decision.counted_failure)
            )
            return
        assert request is not None
        self.calls[call.call_id] = call
        try:
            caller = caller_of(request)
            number, name = caller.number, caller.name
        except Exception as exc:  # an unreadable identity is no identity, not a refusal
            log.info("call %d: no caller identity: %s", call.call_id, exc)
            number = name = None
        self.emit(
            IncomingCall(
                call_id=call.call_id,
                account=acc.name,
                source=source,
                peer=decision.peer,
                peer_kind="trunk" if decision.verdict is Verdict.ADMIT_TRUNK else "user",
                from_uri=request.get("from") or "",
                to_uri=request.get("to") or "",
                caller_number=number,
                caller_name=name,
                called=called_of(request),
            )
        )

    def on_call_state(self, call: _Call) -> None:
        info = call.getInfo()
        if call.call_id < 0:  # an outgoing call reporting before makeCall returned
            call.call_id = int(info.id)
        for i, (child, referred, number) in enumerate(self.referred):
            if child is call:  # the call pjsua placed for a REFER: first report
                del self.referred[i]
                self.calls[call.call_id] = call
                self.emit(TransferCallPlaced(referred, call.call_id, number))
                break
        state = _INV_STATES.get(info.state, str(info.state))
        code = int(info.lastStatusCode)
        if call.call_id in self.calls:
            self.emit(CallStateChanged(call.call_id, state, code, str(info.lastReason)))
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._unbind(call.call_id)
            other = self.pairs.pop(call.call_id, None)
            if other is not None:
                self.pairs.pop(other, None)
            # Deleting a Call inside its own callback is not safe from Python; the loop
            # drops it after libHandleEvents returns.
            if self.calls.get(call.call_id) is call:
                del self.calls[call.call_id]
            if call not in self.graveyard:
                self.graveyard.append(call)

    def on_call_media_state(self, call: _Call) -> None:
        if self.calls.get(call.call_id) is not call:
            return
        media = self._audio_media(call)
        port = self.bindings.get(call.call_id)
        if port is not None and media is not None:
            # after early media, answer and every re-INVITE (hold, unhold, codec change) the
            # call's bridge slot may be new: connect again (connecting twice is harmless)
            try:
                self._connect(call.call_id, media, port)
            except PjsuaError as exc:
                log.warning("%s", exc)
        if call.call_id in self.pairs:
            try:
                self._connect_pair(call.call_id)
            except PjsuaError as exc:
                log.warning("%s", exc)
        self.emit(CallMediaChanged(call.call_id, media is not None, self._remote_hold(call)))

    def on_transfer_status(self, call: _Call, prm: Any) -> None:
        if self.calls.get(call.call_id) is not call:
            return
        code = int(prm.statusCode)
        final = bool(prm.finalNotify)
        log.info(
            "call %d: transfer %d %s%s", call.call_id, code, prm.reason, " (final)" if final else ""
        )
        if not 100 <= code <= 699:  # pjsua reports a NOTIFY it could not read so
            code, final = 500, True
        self.emit(TransferStatus(call.call_id, code, str(prm.reason)[:200], final))

    def on_transfer_request(self, call: _Call, prm: Any) -> None:
        """A REFER from the far end.  Accepting it makes pjsua call the Refer-To target
        itself, through the call's account: only a number at the same provider that the toll
        rules allow is accepted; the new call is reported as :class:`TransferCallPlaced`."""
        target = str(prm.dstUri)
        code, reason, number = self._judge_refer(call, target)
        if code != REFER_ACCEPTED:
            prm.statusCode = code
            log.warning("call %d: REFER to %s refused (%d): %s", call.call_id, target, code, reason)
            return
        child = _Call(self, call.account, pj.PJSUA_INVALID_ID)
        prm.newCall = child
        prm.statusCode = REFER_ACCEPTED
        self.referred.append((child, call.call_id, number))
        del self.referred[:-REFERRED_CAP]
        log.info("call %d: REFER to %s accepted: calling %s", call.call_id, target, number)

    def _judge_refer(self, call: _Call, target: str) -> tuple[int, str, str]:
        settings = call.account.settings
        if settings is None:
            return (
                REFER_NOT_IMPLEMENTED,
                "only calls of trunks and accounts are transferred by their far end",
                "",
            )
        try:
            user, host = refer_target(target)
        except PeerProtocolError as exc:
            return REFER_BAD, f"Refer-To unreadable: {exc}", ""
        if not user:
            return REFER_BAD, "Refer-To names no user or number", ""
        if host != settings.domain.lower():
            return (
                REFER_FORBIDDEN,
                f"target host {host!r} is not {settings.name!r}'s ({settings.domain})",
                "",
            )
        if len(self.calls) >= self.settings.max_calls:
            return REFER_BUSY, f"all {self.settings.max_calls} calls are up", ""
        if self.refer_check is not None:
            code, reason = self.refer_check(settings.name, user)
            if code != REFER_ACCEPTED:
                return code, reason, ""
        return REFER_ACCEPTED, "", user

    def on_dtmf_digit(self, call: _Call, digit: str, method: int) -> None:
        if self.calls.get(call.call_id) is not call:
            return
        name = _DTMF_METHOD_NAMES.get(method)
        digit = digit.upper()
        if name is None or len(digit) != 1 or digit not in DTMF_DIGITS:
            log.info("call %d: ignoring DTMF %r (method %d)", call.call_id, digit, method)
            return
        self.emit(DtmfReceived(call.call_id, digit, name))

    # --------------------------------------------------------------- audio

    @staticmethod
    def _remote_hold(call: _Call) -> bool:
        info = call.getInfo()
        return any(
            m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD
            for m in info.media
        )

    @staticmethod
    def _audio_media(call: _Call) -> Any | None:
        """The call's audio in the bridge, or None while it has none (no SDP yet, held)."""
        info = call.getInfo()  # keep it: the media vector lives inside this object
        for m in info.media:
            if m.type == pj.PJMEDIA_TYPE_AUDIO and m.status in _MEDIA_UP:
                return call.getAudioMedia(int(m.index))
        return None

    def _connect(self, call_id: int, media: Any, port: int) -> None:
        line = self.ports[port]
        try:
            media.startTransmit(line)
            line.startTransmit(media)
        except pj.Error as exc:
            raise _raise_pj(f"connecting call {call_id} to line {port}", exc) from None
        line.audio.call_id = call_id

    def _connect_pair(self, call_id: int) -> None:
        other = self.pairs.get(call_id)
        a, b = self.calls.get(call_id), self.calls.get(other) if other is not None else None
        if a is None or b is None:
            return
        media_a, media_b = self._audio_media(a), self._audio_media(b)
        if media_a is None or media_b is None:
            return  # the second one's media state change connects them
        try:
            media_a.startTransmit(media_b)
            media_b.startTransmit(media_a)
        except pj.Error as exc:
            raise _raise_pj(f"bridging calls {call_id} and {other}", exc) from None

    def bridge_calls(self, a: int, b: int) -> None:
        """Connect the audio of calls ``a`` and ``b`` both ways, now or once both have it."""
        for call_id in (a, b):
            self._call(call_id)  # both must be up: SipUsageError otherwise
        for c in (a, b):
            old = self.pairs.get(c)
            if old is not None and old not in (a, b):
                self.unbridge_call(c)
        self.pairs[a], self.pairs[b] = b, a
        self._connect_pair(a)

    def unbridge_call(self, call_id: int) -> None:
        other = self.pairs.pop(call_id, None)
        if other is None:
            return
        self.pairs.pop(other, None)
        a, b = self.calls.get(call_id), self.calls.get(other)
        media_a = self._audio_media(a) if a is not None else None
        media_b = self._audio_media(b) if b is not None else None
        if media_a is not None and media_b is not None:
            try:
                media_a.stopTransmit(media_b)
                media_b.stopTransmit(media_a)
            except pj.Error as exc:
                raise _raise_pj(f"unbridging calls {call_id} and {other}", exc) from None

    def set_hold(self, call_id: int, hold: bool) -> None:
        """Hold (re-INVITE with a=sendonly) or resume (a=sendrecv) a call (RFC 3264 8.4)."""
        call = self._call(call_id)
        op = pj.CallOpParam(True)
        try:
            if hold:
                call.setHold(op)
            else:
                op.opt.flag = pj.PJSUA_CALL_UNHOLD
                call.reinvite(op)
        except pj.Error as exc:
            what = "holding" if hold else "resuming"
            raise _raise_pj(f"{what} call {call_id}", exc) from None

    def transfer(self, call_id: int, uri: str) -> None:
        """REFER the far end of ``call_id`` to ``uri`` (RFC 3515, blind transfer)."""
        call = self._call(call_id)
        try:
            call.xfer(uri, pj.CallOpParam(True))
        except pj.Error as exc:
            raise _raise_pj(f"transferring call {call_id} to {uri}", exc) from None

    def transfer_replaces(self, call_id: int, replaced: int) -> None:
        """REFER the far end of ``call_id`` to the far end of ``replaced``, with a Replaces
        of that dialog in the Refer-To (RFC 3891, attended transfer)."""
        call, other = self._call(call_id), self._call(replaced)
        try:
            call.xferReplaces(other, pj.CallOpParam(True))
        except pj.Error as exc:
            raise _raise_pj(f"transferring call {call_id} to call {replaced}", exc) from None

    def _unbind(self, call_id: int) -> None:
        port = self.bindings.pop(call_id, None)
        if port is None:
            return
        audio = self.ports[port].audio
        if audio.call_id == call_id:
            others = [c for c, p in self.bindings.items() if p == port]
            audio.call_id = others[-1] if others else None

    def connect_audio(self, call_id: int, port: int) -> None:
        call = self._call(call_id)
        if port not in self.ports:
            raise SipUsageError(
                f"line {port} has no bridge port (line_ports: {self.settings.line_ports})"
            )
        old = self.bindings.get(call_id)
        if old is not None and old != port:
            self.disconnect_audio(call_id)
        self.bindings[call_id] = port
        media = self._audio_media(call)
        if media is not None:
            self._connect(call_id, media, port)

    def disconnect_audio(self, call_id: int) -> None:
        call = self._call(call_id)
        port = self.bindings.get(call_id)
        if port is None:
            return
        media = self._audio_media(call)
        if media is not None:
            line = self.ports[port]
            try:
                media.stopTransmit(line)
                line.stopTransmit(media)
            except pj.Error as exc:
                raise _raise_pj(f"disconnecting call {call_id} from line {port}", exc) from None
        self._unbind(call_id)

    def send_dtmf(self, call_id: int, digits: str, method: DtmfMethod) -> None:
        call = self._call(call_id)
        if method not in _DTMF_METHODS:
            raise SipUsageError(
                f"DTMF method {method!r}: 'rfc4733' or 'info' (in-band is the line's business)"
            )
        if not 1 <= len(digits) <= MAX_DTMF_DIGITS or any(d not in DTMF_DIGITS for d in digits):
            raise SipUsageError(f"DTMF digits {digits!r}: 1..{MAX_DTMF_DIGITS} of {DTMF_DIGITS}")
        prm = pj.CallSendDtmfParam()
        prm.method = _DTMF_METHODS[method]
        prm.digits = digits
        try:
            call.sendDtmf(prm)
        except pj.Error as exc:
            raise _raise_pj(f"sending DTMF {digits!r} by {method} on call {call_id}", exc) from None

    def call_quality(self, call_id: int) -> CallQuality:
        call = self._call(call_id)
        index = None
        info = call.getInfo()  # keep it: the media vector lives inside this object
        for m in info.media:
            if m.type == pj.PJMEDIA_TYPE_AUDIO and m.status != pj.PJSUA_CALL_MEDIA_NONE:
                index = int(m.index)
                break
        if index is None:
            raise SipUsageError(f"call {call_id} has no audio stream (yet)")
        try:
            stat = call.getStreamStat(index)
            stream = call.getStreamInfo(index)
        except pj.Error as exc:
            raise _raise_pj(f"reading the RTP statistics of call {call_id}", exc) from None
        rtcp = stat.rtcp
        rx, tx = rtcp.rxStat, rtcp.txStat
        rtt = rtcp.rttUsec
        return call_quality(
            codec=str(stream.codecName),
            rx_packets=int(rx.pkt),
            tx_packets=int(tx.pkt),
            rx_lost=int(rx.loss),
            rx_jitter_ms=int(rx.jitterUsec.last) / 1000,
            rtt_ms=int(rtt.mean) / 1000 if int(rtt.n) > 0 else None,
            jitter_buffer_ms=float(stat.jbuf.avgDelayMsec),
            frame_ms=float(LINE_FORMAT.frame_ms),
        )

    def _call(self, call_id: int) -> _Call:
        call = self.calls.get(call_id)
        if call is None:
            raise SipUsageError(f"no call {call_id} (it ended or was never admitted)")
        return call

    # --------------------------------------------------------------- commands

    def _answer(
        self, call: _Call, code: int, reason: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        op = pj.CallOpParam()
        op.statusCode = code
        op.reason = reason
        for name, value in headers:
            h = pj.SipHeader()
            h.hName = name
            h.hValue = value
            op.txOption.headers.append(h)
        try:
            call.answer(op)
        except pj.Error as exc:
            raise _raise_pj(f"answering call {call.call_id} with {code}", exc) from None

    def answer(self, call_id: int, code: int) -> None:
        call = self.calls.get(call_id)
        if call is None:
            raise SipUsageError(f"no call {call_id} (it ended or was never admitted)")
        self._answer(call, code, "")

    def make_call(self, account: str, uri: str, caller: CallerIdentity | None = None) -> int:
        """Start an outgoing call; the 5th concurrent one is refused here, not by pjsua.

        ``caller`` replaces the account's identity in the From (SipTxOption.localUri, which
        pjsua 2.15 uses for the dialog's local URI): an FXO line's caller ID goes out so.
        """
        acc = self.local if account == "local" else self.accounts.get(account)
        if acc is None:
            raise SipUsageError(f"no account {account!r}")
        if len(self.calls) >= self.settings.max_calls:
            raise SipLimitError(
                f"{len(self.calls)} calls are up; this pjsua2 build holds at most "
                f"{self.settings.max_calls} (DESIGN.md: PJSUA_MAX_CALLS {PJSUA_MAX_CALLS})"
            )
        call = _Call(self, acc, pj.PJSUA_INVALID_ID)
        op = pj.CallOpParam(True)
        if caller is not None:
            op.txOption.localUri = from_header(caller, str(acc.getInfo().uri))
        try:
            call.makeCall(uri, op)
        except pj.Error as exc:
            raise _raise_pj(f"calling {uri}", exc) from None
        call.call_id = int(call.getId())
        self.calls[call.call_id] = call
        return call.call_id

    def hangup(self, call_id: int, code: int | None = None) -> None:
        """End a call; ``code`` refuses an unanswered incoming one (486, 503, 603 ...)."""
        if code is not None and not 300 <= code <= 699:
            raise SipUsageError(f"hang-up status {code}: a refusal is 300..699")
        call = self._call(call_id)
        op = pj.CallOpParam()
        if code is not None:
            op.statusCode = code
        try:
            call.hangup(op)
        except pj.Error as exc:
            raise _raise_pj(f"hanging up call {call_id}", exc) from None

    def tick(self, now: float) -> None:
        self.graveyard.clear()
        for name, retry in self.retries.items():
            if retry.due is not None and now >= retry.due:
                retry.due = None
                try:
                    self.accounts[name].setRegistration(True)
                except pj.Error as exc:
                    log.warning("re-registering %s failed at once: %s", name, exc.reason)

    # --------------------------------------------------------------- shutdown

    def shutdown(self) -> None:
        """Hang up, unregister, drop every pjsua2 object, then libDestroy."""
        try:
            self.ep.hangupAllCalls()
        except pj.Error as exc:
            log.warning("hanging up all calls: %s", exc.reason)
        # An un-REGISTER cannot start while a REGISTER (pjsua's contact rewrite, say) is in
        # flight (PJSIP_EBUSY, only logged by pjsua): ask again until the account says it
        # is no longer registered, within the grace time.
        pending = [a for a in self.accounts.values() if a.settings and a.settings.register]
        deadline = time.monotonic() + STOP_GRACE_S
        next_try = 0.0
        while time.monotonic() < deadline:
            pending = [a for a in pending if self._reg_active(a)]
            if not pending and not self.calls:
                break
            if time.monotonic() >= next_try:
                for acc in pending:
                    try:
                        acc.setRegistration(False)
                    except pj.Error as exc:
                        log.debug("unregistering %s: %s", acc.name, exc.reason)
                next_try = time.monotonic() + UNREGISTER_RETRY_S
            self.ep.libHandleEvents(POLL_MS)
        self.retries.clear()
        self.calls.clear()
        self.graveyard.clear()
        self.bindings.clear()
        self.pairs.clear()
        self.referred.clear()
        self._drop_line_ports()
        for acc in (*self.accounts.values(), *(a for a in (self.local, self.sink) if a)):
            acc.shutdown()
        self.accounts.clear()
        self.local = self.sink = None
        # Every BYE and un-REGISTER has gone out above; NO_NETWORK skips pjsua's fixed
        # one-second wait for them.
        self.ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
        # pjsua2's Endpoint is a singleton: the C++ object must be gone before the next
        # start, so break the cycle core <-> endpoint instead of waiting for the collector.
        self.ep.release()

    @staticmethod
    def _reg_active(acc: _Account) -> bool:
        try:
            return bool(acc.getInfo().regIsActive)
        except pj.Error:
            return False


# ---------------------------------------------------------------------- the asyncio side


class SipEndpoint:
    """The SIP stack of the box, driven from asyncio.  Create, ``await start()``, use, stop."""

    def __init__(
        self,
        settings: EndpointSettings,
        policy: InboundPolicy | None = None,
        refer_check: ReferCheck | None = None,
    ) -> None:
        """``refer_check``: judges the target number of a REFER from the far end; it runs
        on the endpoint thread, so it must only read immutable state."""
        self._settings = settings
        self._refer_check = refer_check
        self._policy = policy or InboundPolicy(PolicySettings(), os.urandom(32))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._commands: queue.Queue[_Command] = queue.Queue(COMMAND_QUEUE_CAP)
        self._events: asyncio.Queue[SipEvent] | None = None
        self._in_flight = 0
        self._flight_lock = threading.Lock()
        self._stop_flag = threading.Event()
        self._transports: tuple[TransportInfo, ...] = ()
        self._dropped = 0
        # Kept across restarts: the line threads hold on to these buffers.
        self._line_audio: dict[int, LineAudio] = {}
        self._trace = TraceRing()

    # --------------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def transports(self) -> tuple[TransportInfo, ...]:
        return self._transports

    @property
    def events_dropped(self) -> int:
        return self._dropped

    @property
    def policy(self) -> InboundPolicy:
        """Only read it from the endpoint thread (inside ``call``) while running."""
        return self._policy

    def line_audio(self, port: int) -> LineAudio:
        """The bridge buffers of line ``port`` (one of ``settings.line_ports``), after start."""
        audio = self._line_audio.get(port)
        if audio is None or port not in self._settings.line_ports:
            raise SipUsageError(
                f"line {port} has no bridge port (line_ports: {self._settings.line_ports}; "
                "ports exist once the endpoint started)"
            )
        return audio

    def messages(self) -> tuple[SipTrace, ...]:
        """The last SIP messages sent and received, oldest first (at most TRACE_CAP)."""
        return self._trace.snapshot()

    def transport(self, kind: str) -> TransportInfo:
        for t in self._transports:
            if t.kind == kind:
                return t
        raise SipUsageError(f"no {kind} transport is running")

    async def start(self) -> None:
        if self._thread is not None:
            raise SipUsageError("the SIP endpoint is running already; stop it first")
        self._loop = asyncio.get_running_loop()
        self._events = asyncio.Queue()
        self._in_flight = 0
        self._stop_flag.clear()
        started: concurrent.futures.Future[tuple[TransportInfo, ...]] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="pjsua2", daemon=False
        )
        self._thread.start()
        try:
            self._transports = await asyncio.wait_for(asyncio.wrap_future(started), START_TIMEOUT_S)
        except BaseException:
            await self._join()
            raise
        log.info(
            "SIP endpoint up: %s",
            ", ".join(f"{t.kind}:{t.host}:{t.port}" for t in self._transports),
        )

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._stop_flag.set()
        await self._join()
        log.info("SIP endpoint stopped")

    async def restart(self, settings: EndpointSettings | None = None) -> None:
        await self.stop()
        if settings is not None:
            self._settings = settings
        await self.start()

    async def _join(self) -> None:
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join)
        self._thread = None
        self._transports = ()

    # --------------------------------------------------------------- commands

    async def call(self, fn: Callable[[_Core], T]) -> T:
        """Run ``fn(core)`` on the endpoint thread and return its result (or raise its error)."""
        if not self.running or self._stop_flag.is_set():
            raise SipUsageError("the SIP endpoint is not running")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            self._commands.put_nowait(_Command(fn, future))
        except queue.Full:
            raise SipLimitError(
                f"{COMMAND_QUEUE_CAP} commands already wait for the SIP thread"
            ) from None
        return await asyncio.wrap_future(future)

    async def answer(self, call_id: int, code: int) -> None:
        await self.call(lambda core: core.answer(call_id, code))

    async def make_call(
        self, account: str, uri: str, *, caller: CallerIdentity | None = None
    ) -> int:
        return await self.call(lambda core: core.make_call(account, uri, caller))

    async def hangup(self, call_id: int, code: int | None = None) -> None:
        await self.call(lambda core: core.hangup(call_id, code))

    async def connect_audio(self, call_id: int, port: int) -> None:
        """Bind the call's audio to line ``port`` both ways, now or once media is up."""
        await self.call(lambda core: core.connect_audio(call_id, port))

    async def disconnect_audio(self, call_id: int) -> None:
        await self.call(lambda core: core.disconnect_audio(call_id))

    async def set_hold(self, call_id: int, hold: bool) -> None:
        await self.call(lambda core: core.set_hold(call_id, hold))

    async def bridge_calls(self, a: int, b: int) -> None:
        await self.call(lambda core: core.bridge_calls(a, b))

    async def unbridge_call(self, call_id: int) -> None:
        await self.call(lambda core: core.unbridge_call(call_id))

    async def transfer(self, call_id: int, uri: str) -> None:
        await self.call(lambda core: core.transfer(call_id, uri))

    async def transfer_replaces(self, call_id: int, replaced: int) -> None:
        await self.call(lambda core: core.transfer_replaces(call_id, replaced))

    async def send_dtmf(self, call_id: int, digits: str, method: DtmfMethod) -> None:
        await self.call(lambda core: core.send_dtmf(call_id, digits, method))

    async def call_quality(self, call_id: int) -> CallQuality:
        return await self.call(lambda core: core.call_quality(call_id))

    async def add_account(self, settings: AccountSettings) -> None:
        await self.call(lambda core: core.add_account(settings))

    async def set_policy(self, settings: PolicySettings, secret: bytes) -> None:
        policy = InboundPolicy(settings, secret)

        def swap(core: _Core) -> None:
            core.policy = policy
            self._policy = policy

        await self.call(swap)

    async def next_event(self) -> SipEvent:
        if self._events is None:
            raise SipUsageError("the SIP endpoint was never started")
        event = await self._events.get()
        with self._flight_lock:
            self._in_flight -= 1
        return event

    # --------------------------------------------------------------- the thread

    def _emit(self, event: SipEvent) -> None:
        """Called on the endpoint thread: hand an event to the loop, or drop and count it."""
        with self._flight_lock:
            if self._in_flight >= self._settings.events_cap:
                self._dropped += 1
                dropped = self._dropped
            else:
                self._in_flight += 1
                dropped = 0
        if dropped:
            if dropped % OVERFLOW_LOG_EVERY == 1:
                log.warning(
                    "SIP event queue full (%d in flight): %d events dropped so far",
                    self._settings.events_cap,
                    dropped,
                )
            return
        loop, events = self._loop, self._events
        assert loop is not None and events is not None
        try:
            loop.call_soon_threadsafe(events.put_nowait, event)
        except RuntimeError:  # the loop closed under us; nobody is left to tell
            with self._flight_lock:
                self._in_flight -= 1

    def _run(self, started: concurrent.futures.Future[tuple[TransportInfo, ...]]) -> None:
        core: _Core | None = None
        try:
            core = _Core(
                self._settings,
                self._policy,
                self._emit,
                self._line_audio,
                self._trace,
                self._refer_check,
            )
        except BaseException as exc:
            started.set_exception(_detached(exc))
            gc.collect()  # the half-made Endpoint dies here, on its own thread
            return
        started.set_result(tuple(core.transport_info))
        try:
            while not self._stop_flag.is_set():
                core.ep.libHandleEvents(POLL_MS)
                self._run_commands(core)
                core.tick(time.monotonic())
        finally:
            self._fail_pending_commands()
            try:
                core.shutdown()
            except BaseException:
                log.exception("SIP endpoint shutdown failed")
            # The last references to pjsua2 objects die here, on the thread that owns them.
            del core
            gc.collect()

    def _run_commands(self, core: _Core) -> None:
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            if not cmd.future.set_running_or_notify_cancel():
                continue
            try:
                result = cmd.fn(core)
            except pj.Error as exc:
                cmd.future.set_exception(_detached(_raise_pj("command", exc)))
            except BaseException as exc:
                cmd.future.set_exception(_detached(exc))
            else:
                cmd.future.set_result(result)

    def _fail_pending_commands(self) -> None:
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            if cmd.future.set_running_or_notify_cancel():
                cmd.future.set_exception(SipUsageError("the SIP endpoint stopped"))
