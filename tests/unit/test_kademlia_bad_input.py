"""The core survives malformed input: it counts, answers or drops, and disconnects repeat
offenders."""

from __future__ import annotations

import random

from micronetwork.commands import Disconnect, Emit, Respond
from micronetwork.identity import KeyPair
from micronetwork.kademlia import (
    KademliaConfig,
    KademliaCore,
    KadMessage,
    MessageType,
    PeerInfo,
    Record,
    encode_message,
)

ME = KeyPair.from_seed(b"\x02" * 32).peer_id
BAD = KeyPair.from_seed(b"\x03" * 32).peer_id
GOOD = KeyPair.from_seed(b"\x04" * 32).peer_id


def core(**kw: object) -> KademliaCore:
    return KademliaCore(ME, config=KademliaConfig(**kw), rng=random.Random(1))  # type: ignore[arg-type]


def test_garbage_counted_answered_and_sender_disconnected() -> None:
    c = core(bad_message_limit=3)
    for token in range(1, 4):
        c.on_request(BAD, token, b"\xff\xfe garbage", 0.0)
    cmds = c.drain()
    assert [x for x in cmds if isinstance(x, Respond)] == [Respond(t, None) for t in (1, 2, 3)]
    assert any(isinstance(x, Disconnect) and x.peer == BAD for x in cmds)
    assert c.counters["bad_messages"] == 3
    find = encode_message(KadMessage(MessageType.FIND_NODE, key=b"k"))
    # The offender is banned: not answered, never re-admitted to the table...
    c.on_request(BAD, 9, find, 1.0)
    c.on_peer_identified(BAD, (b"a",), [c.config.protocol_id], 1.0)
    assert c.drain() == [Respond(9, None)] and BAD not in c.table
    # ...while the node goes on serving everyone else,
    c.on_request(GOOD, 10, find, 1.0)
    (reply,) = c.drain()
    assert isinstance(reply, Respond) and reply.message.type is MessageType.FIND_NODE
    # and the ban ends after ban_duration.
    later = 1.0 + c.config.ban_duration
    c.on_peer_identified(BAD, (b"a",), [c.config.protocol_id], later)
    assert BAD in c.table


def test_invalid_records_are_rejected_and_counted() -> None:
    c = core()
    other = KeyPair.from_seed(b"\x05" * 32)
    cases = [
        KadMessage(MessageType.PUT_VALUE, key=b"/pk/" + bytes(BAD),
                   record=Record(b"/pk/" + bytes(BAD), other.encoded_public_key)),
        KadMessage(MessageType.PUT_VALUE, key=b"/unknown/x", record=Record(b"/unknown/x", b"v")),
        KadMessage(MessageType.PUT_VALUE, key=b"no-namespace", record=Record(b"no-namespace", b"")),
        KadMessage(MessageType.PUT_VALUE, key=b"/mn/a", record=Record(b"/mn/b", b"v")),
        KadMessage(MessageType.PUT_VALUE, key=b"/mn/a"),
        KadMessage(MessageType.PUT_VALUE, key=b"/mn/big", record=Record(b"/mn/big", b"x" * 70_000)),
    ]
    for i, msg in enumerate(cases):
        c.on_request(BAD, i, msg, 0.0)
    assert c.drain() == [Respond(i, None) for i in range(len(cases))]
    assert c.counters["records_rejected"] == len(cases)
    assert len(c.records) == 0


def test_binary_keys_stored_and_served() -> None:
    c = core()
    key = b"/mn/\x00\x80\xff"
    c.on_request(BAD, 1, KadMessage(MessageType.PUT_VALUE, key=key, record=Record(key, b"v")), 0.0)
    c.on_request(BAD, 2, KadMessage(MessageType.GET_VALUE, key=key), 1.0)
    put, get = c.drain()
    assert isinstance(get, Respond) and get.message.record == Record(key, b"v")


def test_provider_records_only_for_the_sender_and_expire() -> None:
    c = core(provider_ttl=100.0)
    liar = KadMessage(MessageType.ADD_PROVIDER, key=b"k", provider_peers=(PeerInfo(ME, ()),))
    mine = (PeerInfo(BAD, (b"a",)),)
    honest = KadMessage(MessageType.ADD_PROVIDER, key=b"k", provider_peers=mine)
    c.on_request(BAD, 1, liar, 0.0)
    c.on_request(BAD, 2, honest, 0.0)
    c.drain()
    assert c.providers.get(b"k", 50.0) == [(BAD, (b"a",))]
    assert c.providers.get(b"k", 101.0) == []
    assert c.counters["providers_rejected"] == 1


def test_late_and_unknown_responses_are_ignored() -> None:
    c = core(request_timeout=1.0)
    c.add_bootstrap_peer(BAD, (b"addr",))
    c.bootstrap(0.0)
    cmds = c.drain()
    req = next(x for x in cmds if not isinstance(x, Emit))
    c.on_timer(5.0)
    events = [x.event for x in c.drain() if isinstance(x, Emit)]
    assert any(type(e).__name__ == "QueryFinished" for e in events)
    c.on_response(BAD, req.request_id, KadMessage(MessageType.FIND_NODE), 6.0)  # too late
    c.on_response(BAD, 999_999, KadMessage(MessageType.FIND_NODE), 6.0)  # never asked
    assert c.counters["timeouts"] == 1
