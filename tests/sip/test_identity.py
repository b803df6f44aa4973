"""Caller and called identities in SIP header fields (RFC 3261, 3323, 3325, 3966)."""

from __future__ import annotations

import pytest

from firmware.sip.errors import PeerProtocolError
from firmware.sip.events import CallerIdentity
from firmware.sip.identity import called_of, caller_of, from_header, parse_party
from firmware.sip.message import parse_request


def invite(*headers: str, uri: str = "sip:5550100@box.example") -> str:
    lines = [f"INVITE {uri} SIP/2.0", "Via: SIP/2.0/UDP 1.2.3.4", *headers, "", ""]
    return "\r\n".join(lines)


def caller(*headers: str) -> tuple[str | None, str | None]:
    info = caller_of(parse_request(invite(*headers)))
    return info.number, info.name


def test_from_when_no_pai() -> None:
    assert caller('From: "Bob" <sip:+4930123@pbx.example>;tag=1') == ("+4930123", "Bob")
    assert caller("From: <sip:0301234@pbx.example>;tag=1") == ("0301234", None)
    assert caller("f: Carol <sip:555-12.34@x>;tag=1") == ("5551234", "Carol")  # compact form
    # a user name that is not a number gives no number, the name stays
    assert caller('From: "Alice" <sip:alice@x>;tag=1') == (None, "Alice")
    assert caller("From: sip:123@x;tag=1") == ("123", None)  # addr-spec
    assert caller() == (None, None)


def test_pai_wins_over_from_and_tel_uri_gives_the_number() -> None:
    headers = (
        'From: "Spoofed" <sip:999@x>;tag=1',
        'P-Asserted-Identity: "Real Name" <sip:alice@trunk.example>, <tel:+15551234;cpc=x>',
    )
    assert caller(*headers) == ("+15551234", "Real Name")
    assert caller("From: <sip:9@x>;tag=1", "P-Asserted-Identity: <sip:+44207@t>") == (
        "+44207",
        None,
    )
    # escaped quotes in a display name
    assert caller(r'P-Asserted-Identity: "A \"B\" C" <sip:1@t>') == ("1", 'A "B" C')


@pytest.mark.parametrize(
    "header",
    [
        "Privacy: id",
        "Privacy: user;header",
        "Privacy: ID",
    ],
)
def test_privacy_withholds_both(header: str) -> None:
    assert caller('From: "Bob" <sip:123@x>;tag=1', "P-Asserted-Identity: <sip:123@t>", header) == (
        None,
        None,
    )


def test_privacy_none_and_anonymous_from() -> None:
    assert caller('From: "Bob" <sip:123@x>;tag=1', "Privacy: none") == ("123", "Bob")
    anon = '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1'
    assert caller(f"From: {anon}") == (None, None)
    assert caller("From: <sip:123@anonymous.invalid>;tag=1") == (None, None)


def test_called_from_request_uri_else_to() -> None:
    req = parse_request(invite("To: <sip:777@box>"))
    assert called_of(req) == "5550100"
    req = parse_request(invite("To: <sip:777@box>", uri="sip:box.example"))
    assert called_of(req) == "777"
    req = parse_request(invite("To: <tel:+3312345>", uri="sip:box.example:5060"))
    assert called_of(req) == "+3312345"
    req = parse_request(invite(uri="sip:box.example"))
    assert called_of(req) == ""


def test_from_header_for_an_outgoing_call() -> None:
    cid = CallerIdentity("+4930123456", 'Jane "JD" Doe')
    assert from_header(cid, "<sip:ponte@127.0.0.1:5060>") == (
        r'"Jane \"JD\" Doe" <sip:+4930123456@127.0.0.1:5060>'
    )
    assert from_header(CallerIdentity("123"), '"Trunk" <sips:acct@pbx.example;transport=tls>') == (
        "<sips:123@pbx.example>"
    )
    with pytest.raises(PeerProtocolError, match="no SIP host"):
        from_header(CallerIdentity("1"), "<tel:+1>")


def test_caller_identity_is_validated() -> None:
    with pytest.raises(ValueError, match="only digits"):
        CallerIdentity("12ab")
    with pytest.raises(ValueError, match=r"1\.\.32"):
        CallerIdentity("")
    with pytest.raises(ValueError, match="printable"):
        CallerIdentity("1", "evil\r\nVia: x")


def test_garbage_identities_are_peer_errors() -> None:
    with pytest.raises(PeerProtocolError):
        parse_party("<mailto:x@y>")
    with pytest.raises(PeerProtocolError):
        parse_party("x" * 2000)
    # unreadable PAI falls back to From
    assert caller("From: <sip:42@x>;tag=1", "P-Asserted-Identity: <http://x>") == ("42", None)
