"""Gossipsub interop with js-libp2p: @chainsafe/libp2p-gossipsub 14.1.2 on libp2p 2.10.

js speaks /meshsub/1.2.0, 1.1.0, 1.0.0 and /floodsub/1.0.0; StrictSign on both sides. Checked
both ways: subscriptions, meshes (js's API shows its mesh), messages with their author, seqno
and signature, forwarding of the other side's signed messages, IDONTWANT (v1.2), and a burst
of GRAFTs (one frame with several controls: js keeps only the last ``control`` of a frame).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio

pytest.importorskip("micronetwork", reason="micronetwork is not installed (pip install -e .)")

from micronetwork import Node, NodeConfig, PeerId
from micronetwork.gossip import PROTOCOL_V11, PROTOCOL_V12, GossipConfig

from .jspeer import JsPeer
from .pubsub_helpers import verify_signed, wait_mesh, wait_topic_peer

TOPIC = "interop/js"


def _node_config(protocols: tuple[str, ...] = (PROTOCOL_V12, PROTOCOL_V11)) -> NodeConfig:
    return NodeConfig.peer(gossip=GossipConfig(protocols=protocols))


def _is_message(data: bytes, author: str) -> Any:
    return lambda e: (e.get("event") == "message" and e["data"] == data.hex()
                      and e["from"] == author)


async def _js_receives(js: JsPeer, data: bytes, author: str) -> dict[str, Any]:
    return await js.wait_event(_is_message(data, author))


@pytest.mark.parametrize(
    ("protocols", "negotiated", "we_dial"),
    [
        ((PROTOCOL_V12, PROTOCOL_V11), PROTOCOL_V12, True),
        ((PROTOCOL_V11,), PROTOCOL_V11, False),
    ],
    ids=["meshsub-1.2-we-dial", "meshsub-1.1-js-dials"],
)
async def test_subscriptions_mesh_and_messages_both_ways(
    js_peer_factory, protocols: tuple[str, ...], negotiated: str, we_dial: bool
) -> None:
    with trio.fail_after(60):
        js = await js_peer_factory(gossipsub={})
        js_id = PeerId.from_base58(js.peer_id)
        async with Node.open(_node_config(protocols)) as node, node.subscribe(TOPIC) as inbox:
            ours = str(node.peer_id)
            await js.request("subscribe", topic=TOPIC)
            if we_dial:
                await node.connect(js.addrs[0])
            else:
                await js.request("dial", addr=node.addrs[0])

            # Subscriptions, both ways; both streams speak the protocol we expect.
            await wait_topic_peer(node, TOPIC, js_id)
            assert node.topic_peers(TOPIC) == [js_id]
            assert (await js.request("wait_topic_peers", topic=TOPIC, peers=[ours]))["peers"] \
                == [ours]
            assert node._core.gossip.peers[js_id].protocol == negotiated
            streams = await js.request("score", peer=ours)
            assert streams["outbound_protocol"] == streams["inbound_protocol"] == negotiated

            # Meshes: each side grafts the other within a heartbeat or two.
            await wait_mesh(node, TOPIC, js_id)
            mesh = await js.request("wait_topic_peers", topic=TOPIC, peers=[ours], mesh=True)
            assert mesh["peers"] == [ours]
            assert node.mesh_peers(TOPIC) == [js_id]

            # Ours -> js: js verified our signatures (StrictSign) before delivering; so do we.
            for i in range(3):
                data = b"from micronetwork %d" % i
                msg_id = await node.publish(TOPIC, data)
                got = await _js_receives(js, data, ours)
                assert got["topic"] == TOPIC and got["received_from"] == ours
                seqno = bytes.fromhex(got["seqno"])
                assert msg_id == bytes(node.peer_id) + seqno  # our id: from + seqno
                verify_signed(TOPIC, data, node.peer_id, seqno, bytes.fromhex(got["signature"]))
                own = await inbox.receive()  # our own message, delivered locally
                assert (own.data, own.from_peer) == (data, node.peer_id)

            # js -> ours.
            for i in range(3):
                data = b"from js %d" % i
                sent = await js.request("publish", topic=TOPIC, data=data.hex())
                assert ours in sent["recipients"]
                msg = await inbox.receive()
                assert (msg.topic, msg.data, msg.from_peer, msg.received_from) == \
                    (TOPIC, data, js_id, js_id)
                # js reports its own message (emitSelf) with the seqno and signature it sent.
                mine = await _js_receives(js, data, js.peer_id)
                assert msg.seqno == bytes.fromhex(mine["seqno"])
                # js sends its public key in `key` even for Ed25519 (inlined in the id too);
                # our verifier checks that it is the author's.
                assert bytes.fromhex(mine["key"]) == js_id.public_key()
                verify_signed(TOPIC, data, js_id, msg.seqno, bytes.fromhex(mine["signature"]),
                              bytes.fromhex(mine["key"]))
                assert msg.msg_id == bytes(js_id) + msg.seqno

            stats = node.topic_stats(TOPIC)
            assert (stats.published, stats.delivered, stats.invalid) == (3, 6, 0)
            assert (stats.peers, stats.mesh) == (1, 1)
            assert (await js.request("score", peer=ours))["score"] >= 0
            assert node.stats().get("gossip_rpcs_dropped_by_driver", 0) == 0


async def test_forwarding_and_idontwant_through_js_and_through_us(js_peer_factory) -> None:
    """A line a - J1 - b - J2 (a, b ours; J1, J2 js): every message crosses both kinds of
    router, which verify the author's signature and forward it unchanged. Messages of 2 KB are
    above both IDONTWANT thresholds (js 512 B, ours 1 KiB), so each side also announces them.
    The js peers use go's message id (from + seqno), as we do: js's default differs (see the
    README), and IDONTWANT only helps when both sides name a message alike."""
    with trio.fail_after(90):
        # A DHT protocol nobody else speaks: with ours the js peers find each other through b
        # (kad-dht lookups) and connect, and the line is no longer a line.
        alone = "/interop/no-dht/1.0.0"
        j1 = await js_peer_factory(alone, gossipsub={"msg_id": "go"})
        j2 = await js_peer_factory(alone, gossipsub={"msg_id": "go"})
        j1_id, j2_id = PeerId.from_base58(j1.peer_id), PeerId.from_base58(j2.peer_id)
        for j in (j1, j2):
            await j.request("subscribe", topic=TOPIC)
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(Node.open(_node_config()))
            b = await stack.enter_async_context(Node.open(_node_config()))
            a_in = await stack.enter_async_context(a.subscribe(TOPIC))
            b_in = await stack.enter_async_context(b.subscribe(TOPIC))
            await a.connect(j1.addrs[0])
            await b.connect(j1.addrs[0])
            await b.connect(j2.addrs[0])
            for node, peers in ((a, [j1_id]), (b, [j1_id, j2_id])):
                for peer in peers:
                    await wait_topic_peer(node, TOPIC, peer)
                    await wait_mesh(node, TOPIC, peer)
            await j1.request("wait_topic_peers", topic=TOPIC, mesh=True,
                             peers=[str(a.peer_id), str(b.peer_id)])
            await j2.request("wait_topic_peers", topic=TOPIC, mesh=True, peers=[str(b.peer_id)])

            # a -> J1 -> b -> J2.
            data = b"A" * 2048
            msg_id = await a.publish(TOPIC, data)
            at_j1 = await _js_receives(j1, data, str(a.peer_id))
            assert at_j1["received_from"] == str(a.peer_id)
            msg = await b_in.receive()
            assert (msg.data, msg.from_peer, msg.received_from, msg.msg_id) == \
                (data, a.peer_id, j1_id, msg_id)
            # J1 told b IDONTWANT before forwarding (b keeps it for 3 heartbeats; per peer: an
            # IDONTWANT names no topic, so topic_stats has none).
            assert msg_id in b._core.gossip.peers[j1_id].dontwant
            assert b.stats()["gossip_idontwant_received"] >= 1
            at_j2 = await _js_receives(j2, data, str(a.peer_id))
            assert at_j2["received_from"] == str(b.peer_id)
            assert bytes.fromhex(at_j2["msg_id"]) == msg_id == bytes.fromhex(at_j1["msg_id"])
            verify_signed(TOPIC, data, a.peer_id, msg.seqno, bytes.fromhex(at_j2["signature"]))
            # b told J2 IDONTWANT too (J2 need not send it back to b).
            assert msg_id.hex() in (await j2.request("idontwants", peer=str(b.peer_id)))["ids"]
            assert b.topic_stats(TOPIC).idontwant_sent == 1

            # J2 -> b -> J1 -> a.
            data = b"J" * 2048
            await j2.request("publish", topic=TOPIC, data=data.hex())
            msg = await a_in.receive()
            while msg.from_peer == a.peer_id:  # our own first message
                msg = await a_in.receive()
            assert (msg.data, msg.from_peer, msg.received_from) == (data, j2_id, j1_id)
            assert msg.msg_id in a._core.gossip.peers[j1_id].dontwant  # J1 told a first
            at_j1 = await _js_receives(j1, data, j2.peer_id)
            assert at_j1["received_from"] == str(b.peer_id)
            mine = await _js_receives(j2, data, j2.peer_id)
            assert msg.seqno == bytes.fromhex(mine["seqno"])
            assert msg.msg_id == bytes.fromhex(mine["msg_id"]) == bytes(j2_id) + msg.seqno
            verify_signed(TOPIC, data, j2_id, msg.seqno, bytes.fromhex(mine["signature"]))
            got_b = await b_in.receive()
            while got_b.data != data:
                got_b = await b_in.receive()
            assert got_b.received_from == j2_id
            # b told J1 (J2 is the author and the source: no IDONTWANT for it, from anyone).
            assert msg.msg_id.hex() in \
                (await j1.request("idontwants", peer=str(b.peer_id)))["ids"]

            assert set(a.peers()) == {j1_id} and set(b.peers()) == {j1_id, j2_id}
            assert {c["peer"] for c in (await j2.request("peers"))["connections"]} == \
                {str(b.peer_id)}
            for node in (a, b):
                assert node.topic_stats(TOPIC).invalid == 0
                assert node.stats().get("gossip_rpcs_dropped_by_driver", 0) == 0


async def test_a_burst_of_grafts_reaches_js(js_peer_factory) -> None:
    """Subscribing to several topics at once sends js one SUBSCRIBE and one GRAFT per topic;
    our driver writes what is queued as one frame. js (protons) keeps only the last ``control``
    field of a frame, so the frame must carry one control with every GRAFT (the bug this found:
    js saw only the last topic's GRAFT, and grafted us itself on the others a heartbeat later)."""
    topics = [f"{TOPIC}/{i}" for i in range(4)]
    with trio.fail_after(60):
        js = await js_peer_factory(gossipsub={})
        js_id = PeerId.from_base58(js.peer_id)
        for topic in topics:
            await js.request("subscribe", topic=topic)
        async with Node.open(_node_config()) as node, AsyncExitStack() as stack:
            await node.connect(js.addrs[0])
            for topic in topics:
                await wait_topic_peer(node, topic, js_id)
            start = len(js.events)
            for topic in topics:  # no checkpoint in between: one burst
                await stack.enter_async_context(node.subscribe(topic))
            assert all(node.mesh_peers(t) == [js_id] for t in topics)  # grafted at subscribe
            for topic in topics:
                await js.wait_event(
                    lambda e, t=topic: e.get("event") == "graft" and e["topic"] == t
                    and e["direction"] == "inbound" and e["peer"] == str(node.peer_id),
                    # js would graft us itself within ~1 s; our GRAFT arrives well before.
                    timeout=5, start=start,
                )
            for topic in topics:
                await js.request("wait_topic_peers", topic=topic, peers=[str(node.peer_id)],
                                 mesh=True)


@pytest.mark.parametrize("js_msg_id", ["go", "js-default"])
async def test_ihave_iwant_both_ways(js_peer_factory, js_msg_id: str) -> None:
    """Gossip proper: b is subscribed but in nobody's mesh (it joined, left with a PRUNE whose
    10 s backoff js honours and b keeps, and joined again), so messages reach it and leave it
    only as IHAVE -> IWANT -> message. b does not flood-publish.

    js's default message id is the author's public key protobuf + seqno, not go's (and ours)
    author id + seqno. Gossip still delivers: each side asks for the id the other announced and
    gets the message. But the asker then files the message under its own id, so the IWANT
    promise for the announced one is never kept (a P7 penalty for an honest peer once
    ``iwant_followup_time`` passes), and IDONTWANT names what the other side does not know.
    With ``msg_id: "go"`` js names messages as we do and the promise is kept."""
    with trio.fail_after(60):
        gossip: dict[str, Any] = {"msg_id": "go"} if js_msg_id == "go" else {}
        js = await js_peer_factory("/interop/no-dht/1.0.0", gossipsub=gossip)
        js_id = PeerId.from_base58(js.peer_id)
        await js.request("subscribe", topic=TOPIC)
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(Node.open(_node_config()))
            b = await stack.enter_async_context(Node.open(
                NodeConfig.peer(gossip=GossipConfig(flood_publish=False))
            ))
            a_in = await stack.enter_async_context(a.subscribe(TOPIC))
            await a.connect(js.addrs[0])
            await b.connect(js.addrs[0])
            await wait_topic_peer(a, TOPIC, js_id)
            await wait_mesh(a, TOPIC, js_id)
            await js.request("wait_topic_peers", topic=TOPIC, peers=[str(a.peer_id)], mesh=True)
            async with b.subscribe(TOPIC):
                await wait_topic_peer(b, TOPIC, js_id)
                await wait_mesh(b, TOPIC, js_id)
                start = len(js.events)
            # js must have taken b's PRUNE before b joins again: otherwise js may still list b
            # in its mesh when asked below (a race the CI once lost).
            await js.wait_event(
                lambda e: e.get("event") == "prune" and e["topic"] == TOPIC
                and e["direction"] == "inbound" and e["peer"] == str(b.peer_id),
                timeout=5, start=start,
            )
            async with b.subscribe(TOPIC) as b_in:
                left = trio.current_time()
                await js.request("wait_topic_peers", topic=TOPIC, peers=[str(b.peer_id)])
                assert str(b.peer_id) not in (await js.request("mesh_peers", topic=TOPIC))["peers"]

                # js -> b: js forwards a's message to its mesh (a, the source, only) and
                # announces it to b in its next heartbeat's IHAVE.
                msg_id = await a.publish(TOPIC, b"gossiped to b")
                msg = await b_in.receive()
                assert (msg.data, msg.from_peer, msg.received_from, msg.msg_id) == \
                    (b"gossiped to b", a.peer_id, js_id, msg_id)
                assert b.topic_stats(TOPIC).ihave_received >= 1
                assert b.stats()["gossip_iwant_sent"] >= 1
                js_named = bytes.fromhex(
                    (await _js_receives(js, b"gossiped to b", str(a.peer_id)))["msg_id"]
                )
                if js_msg_id == "go":
                    assert js_named == msg_id
                    assert b._core.gossip.promises == {}
                else:  # the id js announced: a's public key protobuf + seqno
                    assert js_named == a.peer_id.public_key() + msg.seqno != msg_id
                    assert list(b._core.gossip.promises) == [js_named]  # never kept

                # b -> js: b's IHAVE, js's IWANT, then js forwards it to a (its mesh).
                msg_id = await b.publish(TOPIC, b"gossiped by b")
                msg = await a_in.receive()
                while msg.data != b"gossiped by b":  # skip a's own message
                    msg = await a_in.receive()
                assert (msg.from_peer, msg.received_from, msg.msg_id) == (b.peer_id, js_id, msg_id)
                at_js = await _js_receives(js, b"gossiped by b", str(b.peer_id))
                assert at_js["received_from"] == str(b.peer_id)
                stats = b.topic_stats(TOPIC)
                assert stats.ihave_sent >= 1 and stats.iwant_received >= 1
                assert b.mesh_peers(TOPIC) == []
                assert trio.current_time() - left < 10  # all of it inside the backoff
