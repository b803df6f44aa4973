"""The SIP message trace parsed from pjsua's message log."""

from __future__ import annotations

import threading

from firmware.sip.trace import MAX_TEXT_CHARS, TraceRing, parse_message_log

TX = (
    "TX 1198 bytes Request msg INVITE/cseq=26593 (tdta0x5614516bc958) to UDP 127.0.0.1:9:\n"
    "INVITE sip:x@127.0.0.1:9 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:36303\r\n\r\n"
    "\n--end msg--"
)
RX = (
    "RX 300 bytes Response msg 486/INVITE/cseq=2 (rdata0x7f) from TLS [::1]:5061:\n"
    "SIP/2.0 486 Busy Here\r\nVia: x\r\n\r\n\n--end msg--"
)


def test_tx_and_rx_entries() -> None:
    tx = parse_message_log(TX, 12.5)
    assert tx is not None
    assert (tx.time, tx.direction, tx.transport, tx.remote) == (12.5, "tx", "UDP", "127.0.0.1:9")
    assert tx.first_line == "INVITE sip:x@127.0.0.1:9 SIP/2.0"
    assert tx.text.startswith("INVITE ") and "--end msg--" not in tx.text
    rx = parse_message_log(RX, 1.0)
    assert rx is not None
    assert (rx.direction, rx.transport, rx.remote) == ("rx", "TLS", "[::1]:5061")
    assert rx.first_line == "SIP/2.0 486 Busy Here"


def test_other_log_text_is_not_a_trace() -> None:
    assert parse_message_log("TX garbage", 0) is None
    assert parse_message_log("pjsua_core.c  .PJSUA state changed", 0) is None
    assert parse_message_log("", 0) is None


def test_long_messages_are_cut_and_the_ring_is_bounded() -> None:
    big = TX.replace("\r\n\r\n", "\r\nX: " + "a" * 10000 + "\r\n\r\n")
    t = parse_message_log(big, 0)
    assert t is not None and len(t.text) == MAX_TEXT_CHARS
    ring = TraceRing(cap=5)

    def writer() -> None:
        for _ in range(1000):
            ring.add(t)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for th in threads:
        th.start()
    for _ in range(100):
        assert len(ring.snapshot()) <= 5
    for th in threads:
        th.join()
    assert len(ring.snapshot()) == 5
    ring.clear()
    assert ring.snapshot() == ()
