"""RegistryCore without sockets: gossip and the DHT are a fake that records and relays."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest

from micronetwork.commands import Emit, Request, Respond
from micronetwork.errors import ConfigError, SignatureError, ValidationError
from micronetwork.gossip.events import Message, Outcome
from micronetwork.identity.keys import KeyPair
from micronetwork.registry import (
    CATALOG_TOPIC,
    FetchFinished,
    Registration,
    RegistryConfig,
    RegistryCore,
    ServiceEvent,
    open_registration,
    service_key,
    service_topic,
)

GREETER = {
    "name": "greeter",
    "version": "1.2.0",
    "metadata": {"team": "a"},
    "endpoints": [{"name": "hello", "kind": "unary", "request": {}, "response": {}}],
}


class FakePorts:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.subscribed: list[str] = []
        self.provided: list[bytes] = []
        self.stopped: list[bytes] = []
        self.hubs: set[str] = set()

    def publish(self, topic: str, data: bytes, now: float) -> None:
        self.published.append((topic, data))

    def subscribe(self, topic: str, now: float) -> None:
        self.subscribed.append(topic)

    def unsubscribe(self, topic: str, now: float) -> None:
        self.subscribed.remove(topic)

    def provide(self, key: bytes, now: float) -> None:
        self.provided.append(key)

    def stop_providing(self, key: bytes) -> None:
        self.stopped.append(key)

    def set_hub(self, topic: str, on: bool) -> None:
        if on:
            self.hubs.add(topic)
        else:
            self.hubs.discard(topic)


def make(seed: int, **cfg: Any) -> tuple[RegistryCore, FakePorts]:
    ports = FakePorts()
    core = RegistryCore(KeyPair.from_seed(bytes([seed]) * 32), ports,
                        config=RegistryConfig(**cfg), seq_base=1000)
    core.set_addrs((b"\x04\x7f\x00\x00\x01\x06\x10\x00",), 0.0)
    return core, ports


def relay(src: RegistryCore, ports: FakePorts, dst: RegistryCore, now: float) -> None:
    """Deliver what ``src`` published to ``dst`` as gossip would (validator first)."""
    for i, (topic, data) in enumerate(ports.published):
        msg = Message(topic, data, src.local_id, b"", bytes([i]) + data[-8:], src.local_id)
        if topic in dst.subscribed and dst.validate(msg) is Outcome.ACCEPT:
            dst.on_message(msg, now)
    ports.published.clear()


def events(core: RegistryCore) -> list[Any]:
    return [c.event for c in core.drain() if isinstance(c, Emit)]


def test_register_announces_signed_record_and_provides() -> None:
    a, pa = make(1)
    reg = a.register(GREETER, 0.0)
    assert [t for t, _ in pa.published] == [service_topic("greeter"), CATALOG_TOPIC]
    assert pa.provided == [service_key("greeter")]
    assert service_topic("greeter") in pa.subscribed
    assert pa.hubs == {service_topic("greeter")}  # its watchers hear other instances through it
    got = open_registration(pa.published[0][1])
    assert got == reg and got.peer == a.local_id and got.ttl == 20.0
    assert a.get("greeter") == [reg]
    with pytest.raises(ConfigError):
        a.register({**GREETER, "name": "Bad Name"}, 0.0)
    a.deregister("greeter", 1.0)
    assert pa.hubs == set()


def test_watcher_sees_created_kept_alive_then_expired() -> None:
    a, pa = make(1)
    b, _ = make(2)
    b.watch("greeter", 0.0)
    a.register(GREETER, 0.0)
    relay(a, pa, b, 0.0)
    (ev,) = events(b)
    assert isinstance(ev, ServiceEvent) and (ev.kind, ev.name, ev.peer) == (
        "created", "greeter", a.local_id)
    # A re-announces every 10 s: B keeps the instance well past one TTL.
    t = 0.0
    while t < 60.0:
        t = min(a.next_deadline() or 1e9, b.next_deadline() or 1e9)
        a.on_timer(t)
        relay(a, pa, b, t)
        b.on_timer(t)
    assert [e for e in events(b) if e.kind == "deleted"] == []
    assert len(b.get("greeter")) == 1
    # A dies: B deletes it within ttl of the last announcement.
    last = t
    while b.get("greeter"):
        t = b.next_deadline() or t + 1
        b.on_timer(t)
    assert t - last <= 20.0 + 1e-9
    (gone,) = [e for e in events(b) if e.kind == "deleted"]
    assert gone.reason == "expired"


def test_withdraw_deletes_at_once_and_replays_are_ignored() -> None:
    a, pa = make(1)
    b, _ = make(2)
    b.watch("greeter", 0.0)
    a.register(GREETER, 0.0)
    old = list(pa.published)
    relay(a, pa, b, 0.0)
    a.deregister("greeter", 1.0)
    assert pa.stopped == [service_key("greeter")]
    relay(a, pa, b, 1.0)
    kinds = [e.kind for e in events(b)]
    assert kinds == ["created", "deleted"] and b.get("greeter") == []
    pa.published = old  # an attacker replays the old, valid announcement
    relay(a, pa, b, 2.0)
    assert b.get("greeter") == [] and b.counters["stale"] >= 1


def test_records_signed_by_another_node_or_author_are_rejected() -> None:
    a, _ = make(1)
    c, _ = make(3)
    b, _ = make(2)
    b.watch("greeter", 0.0)
    forged = Registration(GREETER, a.local_id, (), 5, 20.0)
    with pytest.raises(ValidationError):
        forged.seal(c.key)  # our own API refuses
    raw = forged.to_wire()
    from micronetwork.identity.envelope import seal

    data = seal(c.key, "micronetwork-registry", b"/micronetwork/registry/1", raw)
    with pytest.raises(SignatureError):
        open_registration(data)
    msg = Message(service_topic("greeter"), data, c.local_id, b"", b"x", c.local_id)
    assert b.validate(msg) is Outcome.REJECT
    # A's genuine record, but gossiped as if C authored it: rejected too.
    good = Registration(GREETER, a.local_id, (), 5, 20.0).seal(a.key)
    msg = Message(service_topic("greeter"), good, c.local_id, b"", b"y", c.local_id)
    assert b.validate(msg) is Outcome.REJECT
    # On the wrong topic: rejected.
    msg = Message(service_topic("other"), good, a.local_id, b"", b"z", a.local_id)
    assert b.validate(msg) is Outcome.REJECT
    for garbage in (b"", b"\xff" * 10, cbor2.dumps({"v": 1})):
        bad = Message(service_topic("greeter"), garbage, a.local_id, b"", b"g", a.local_id)
        assert b.validate(bad) is Outcome.REJECT
    assert b.get("greeter") == [] and b.counters["rejected"] == 6


def test_fetch_from_provider_and_list_catalog() -> None:
    a, _ = make(1)
    b, _ = make(2)
    a.register(GREETER, 0.0)
    a.drain()
    rid = b.fetch(a.local_id, (), "greeter", 0.0)
    (req,) = b.drain()
    assert isinstance(req, Request) and req.protocol == "/micronetwork/registry/1.0.0"
    a.on_request(b.local_id, 7, b.encode(req.message), 0.1)
    (resp,) = a.drain()
    assert isinstance(resp, Respond) and resp.token == 7
    b.on_response(a.local_id, rid, a.encode(resp.message), 0.2)
    evs = events(b)
    assert any(isinstance(e, ServiceEvent) and e.kind == "created" for e in evs)
    (done,) = [e for e in evs if isinstance(e, FetchFinished)]
    assert done.records == 1 and done.error is None
    # a provider that answers with someone else's name gets nothing in
    rid = b.fetch(a.local_id, (), "nothing", 0.3)
    b.drain()
    b.on_response(a.local_id, rid, a.encode({"records": [Registration(
        GREETER, a.local_id, (), 99, 20.0).seal(a.key)]}), 0.4)
    (done,) = [e for e in events(b) if isinstance(e, FetchFinished)]
    assert done.records == 0 and done.error
    # list
    rid = b.list_from(a.local_id, (), 1.0)
    (req,) = b.drain()
    assert isinstance(req, Request)
    a.on_request(b.local_id, 8, b.encode(req.message), 1.0)
    (resp,) = a.drain()
    assert isinstance(resp, Respond)
    assert resp.message == {"services": [["greeter", "1.2.0", 1]]}
    # garbage requests are answered by closing, and counted
    a.on_request(b.local_id, 9, b"\xff\xfe", 1.0)
    assert a.drain() == [Respond(9, None)] and a.counters["bad_requests"] == 1


def test_fetch_times_out() -> None:
    b, _ = make(2, request_timeout=2.0)
    a, _ = make(1)
    rid = b.fetch(a.local_id, (), "greeter", 0.0)
    b.drain()
    b.on_timer(2.0)
    (done,) = events(b)
    assert isinstance(done, FetchFinished) and done.request_id == rid
    assert done.error == "timed out"


def test_looked_up_names_are_bounded() -> None:
    b, pb = make(2, max_looked_up=2)
    for name in ("s1", "s2", "s3"):
        b.note_looked_up(name, 0.0)
    assert service_topic("s1") not in pb.subscribed
    assert {service_topic("s2"), service_topic("s3")} <= set(pb.subscribed)
    b.watch("s1", 0.0)  # watching is separate from the LRU
    b.note_looked_up("s4", 0.0)
    assert service_topic("s1") in pb.subscribed


def test_catalog_is_bounded() -> None:
    b, _ = make(2, catalog_size=3, catalog_subscribe=True)
    for i in range(5):
        k = KeyPair.from_seed(bytes([50 + i]) * 32)
        reg = Registration({**GREETER, "name": f"svc{i}"}, k.peer_id, (), 1, 20.0)
        msg = Message(CATALOG_TOPIC, reg.seal(k), k.peer_id, b"", bytes([i]), k.peer_id)
        assert b.validate(msg) is Outcome.ACCEPT
        b.on_message(msg, 0.0)
    assert [n for n, _, _ in b.catalog_view(1.0)] == ["svc2", "svc3", "svc4"]
    assert b.instances == {}  # catalog entries are not instances: nobody watches them


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError):
        RegistryConfig(ttl=5, announce_interval=10)
