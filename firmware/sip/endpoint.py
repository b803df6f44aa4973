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
from firmware.sip.backoff import backoff_delay
from firmware.sip.errors import PjsuaError, SipLimitError, SipUsageError
from firmware.sip.events import (
    CallStateChanged,
    IncomingCall,
    InviteRefused,
    RegistrationChanged,
    RegistrationRetryScheduled,
    SipEvent,
    TransportInfo,
)
from firmware.sip.limits import PJSUA_MAX_ACCOUNTS, PJSUA_MAX_CALLS
from firmware.sip.message import parse_request, source_host
from firmware.sip.policy import Decision, InboundPolicy, PolicySettings, Verdict
from firmware.sip.settings import (
    CODEC_IDS,
    AccountSettings,
    EndpointSettings,
    TransportSettings,
    nameserver_address,
)

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

# pjlib log levels (pj/log.h): 1 error, 2 warning, 3 info, 4..6 debug.
_PJ_TO_LOGGING = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}

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
    def write(self, entry: Any) -> None:
        level = _PJ_TO_LOGGING.get(int(entry.level), logging.DEBUG)
        pjlog.log(level, "%s", str(entry.msg).rstrip())


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
        self.call_id = call_id

    def onCallState(self, prm: Any) -> None:
        self.core.on_call_state(self)


# ---------------------------------------------------------------------- the thread's world


class _Core:
    """Everything that lives on the endpoint thread: pjsua2 objects and what they need."""

    def __init__(
        self,
        settings: EndpointSettings,
        policy: InboundPolicy,
        emit: Callable[[SipEvent], None],
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.emit = emit
        self.rng = random.Random()
        self.log_writer = _LogWriter()
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
        cfg.logConfig.writer = self.log_writer
        cfg.logConfig.level = s.log_level
        cfg.logConfig.consoleLevel = s.log_level
        cfg.logConfig.decor = 0  # logging adds time and level
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()
        self._set_codecs(s.codecs)
        for t in s.transports:
            self._create_transport(t)
        self.ep.libStart()
        self._create_local_account()
        if self.settings.guard:
            self._create_sink_account()
        for acc in s.accounts:
            self.add_account(acc)

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
        self.local = _Account(self, None, "local")
        self.local.create(cfg, True)

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
        self.emit(
            IncomingCall(
                call_id=call.call_id,
                account=acc.name,
                source=source,
                peer=decision.peer,
                peer_kind="trunk" if decision.verdict is Verdict.ADMIT_TRUNK else "user",
                from_uri=request.get("from") or "",
                to_uri=request.get("to") or "",
            )
        )

    def on_call_state(self, call: _Call) -> None:
        info = call.getInfo()
        if call.call_id < 0:  # an outgoing call reporting before makeCall returned
            call.call_id = int(info.id)
        state = _INV_STATES.get(info.state, str(info.state))
        code = int(info.lastStatusCode)
        if call.call_id in self.calls:
            self.emit(CallStateChanged(call.call_id, state, code, str(info.lastReason)))
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            # Deleting a Call inside its own callback is not safe from Python; the loop
            # drops it after libHandleEvents returns.
            if self.calls.get(call.call_id) is call:
                del self.calls[call.call_id]
            if call not in self.graveyard:
                self.graveyard.append(call)

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

    def make_call(self, account: str, uri: str) -> int:
        """Start an outgoing call; the 5th concurrent one is refused here, not by pjsua."""
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
        try:
            call.makeCall(uri, op)
        except pj.Error as exc:
            raise _raise_pj(f"calling {uri}", exc) from None
        call.call_id = int(call.getId())
        self.calls[call.call_id] = call
        return call.call_id

    def hangup(self, call_id: int) -> None:
        call = self.calls.get(call_id)
        if call is None:
            raise SipUsageError(f"no call {call_id} (it ended or was never admitted)")
        op = pj.CallOpParam()
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
    ) -> None:
        self._settings = settings
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

    async def make_call(self, account: str, uri: str) -> int:
        return await self.call(lambda core: core.make_call(account, uri))

    async def hangup(self, call_id: int) -> None:
        await self.call(lambda core: core.hangup(call_id))

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
            core = _Core(self._settings, self._policy, self._emit)
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
