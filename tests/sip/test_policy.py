"""The inbound policy and digest arithmetic, sans-IO: messages and ``now`` in, decisions out."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.sip.backoff import BACKOFF_JITTER, backoff_delay
from firmware.sip.digest import digest_response, parse_digest
from firmware.sip.errors import PeerProtocolError
from firmware.sip.message import parse_request, source_host
from firmware.sip.policy import (
    MAX_TRACKED_SOURCES,
    MAX_UNANSWERED_CHALLENGES,
    InboundPolicy,
    PolicySettings,
    TrunkHosts,
    Verdict,
)

SECRET = b"0123456789abcdef0123456789abcdef"
URI = "sip:101@127.0.0.1:5060"


def invite(authorization: str = "", uri: str = URI) -> str:
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    return (
        f"INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bK1\r\n"
        "f: <sip:alice@127.0.0.1>;tag=1\r\nTo: <sip:101@127.0.0.1>\r\ni: abc\r\n"
        f"CSeq: 1 INVITE\r\n{auth}Content-Length: 0\r\n\r\n"
    )


def policy(**kw: object) -> InboundPolicy:
    base: dict[str, object] = {
        "users": (("alice", "alicepw"),),
        "trunks": (TrunkHosts("provider", ("192.0.2.0/24",)),),
        "ban_threshold": 3,
        "ban_window_s": 60.0,
        "ban_s": 600.0,
    }
    base.update(kw)
    return InboundPolicy(PolicySettings(**base), SECRET)  # type: ignore[arg-type]


def answer(challenge: str, *, user: str = "alice", password: str = "alicepw") -> str:
    p = parse_digest(challenge)
    resp = digest_response(
        algorithm=p["algorithm"],
        username=user,
        realm=p["realm"],
        password=password,
        method="INVITE",
        uri=URI,
        nonce=p["nonce"],
        qop="auth",
        nc="00000001",
        cnonce="c0ffee",
    )
    return (
        f'Digest username="{user}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{URI}", '
        f'response="{resp}", algorithm={p["algorithm"]}, qop=auth, nc=00000001, cnonce="c0ffee"'
    )


def test_rfc_vectors_md5_and_sha256() -> None:
    # RFC 2617 section 3.5
    assert (
        digest_response(
            algorithm="MD5",
            username="Mufasa",
            realm="testrealm@host.com",
            password="Circle Of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )
    # RFC 7616 section 3.9.1
    rfc7616 = {
        "username": "Mufasa",
        "realm": "http-auth@example.org",
        "password": "Circle of Life",
        "method": "GET",
        "uri": "/dir/index.html",
        "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "qop": "auth",
        "nc": "00000001",
        "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    }
    assert (
        digest_response(algorithm="SHA-256", **rfc7616)
        == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    )
    assert digest_response(algorithm="MD5", **rfc7616) == "8ca523f5e9506fed4657c9700eebdbec"


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_challenge_then_correct_credentials_are_admitted(algorithm: str) -> None:
    pol = policy()
    first = pol.decide(parse_request(invite()), "127.0.0.1", now=100.0)
    assert first.verdict is Verdict.CHALLENGE and first.code == 401
    assert not first.counted_failure
    assert [h[0] for h in first.headers] == ["WWW-Authenticate", "WWW-Authenticate"]
    challenge = next(v for _, v in first.headers if f"algorithm={algorithm}" in v)
    second = pol.decide(parse_request(invite(answer(challenge))), "127.0.0.1", now=101.0)
    assert second.verdict is Verdict.ADMIT_USER and second.peer == "alice"
    # the very same credentials again are a replay: challenged, not admitted
    again = pol.decide(parse_request(invite(answer(challenge))), "127.0.0.1", now=102.0)
    assert again.verdict is Verdict.CHALLENGE and "stale=true" in again.headers[0][1]


def test_wrong_password_counts_and_bans_then_the_ban_expires() -> None:
    pol = policy()
    ch = pol.decide(parse_request(invite()), "127.0.0.2", 0.0).headers[0][1]
    bad = parse_request(invite(answer(ch, password="guess")))
    verdicts = [pol.decide(bad, "127.0.0.2", t).verdict for t in (1.0, 2.0, 3.0)]
    assert verdicts == [Verdict.FORBID, Verdict.FORBID, Verdict.BANNED]
    # banned: even the right password is refused, and a fresh INVITE gets no challenge
    good = parse_request(invite(answer(ch)))
    assert pol.decide(good, "127.0.0.2", 4.0).verdict is Verdict.BANNED
    assert pol.screen("127.0.0.2", 5.0) is not None
    # other sources are unaffected
    assert pol.decide(parse_request(invite()), "127.0.0.3", 5.0).verdict is Verdict.CHALLENGE
    # after ban_s the source may try again
    assert pol.screen("127.0.0.2", 604.0) is None
    assert pol.counters["bans"] == 1


def test_trunk_hosts_are_admitted_without_challenge_and_never_counted() -> None:
    pol = policy()
    for t in range(50):
        d = pol.decide(parse_request(invite()), "192.0.2.7", float(t))
        assert d.verdict is Verdict.ADMIT_TRUNK and d.peer == "provider"
    assert pol.counters["failures"] == 0


def test_sources_outside_allowed_networks_get_403_and_are_banned() -> None:
    pol = policy()
    decisions = [pol.decide(parse_request(invite()), "203.0.113.9", float(t)) for t in range(3)]
    assert [d.code for d in decisions] == [403, 403, 403]
    assert decisions[-1].verdict is Verdict.BANNED


def test_a_scanner_that_never_answers_challenges_is_banned() -> None:
    pol = policy(ban_threshold=1)
    verdicts = [
        pol.decide(parse_request(invite()), "127.0.0.9", t * 0.1).verdict
        for t in range(MAX_UNANSWERED_CHALLENGES + 1)
    ]
    assert verdicts[:-1] == [Verdict.CHALLENGE] * MAX_UNANSWERED_CHALLENGES
    assert verdicts[-1] is Verdict.BANNED


def test_stale_and_forged_nonces() -> None:
    pol = policy(nonce_ttl_s=10.0)
    ch = pol.decide(parse_request(invite()), "127.0.0.1", 0.0).headers[0][1]
    late = pol.decide(parse_request(invite(answer(ch))), "127.0.0.1", 20.0)
    assert late.verdict is Verdict.CHALLENGE and not late.counted_failure
    # a nonce issued to another source does not verify here
    other = pol.decide(parse_request(invite(answer(ch))), "127.0.0.5", 1.0)
    assert other.verdict is Verdict.FORBID and "nonce" in other.reason


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_garbage_authorization_never_admits(garbage: str) -> None:
    pol = policy()
    try:
        request = parse_request(invite(garbage.replace("\r", " ").replace("\n", " ")))
    except PeerProtocolError:
        return
    d = pol.decide(request, "127.0.0.1", 0.0)
    assert not d.admitted


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_messages_raise_only_peer_errors(data: bytes) -> None:
    try:
        parse_request(data.decode("latin-1"))
    except PeerProtocolError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.sampled_from(["challenge", "good", "bad"])),
        max_size=60,
    )
)
def test_only_correct_credentials_are_ever_admitted(steps: list[tuple[int, str]]) -> None:
    pol = policy()
    now = 0.0
    challenges: dict[str, str] = {}
    for host, action in steps:
        now += 0.5
        src = f"127.0.0.{host}"
        if action == "challenge" or src not in challenges:
            d = pol.decide(parse_request(invite()), src, now)
            if d.verdict is Verdict.CHALLENGE:
                challenges[src] = d.headers[0][1]
            continue
        creds = answer(challenges[src], password="alicepw" if action == "good" else "x")
        d = pol.decide(parse_request(invite(creds)), src, now)
        if d.admitted:
            assert action == "good"
        if action == "bad":
            assert d.verdict in (Verdict.FORBID, Verdict.BANNED)


def test_tracked_sources_are_capped() -> None:
    pol = policy()
    for i in range(MAX_TRACKED_SOURCES + 100):
        pol.decide(parse_request(invite()), f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 0.0)
    assert len(pol._sources) <= MAX_TRACKED_SOURCES


def test_source_host_forms() -> None:
    assert source_host("127.0.0.1:5060") == "127.0.0.1"
    assert source_host("[::1]:5060") == "::1"
    with pytest.raises(PeerProtocolError):
        source_host("[::1")


@given(st.floats(1, 3600), st.integers(1, 100), st.floats(0, 0.999))
def test_backoff_grows_and_is_capped(retry_s: float, attempt: int, r: float) -> None:
    d = backoff_delay(retry_s, attempt, r)
    assert d >= retry_s * (1 - BACKOFF_JITTER) - 1e-9
    assert d <= min(retry_s * 16, 3600) * (1 + BACKOFF_JITTER) + 1e-9
    assert backoff_delay(retry_s, 1, 0.5) <= backoff_delay(retry_s, 2, 0.5)


def test_policy_from_the_stored_configuration() -> None:
    import dataclasses

    from firmware.sip.policy import policy_from_store
    from firmware.store.schema import Config, Extension, SecurityConfig, SipConfig, Trunk

    config = Config(
        sip=SipConfig(
            trunks=(
                Trunk(name="a", registrar="192.0.2.10:5060", username="u"),
                Trunk(name="b", registrar="sip.example.net", username="u",
                      allowed_hosts=("198.51.100.0/24",)),
                Trunk(name="c", registrar="sip.example.net", username="u"),
            )
        ),
        extensions=(
            Extension(number="101", sip_password="s3cret"),
            Extension(number="102"),
        ),
    )  # fmt: skip
    config = dataclasses.replace(config, security=SecurityConfig(allowed_hosts=("10.0.0.0/8",)))
    settings = policy_from_store(config)
    assert settings.users == (("101", "s3cret"),)
    assert settings.trunks == (
        TrunkHosts("a", ("192.0.2.10",)),
        TrunkHosts("b", ("198.51.100.0/24",)),
    )  # "c" names a host we cannot resolve here, so it gets no host-based admission
    pol = InboundPolicy(settings, SECRET)
    assert pol.decide(parse_request(invite()), "192.0.2.10", 0.0).peer == "a"
    assert pol.decide(parse_request(invite()), "10.1.2.3", 0.0).verdict is Verdict.CHALLENGE
    assert pol.decide(parse_request(invite()), "127.0.0.1", 0.0).verdict is Verdict.FORBID


def test_md5_first_for_old_phones_is_the_stored_order_of_the_challenges() -> None:
    import dataclasses

    from firmware.sip.policy import policy_from_store
    from firmware.store.schema import Config, Extension, SecurityConfig

    default = policy_from_store(Config(extensions=(Extension(number="101", sip_password="pw"),)))
    assert default.algorithms == ("SHA-256", "MD5")  # RFC 8760 section 2.4: strongest first
    config = Config(
        extensions=(Extension(number="101", sip_password="pw"),),
        security=SecurityConfig(digest_algorithms=("MD5", "SHA-256")),
    )
    pol = InboundPolicy(policy_from_store(config), SECRET)
    first = pol.decide(parse_request(invite()), "127.0.0.1", now=1.0)
    assert first.verdict is Verdict.CHALLENGE
    offered = [v for name, v in first.headers if name == "WWW-Authenticate"]
    assert ["algorithm=MD5" in offered[0], "algorithm=SHA-256" in offered[1]] == [True, True]
    only_md5 = dataclasses.replace(config, security=SecurityConfig(digest_algorithms=("MD5",)))
    pol = InboundPolicy(policy_from_store(only_md5), SECRET)
    (header,) = pol.decide(parse_request(invite()), "127.0.0.1", now=1.0).headers
    assert "algorithm=MD5" in header[1]


def test_per_port_accounts_admit_their_providers_calls_after_the_trunks() -> None:
    from firmware.sip.policy import trunk_hosts_from_store
    from firmware.store.schema import Account, Config, SipConfig, Trunk

    config = Config(
        sip=SipConfig(
            trunks=(Trunk(name="main", registrar="192.0.2.10:5060", username="u"),),
            accounts=(
                Account(name="line1", registrar="192.0.2.10", username="201", fxs=0),
                Account(name="line2", registrar="198.51.100.7", username="202", fxs=1),
                Account(name="off", registrar="203.0.113.9", username="203", enabled=False),
            ),
        )
    )
    hosts = trunk_hosts_from_store(config)
    assert [(t.trunk, t.networks) for t in hosts] == [
        ("main", ("192.0.2.10",)),
        ("line1", ("192.0.2.10",)),
        ("line2", ("198.51.100.7",)),
    ]
