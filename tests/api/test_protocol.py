"""The sans-IO core: framing, envelope parsing, dispatch, outbound caps; fuzzed."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.api.auth import SessionTable
from firmware.api.core import (
    Call,
    CallContext,
    Dispatcher,
    HelloParams,
    MethodRegistry,
    MethodSpec,
    Peer,
)
from firmware.api.protocol import (
    EVENTS_DROPPED_TOPIC,
    ErrorCode,
    LineDecoder,
    OutboundQueue,
    Overflow,
    ProtocolError,
    Request,
    encode_event,
    parse_request,
)
from firmware.api.schema import NoParams

CODES = {str(c) for c in ErrorCode}


def test_decoder_one_byte_at_a_time() -> None:
    dec = LineDecoder(100)
    stream = b'{"a":1}\n\n{"b":2}\r\n'
    out: list[object] = []
    for i in range(len(stream)):
        out += dec.feed(stream[i : i + 1])
    assert out == [b'{"a":1}', b'{"b":2}']
    assert dec.buffered == 0


def test_decoder_discards_long_line_and_resyncs() -> None:
    dec = LineDecoder(10)
    out = dec.feed(b"x" * 11)
    assert len(out) == 1 and isinstance(out[0], ProtocolError)
    assert out[0].error.code is ErrorCode.MESSAGE_TOO_LARGE
    assert dec.buffered == 0  # the cap holds: nothing kept while discarding
    assert dec.feed(b"y" * 1000) == []
    assert dec.feed(b'zz\n{"ok":1}\n') == [b'{"ok":1}']


def test_decoder_long_line_arriving_whole() -> None:
    out = LineDecoder(10).feed(b"x" * 20 + b"\nabc\n")
    assert isinstance(out[0], ProtocolError) and out[1] == b"abc"


@pytest.mark.parametrize(
    ("line", "code", "path", "rid"),
    [
        (b"{nope", ErrorCode.PARSE_ERROR, "", None),
        (b"\xff\xfe", ErrorCode.PARSE_ERROR, "", None),
        (b'{"id":1,"method":"a.b","params":NaN}', ErrorCode.PARSE_ERROR, "", None),
        (b'{"id":1,"id":2,"method":"a.b"}', ErrorCode.PARSE_ERROR, "", None),
        (b"[1,2]", ErrorCode.INVALID_REQUEST, "", None),
        (b'{"method":"a.b"}', ErrorCode.INVALID_REQUEST, "id", None),
        (b'{"id":true,"method":"a.b"}', ErrorCode.INVALID_REQUEST, "id", None),
        (b'{"id":1.5,"method":"a.b"}', ErrorCode.INVALID_REQUEST, "id", None),
        (b'{"id":9007199254740993,"method":"a.b"}', ErrorCode.INVALID_REQUEST, "id", None),
        (b'{"id":""}', ErrorCode.INVALID_REQUEST, "id", None),
        (b'{"id":7}', ErrorCode.INVALID_REQUEST, "method", 7),
        (b'{"id":7,"method":3}', ErrorCode.INVALID_REQUEST, "method", 7),
        (b'{"id":7,"method":""}', ErrorCode.INVALID_REQUEST, "method", 7),
        (b'{"id":"x","method":"a.b","params":[1]}', ErrorCode.INVALID_REQUEST, "params", "x"),
        (b'{"id":"x","method":"a.b","v":1}', ErrorCode.INVALID_REQUEST, "v", "x"),
        (b"[" * 100000 + b"]" * 100000, ErrorCode.PARSE_ERROR, "", None),
    ],
)
def test_parse_request_errors(line: bytes, code: ErrorCode, path: str, rid: object) -> None:
    out = parse_request(line)
    assert isinstance(out, ProtocolError)
    assert out.error.code is code
    assert out.error.path == path
    assert out.id == rid
    assert out.error.message


def test_parse_request_ok() -> None:
    assert parse_request(b'{"id":"a","method":"x.y"}') == Request("a", "x.y", {})


def test_request_frame_validates_itself() -> None:
    with pytest.raises(ValueError):
        Request(True, "x.y", {})
    with pytest.raises(ValueError):
        Request(1, "", {})


def test_outbound_sheds_events_and_reports_the_count() -> None:
    q = OutboundQueue(event_high_water=100, max_bytes=1000)
    ev = encode_event("calls", {"n": 1}, 1)  # ~40 bytes
    assert q.push_event(ev, 1) and q.push_event(ev, 2)
    assert not q.push_event(ev, 3) and not q.push_event(ev, 4)
    assert q.dropped == 2 and q.queued_bytes <= 100
    q.push_reply(b"x" * 500)  # replies go past the event mark, up to the hard cap
    with pytest.raises(Overflow):
        q.push_reply(b"x" * 500)
    lines = []
    while (item := q.pop()) is not None:
        lines.append(item)
    notice = json.loads(lines[-1])
    assert notice["event"] == EVENTS_DROPPED_TOPIC
    assert notice["data"] == {"count": 2} and notice["seq"] == 4
    assert q.dropped_total == 2 and q.queued_bytes == 0


# -- dispatch core, fuzzed ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EchoParams:
    n: int
    tag: str | None = None
    items: list[float] | None = None


async def _echo(params: EchoParams, ctx: CallContext) -> object:
    return {"n": params.n}


def _core() -> tuple[Peer, Dispatcher]:
    reg = MethodRegistry()
    reg.add(MethodSpec("api.hello", None, HelloParams, "", ""))
    reg.add(MethodSpec("test.echo", _echo, EchoParams, "", ""))  # type: ignore[arg-type]
    reg.add(MethodSpec("test.none", _echo, NoParams, "", "", requires_login=True))  # type: ignore[arg-type]
    return Peer(1, max_message=4096), Dispatcher(reg, SessionTable())


def _run_core(chunks: list[bytes]) -> list[bytes | Call]:
    peer, disp = _core()
    out: list[bytes | Call] = []
    for chunk in chunks:
        for item in peer.receive_data(chunk):
            out.append(disp.dispatch(peer, item, 0.0))
    return out


def _check_structured(actions: list[bytes | Call]) -> None:
    for action in actions:
        if isinstance(action, Call):
            assert action.spec.name == "test.echo"
            assert isinstance(action.params, EchoParams)
            continue
        msg = json.loads(action)
        assert action.endswith(b"\n") and action.count(b"\n") == 1
        assert set(msg) == {"id", "result"} or set(msg) == {"id", "error"}
        if "error" in msg:
            assert msg["error"]["code"] in CODES
            assert isinstance(msg["error"]["message"], str) and msg["error"]["message"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_fuzz_bytes_give_only_structured_replies(chunks: list[bytes]) -> None:
    _check_structured(_run_core(chunks))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=12,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.integers(), st.text(max_size=4), json_values),
        "method": st.sampled_from(["api.hello", "test.echo", "test.none", "nope"]) | json_values,
        "params": st.fixed_dictionaries(
            {},
            optional={
                "version": st.sampled_from(["1.0", "1.7", "2.0", "x"]) | json_values,
                "n": st.integers() | json_values,
                "tag": json_values,
                "items": st.lists(st.floats(allow_nan=False) | json_values, max_size=3),
                "extra": json_values,
            },
        )
        | json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(envelopes, max_size=8), st.integers(min_value=1, max_value=50))
def test_fuzz_requests_split_anywhere(messages: list[object], cut: int) -> None:
    stream = b"".join(json.dumps(m).encode() + b"\n" for m in messages)
    chunks = [stream[i : i + cut] for i in range(0, len(stream), cut)]
    actions = _run_core(chunks)
    _check_structured(actions)
    assert len(actions) == len(messages)  # every message is answered or dispatched


def test_core_hello_gate_and_login_gate() -> None:
    peer, disp = _core()

    def send(obj: object) -> bytes | Call:
        (item,) = peer.receive_data(json.dumps(obj).encode() + b"\n")
        return disp.dispatch(peer, item, 0.0)

    out = send({"id": 1, "method": "test.echo", "params": {"n": 1}})
    assert isinstance(out, bytes) and json.loads(out)["error"]["code"] == "hello_required"
    out = send({"id": 2, "method": "api.hello", "params": {"version": "1.3"}})
    assert isinstance(out, bytes) and json.loads(out)["result"]["protocol"] == "1.0"
    assert isinstance(send({"id": 3, "method": "test.echo", "params": {"n": 1}}), Call)
    out = send({"id": 4, "method": "test.none"})
    assert isinstance(out, bytes) and json.loads(out)["error"]["code"] == "login_required"
