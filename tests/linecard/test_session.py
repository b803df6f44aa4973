"""Session: handshake, exactly-once in-order delivery over a hostile wire, dead and reset cards."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from drivers.linecard import protocol as p
from drivers.linecard.session import (
    DownReason,
    LinkDown,
    LinkUp,
    NotConnectedError,
    PeerFault,
    QueueFullError,
    Received,
    Role,
    Session,
    State,
    Timing,
)
from tests.linecard.hostile import Net, Wire
from tests.linecard.samples import CARD


def make_net(seed: int = 1, **wire: object) -> Net:
    rng = random.Random(seed)
    host = Session(Role.HOST, rng=random.Random(seed + 100))
    card = Session(Role.CARD, card=CARD)
    net = Net(host, card, Wire(rng, **wire), Wire(rng, **wire))  # type: ignore[arg-type]
    net.start()
    return net


def of_type(events: Sequence[tuple[float, object]], kind: type) -> list[Any]:
    return [e for _, e in events if isinstance(e, kind)]


def test_handshake_reports_card_to_host() -> None:
    net = make_net()
    net.run(0.05)
    assert net.a.state is State.CONNECTED and net.b.state is State.CONNECTED
    (up,) = of_type(net.a_events, LinkUp)
    assert up.card.ports == CARD.ports
    assert up.card.firmware == (1, 2, 3)
    assert up.card.boot_id == CARD.boot_id
    assert up.card.nonce == net.a.card.nonce  # type: ignore[union-attr]
    assert of_type(net.b_events, LinkUp)


def test_send_before_connected_is_our_error() -> None:
    host = Session(Role.HOST)
    with pytest.raises(p.LocalProtocolError, match="idle"):
        host.receive_data(b"\x00", 0.0)
    with pytest.raises(NotConnectedError, match="idle"):
        host.send(p.StopRing(1), 0.0)
    host.start(0.0)
    with pytest.raises(p.LocalProtocolError, match="illegal"):
        host.start(0.0)
    with pytest.raises(p.LocalProtocolError, match="may not send HookChange"):
        host.send(p.HookChange(1, True, 0), 0.0)
    with pytest.raises(p.LocalProtocolError, match="link control"):
        host.send(p.Ack(), 0.0)
    with pytest.raises(p.LocalProtocolError, match="needs its HelloAck"):
        Session(Role.CARD)


def _commands(n: int) -> list[p.Message]:
    kinds: list[Callable[[int], p.Message]] = [
        lambda i: p.StatusRequest(i % 6 + 1),
        lambda i: p.Ring(i % 4 + 1, ((i % 1000 + 1, 2000),)),
        lambda i: p.SetPolarity(i % 6 + 1, p.Polarity(i % 2)),
        lambda i: p.Flash(5, i),
    ]
    return [kinds[i % len(kinds)](i) for i in range(n)]


def _events(n: int) -> list[p.Message]:
    return [p.HookChange(i % 4 + 1, i % 2 == 0, i * 37) for i in range(n)]


def _exchange(net: Net, count: int, budget: float) -> None:
    commands, events = _commands(count), _events(count)
    sent_c = sent_e = 0
    end = net.now + budget
    while net.now < end and (
        sent_c < count or sent_e < count or net.a.in_flight or net.b.in_flight
    ):
        while sent_c < count and net.a.connected and net.a.in_flight < 32:
            net.a.send(commands[sent_c], net.now)
            sent_c += 1
        while sent_e < count and net.b.connected and net.b.in_flight < 32:
            net.b.send(events[sent_e], net.now)
            sent_e += 1
        net.run(0.01)
    got_c = [e.message for e in of_type(net.b_events, Received)]
    got_e = [e.message for e in of_type(net.a_events, Received)]
    assert got_c == commands
    assert got_e == events


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exactly_once_in_order_over_hostile_wire(seed: int) -> None:
    net = make_net(seed, loss=0.1, duplicate=0.05, garbage=0.05, corrupt=0.03, byte_at_a_time=True)
    net.run(0.5)
    assert net.a.connected
    _exchange(net, 300, budget=60.0)
    assert not of_type(net.a_events, LinkDown)
    assert net.a.stats.retransmissions > 0 and net.b.stats.retransmissions > 0
    assert net.a.stats.frames_bad > 0  # the garbage was really there
    assert net.b.stats.duplicates > 0


def test_clean_wire_needs_no_retransmission() -> None:
    net = make_net()
    net.run(0.05)
    _exchange(net, 200, budget=10.0)
    assert net.a.stats.retransmissions == net.b.stats.retransmissions == 0
    assert net.a.stats.frames_bad == net.b.stats.frames_bad == 0


def test_unplugged_card_is_noticed_within_one_second() -> None:
    net = make_net()
    net.run(1.0)
    assert net.a.connected
    unplugged = net.now
    net.b_to_a.cut = net.a_to_b.cut = True
    net.run(2.0)
    (down,) = of_type(net.a_events, LinkDown)
    when = next(t for t, e in net.a_events if isinstance(e, LinkDown))
    assert down.reason is DownReason.PEER_SILENT
    assert when - unplugged <= 1.0
    assert net.a.state is State.HANDSHAKING
    # Plugged back in: the host's repeated Hello finds it again.
    net.b_to_a.cut = net.a_to_b.cut = False
    net.run(1.0)
    assert net.a.connected and len(of_type(net.a_events, LinkUp)) == 2


def test_silent_card_with_pending_commands_hands_them_back() -> None:
    net = make_net()
    net.run(0.1)
    net.a_to_b.cut = True
    sent = [p.StopRing(1), p.Seize(5)]
    for m in sent:
        net.a.send(m, net.now)
    net.run(1.5)
    down = of_type(net.a_events, LinkDown)[0]
    assert down.unacknowledged == tuple(sent)
    assert down.reason in (DownReason.NO_ACK, DownReason.PEER_SILENT)


def test_card_reset_mid_stream_is_detected_and_rehandshaked() -> None:
    net = make_net()
    net.run(0.1)
    net.b.send(p.HookChange(1, True, 10), net.now)
    # Half a frame gets out, then the card reboots with a new boot id.
    half = net.b.data_to_send()[:6]
    net.a.receive_data(half, net.now)
    rebooted = dataclasses.replace(CARD, boot_id=0x0BAD_CAFE)
    net.b = Session(Role.CARD, card=rebooted)
    net.b.start(net.now)
    net.run(1.0)
    downs = of_type(net.a_events, LinkDown)
    assert [d.reason for d in downs] == [DownReason.PEER_RESET]
    ups = of_type(net.a_events, LinkUp)
    assert [u.card.boot_id for u in ups] == [CARD.boot_id, 0x0BAD_CAFE]
    assert net.a.connected
    # The new session works both ways.
    net.a.send(p.StatusRequest(2), net.now)
    net.b.send(p.HookChange(2, False, 5), net.now)
    net.run(0.1)
    assert of_type(net.b_events, Received)[-1].message == p.StatusRequest(2)
    assert of_type(net.a_events, Received)[-1].message == p.HookChange(2, False, 5)


def test_silent_reset_is_noticed_through_heartbeat() -> None:
    # The card reboots and its NotConnected announcement is lost: the next host
    # heartbeat draws another one.
    net = make_net()
    net.run(0.1)
    net.b_to_a.cut = True
    net.b = Session(Role.CARD, card=dataclasses.replace(CARD, boot_id=5))
    net.b.start(net.now)
    net.run(0.01)
    net.b_to_a.cut = False
    reset_at = net.now
    net.run(1.0)
    when = next(t for t, e in net.a_events if isinstance(e, LinkDown))
    assert when - reset_at <= Timing().heartbeat_interval + 0.05
    assert net.a.connected and net.a.card is not None and net.a.card.boot_id == 5


def test_host_restart_gives_card_a_new_session() -> None:
    net = make_net()
    net.run(0.1)
    net.a = Session(Role.HOST, rng=random.Random(99))
    net.a.start(net.now)
    net.run(0.2)
    reasons = [d.reason for d in of_type(net.b_events, LinkDown)]
    assert reasons == [DownReason.NEW_SESSION]
    assert len(of_type(net.b_events, LinkUp)) == 2
    assert net.a.connected


def test_card_loses_silent_host() -> None:
    net = make_net()
    net.run(0.1)
    net.a_to_b.cut = True
    net.run(1.0)
    assert [d.reason for d in of_type(net.b_events, LinkDown)] == [DownReason.PEER_SILENT]
    assert net.b.state is State.HANDSHAKING
    with pytest.raises(NotConnectedError):
        net.b.send(p.HookChange(1, True, 0), net.now)


def test_version_mismatch_is_a_peer_fault_and_no_connection() -> None:
    host = Session(Role.HOST)
    host.start(0.0)
    (frame,) = p.FrameDecoder().feed(host.data_to_send())
    assert isinstance(frame, p.Frame)
    hello = frame.message()
    assert isinstance(hello, p.Hello) and hello.version == p.PROTOCOL_VERSION
    # Answer by hand, three times, with a future protocol version.
    wrong = dataclasses.replace(CARD, version=9, nonce=hello.nonce)
    host.receive_data(p.encode(wrong) * 3, 0.01)
    faults = [e for e in host.events() if isinstance(e, PeerFault)]
    assert len(faults) == 1 and "version 9" in faults[0].description
    assert not host.connected


def test_malformed_command_is_rejected_by_card_and_link_goes_on() -> None:
    net = make_net()
    net.run(0.05)
    # A sequenced frame with a valid CRC but a payload no StopRing can have.
    frame = p.Frame(0, 0, p.StopRing.TYPE, b"\x00")
    net.b.receive_data(frame.encode(), net.now)
    net.run(0.05)
    faults = of_type(net.b_events, PeerFault)
    assert faults and "port=0" in faults[0].description
    rejected = [e.message for e in of_type(net.a_events, Received)]
    assert rejected == [p.CommandRejected(0, p.StopRing.TYPE, 0, p.RejectReason.MALFORMED)]
    net.a.send(p.StopRing(1), net.now)  # host seq 0 was "used" by the forged frame
    net.run(0.2)
    assert net.a.connected


def test_send_queue_is_capped() -> None:
    net = make_net()
    net.run(0.05)
    net.a_to_b.cut = True
    with pytest.raises(QueueFullError):
        for _ in range(1000):
            net.a.send(p.StatusRequest(1), net.now)
    assert net.a.in_flight <= 64 + net.a.timing.window


def test_timing_is_validated() -> None:
    with pytest.raises(p.LocalProtocolError):
        Timing(heartbeat_interval=1.0, dead_after=0.5)
    with pytest.raises(p.LocalProtocolError):
        Timing(window=200)
