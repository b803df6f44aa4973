"""Property tests: random and mutated input never escapes the protocol's error types."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.linecard import protocol as p
from drivers.linecard.session import Role, Session
from tests.linecard.samples import CARD, SAMPLES

FUZZ = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The stream-level properties cost more per example.
FUZZ_HEAVY = settings(FUZZ, max_examples=1500)

valid_wire = st.lists(
    st.tuples(st.sampled_from(SAMPLES), st.integers(0, 255), st.integers(0, 255)),
    min_size=1,
    max_size=8,
).map(
    lambda items: [
        (m, p.encode(m, seq=seq if type(m).sequenced() else 0, ack=ack)) for m, seq, ack in items
    ]
)


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=10))
def test_random_bytes_only_yield_frames_or_frame_errors(chunks: list[bytes]) -> None:
    decoder = p.FrameDecoder()
    for chunk in chunks:
        for result in decoder.feed(chunk):
            assert isinstance(result, p.Frame | p.FrameError)
            if isinstance(result, p.Frame):
                try:
                    result.message()
                except p.MessageError:
                    pass
        assert decoder.buffered <= p.MAX_ENCODED_FRAME


@FUZZ
@given(st.integers(0, 255), st.binary(max_size=p.MAX_PAYLOAD + 8))
def test_random_payloads_raise_only_message_error(type_code: int, payload: bytes) -> None:
    try:
        message = p.decode_message(type_code, payload)
    except p.MessageError as exc:
        assert str(exc)
    else:
        assert message.to_bytes() == payload  # a payload that parses is canonical


@FUZZ_HEAVY
@given(valid_wire, st.binary(max_size=200), st.data())
def test_valid_frames_after_mutated_garbage_still_decode(
    frames: list[tuple[p.Message, bytes]], garbage: bytes, data: st.DataObject
) -> None:
    # Garbage (possibly a mutated frame) first; valid frames after it must all come out.
    victim = bytearray(frames[0][1])
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(victim) - 1))
        victim[i] = data.draw(st.integers(0, 255))
    stream = garbage + bytes(victim) + b"".join(w for _, w in frames)
    decoder = p.FrameDecoder()
    cut = data.draw(st.integers(0, len(stream)))
    results = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
    decoded = [r.message() for r in results if isinstance(r, p.Frame)]
    expected = [m for m, _ in frames]
    assert decoded[-len(expected) :] == expected
    assert decoder.buffered == 0


@FUZZ_HEAVY
@given(st.lists(st.binary(max_size=120), max_size=6), st.sampled_from(list(Role)))
def test_sessions_survive_arbitrary_input(chunks: list[bytes], role: Role) -> None:
    session = Session(role, card=CARD if role is Role.CARD else None)
    session.start(0.0)
    now = 0.0
    for chunk in chunks:
        now += 0.01
        session.receive_data(chunk, now)  # must not raise: garbage is counted, not thrown
        session.handle_timer(now)
        session.data_to_send()
        session.events()
    assert session.stats.frames_in + session.stats.frames_bad >= 0
