"""A newcomer to a full bucket: the least recently seen entry is pinged only when it has not
been heard from for ``evict_ping_after``; otherwise the newcomer waits as the bucket's
candidate and takes the slot when that entry fails (Kademlia paper 4.1)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from micronetwork.commands import Emit, Request
from micronetwork.errors import ConfigError
from micronetwork.identity.peerid import PeerId
from micronetwork.kademlia import KademliaConfig, KademliaCore
from micronetwork.kademlia.events import PeerAdded, PeerRemoved
from micronetwork.kademlia.keyspace import clear_pins, pin_peer_key
from micronetwork.kademlia.messages import MessageType

LOCAL = PeerId(b"\x00\x24" + b"\x01" * 36)
TOP = 1 << 255  # keys with the top bit set: bucket 0 of a table at local key 0


def peer(i: int) -> PeerId:
    return PeerId(b"\x00\x24" + i.to_bytes(36, "big"))


OLD, MID, NEW, NEWER = peer(1), peer(2), peer(3), peer(4)


@pytest.fixture(autouse=True)
def _one_bucket() -> Iterator[None]:
    for i in range(1, 5):
        pin_peer_key(peer(i), TOP | i)  # all four in bucket 0
    yield
    clear_pins()


def full_core(evict_ping_after: float = 60.0) -> KademliaCore:
    """k = 2, bucket 0 holding OLD (heard at 0 s) and MID (heard at 10 s)."""
    cfg = KademliaConfig(k=2, evict_ping_after=evict_ping_after)
    core = KademliaCore(LOCAL, config=cfg, rng=random.Random(1), local_key=0)
    proto = core.config.protocol_id
    core.on_peer_identified(OLD, (b"a",), [proto], 0.0)
    core.on_peer_identified(MID, (b"b",), [proto], 10.0)
    core.drain()
    return core


def arrive(core: KademliaCore, p: PeerId, now: float) -> list[PeerId]:
    """``p`` shows it serves the DHT at ``now``; the peers the core pinged."""
    core.on_peer_identified(p, (b"n",), [core.config.protocol_id], now)
    return [c.peer for c in core.drain()
            if isinstance(c, Request) and c.message.type is MessageType.PING]


def test_an_entry_heard_from_lately_is_not_pinged_and_the_newcomer_waits() -> None:
    core = full_core()
    assert arrive(core, NEW, 30.0) == []  # OLD heard 30 s ago (< 60 s)
    assert NEW not in core.table and core.table.candidate(OLD) == NEW
    assert arrive(core, NEWER, 40.0) == []  # the newest newcomer waits instead
    assert core.table.candidate(OLD) == NEWER


def test_an_entry_not_heard_from_for_the_window_is_pinged() -> None:
    core = full_core()
    assert arrive(core, NEW, 61.0) == [OLD]
    assert arrive(core, NEWER, 62.0) == []  # one ping in flight per entry


def test_a_waiting_newcomer_is_pinged_for_once_the_entry_grows_old() -> None:
    core = full_core()
    assert arrive(core, NEW, 30.0) == []
    assert arrive(core, NEWER, 70.0) == [OLD]  # FULL, and now OLD is 70 s old


def test_zero_pings_at_once_as_the_paper_basic_rule_and_is_the_default() -> None:
    assert arrive(full_core(evict_ping_after=0.0), NEW, 0.5) == [OLD]
    assert KademliaConfig().evict_ping_after == 0.0
    with pytest.raises(ConfigError):
        KademliaConfig(evict_ping_after=-1.0)


def test_the_candidate_takes_the_slot_when_the_entry_fails_and_is_reported() -> None:
    core = full_core()
    arrive(core, NEW, 30.0)
    events = []
    for i in range(core.config.max_failures):  # failures in a row, one lookup each
        assert OLD in core.table
        core.find_closest(b"key %d" % i, 31.0 + i)
        asked = [c for c in core.drain() if isinstance(c, Request) and c.peer == OLD]
        assert len(asked) == 1
        core.on_request_failed(OLD, asked[0].request_id, "refused", 31.0 + i)
        events += [c.event for c in core.drain() if isinstance(c, Emit)]
    assert OLD not in core.table and NEW in core.table
    assert any(isinstance(e, PeerRemoved) and e.peer_id == OLD for e in events)
    assert any(isinstance(e, PeerAdded) and e.peer_id == NEW for e in events)


def test_a_peer_that_stops_serving_the_dht_leaves_once_and_its_candidate_enters() -> None:
    core = full_core()
    arrive(core, NEW, 30.0)  # waits as OLD's bucket's candidate
    core.on_peer_identified(OLD, (b"a",), ["/other/1.0.0"], 31.0)
    events = [c.event for c in core.drain() if isinstance(c, Emit)]
    assert [type(e).__name__ for e in events] == ["PeerRemoved", "PeerAdded"]
    assert events[0].peer_id == OLD and events[1].peer_id == NEW
    assert OLD not in core.table and NEW in core.table
