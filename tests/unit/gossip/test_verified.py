"""The validator-to-delivery cache shared by the registry, broker and network-view cores."""

from __future__ import annotations

from micronetwork.gossip.events import Message, Outcome
from micronetwork.gossip.verified import Verified
from micronetwork.identity import KeyPair

PEER = KeyPair.from_seed(b"\x01" * 32).peer_id


def _msg(mid: bytes) -> Message:
    return Message("t", b"data", PEER, b"\x00", mid, PEER)


def test_a_kept_record_is_taken_once_without_validating_again() -> None:
    cache: Verified[str] = Verified()
    calls: list[bytes] = []

    def validate(m: Message) -> Outcome:
        calls.append(m.msg_id)
        cache.put(m.msg_id, "again")
        return Outcome.ACCEPT

    cache.put(b"a", "parsed")
    assert cache.take(_msg(b"a"), validate) == "parsed"
    assert calls == []
    assert cache.take(_msg(b"a"), validate) == "again"  # not kept any more: validated anew
    assert calls == [b"a"]


def test_an_invalid_message_without_a_kept_record_gives_none() -> None:
    cache: Verified[str] = Verified()
    assert cache.take(_msg(b"x"), lambda m: Outcome.REJECT) is None


def test_the_cache_is_bounded() -> None:
    cache: Verified[int] = Verified(limit=3)
    for i in range(10):
        cache.put(bytes([i]), i)
        assert len(cache) <= 3
