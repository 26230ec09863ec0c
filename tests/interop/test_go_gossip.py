"""Gossipsub interop with go-libp2p: the daemon (``p2pd -pubsub``, go-libp2p-pubsub's
GossipSub, StrictSign) from the hivemind wheel.

This p2pd speaks /meshsub/1.1.0, /meshsub/1.0.0 and /floodsub/1.0.0 (no 1.2.0), so our nodes
talk 1.1.0 to it. Its control API shows subscriptions (LIST_PEERS per topic) but not its mesh:
that go grafted us shows as forwarding, go relaying a message between two of our nodes that
are not connected to each other, eagerly (a mesh push, no IHAVE/IWANT).
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import multiaddr
import pytest
import trio

pytest.importorskip("micronetwork", reason="micronetwork is not installed (pip install -e .)")

from micronetwork import Node, NodeConfig, PeerId
from micronetwork.gossip import PROTOCOL_V11, GossipConfig

from .pubsub_helpers import verify_signed, wait_mesh, wait_topic_peer

TOPIC = "interop/go"
PUBSUB = ("-pubsub", "-pubsubRouter=gossipsub")


def _transport(node: Node) -> bytes:
    return bytes(multiaddr.Multiaddr(node.addrs[0].split("/p2p/")[0]).to_bytes())


@pytest.mark.parametrize("we_dial", [True, False], ids=["we-dial", "go-dials"])
async def test_subscriptions_mesh_and_messages_both_ways(p2pd_factory, we_dial: bool) -> None:
    with trio.fail_after(60):
        daemon = await p2pd_factory(dht_mode="none", extra_args=PUBSUB)
        go_id = PeerId.from_base58(daemon.peer_id)
        async with Node.open(NodeConfig.peer()) as node, \
                daemon.pubsub_subscribe(TOPIC) as go_inbox, node.subscribe(TOPIC) as inbox:
            assert await daemon.pubsub_topics() == [TOPIC]
            if we_dial:
                await node.connect(f"{daemon.addrs[0]}/p2p/{daemon.peer_id}")
            else:
                await daemon.connect(bytes(node.peer_id), [_transport(node)])

            # Subscriptions both ways; the stream speaks 1.1.0.
            await wait_topic_peer(node, TOPIC, go_id)
            assert node.topic_peers(TOPIC) == [go_id]
            assert await daemon.wait_pubsub_peers(TOPIC, [node.peer_id.to_base58()]) == \
                [bytes(node.peer_id)]
            assert node._core.gossip.peers[go_id].protocol == PROTOCOL_V11
            await wait_mesh(node, TOPIC, go_id)

            # Ours -> go: go verified the signature before delivering; we check what it saw.
            for i in range(3):
                data = b"from micronetwork %d" % i
                msg_id = await node.publish(TOPIC, data)
                got = await go_inbox.receive()
                assert (got.data, got.from_id, got.topics) == (data, bytes(node.peer_id), [TOPIC])
                assert msg_id == got.from_id + got.seqno
                assert got.key == b""  # Ed25519: the key is inlined in the id, never sent
                verify_signed(TOPIC, data, node.peer_id, got.seqno, got.signature)
                own = await inbox.receive()
                assert (own.data, own.from_peer) == (data, node.peer_id)

            # go -> ours. go delivers its own publications to its subscription too.
            for i in range(3):
                data = b"from go %d" % i
                await daemon.pubsub_publish(TOPIC, data)
                msg = await inbox.receive()
                assert (msg.topic, msg.data, msg.from_peer, msg.received_from) == \
                    (TOPIC, data, go_id, go_id)
                mine = await go_inbox.receive()
                assert (mine.data, mine.from_id, mine.seqno) == (data, bytes(go_id), msg.seqno)
                verify_signed(TOPIC, data, go_id, mine.seqno, mine.signature, mine.key)
                assert msg.msg_id == bytes(go_id) + msg.seqno  # go's default id is ours

            stats = node.topic_stats(TOPIC)
            assert (stats.published, stats.delivered, stats.invalid) == (3, 6, 0)
            assert (stats.peers, stats.mesh) == (1, 1)
            assert node.stats().get("gossip_rpcs_dropped_by_driver", 0) == 0
        # We unsubscribed and left: go forgets our subscription.
        with trio.fail_after(10):
            while await daemon.pubsub_peers(TOPIC):
                await trio.sleep(0.02)


async def test_go_forwards_between_our_nodes_in_its_mesh(p2pd_factory) -> None:
    """a - go - b, a and b not connected: each one's messages reach the other through go,
    which verified the author's signature and forwarded it unchanged, pushed at once through its
    mesh (our side asked for nothing with IWANT). And we forward go's messages to each other."""
    with trio.fail_after(90):
        daemon = await p2pd_factory(dht_mode="none", extra_args=PUBSUB)
        go_id = PeerId.from_base58(daemon.peer_id)
        go_addr = f"{daemon.addrs[0]}/p2p/{daemon.peer_id}"
        async with AsyncExitStack() as stack:
            go_inbox = await stack.enter_async_context(daemon.pubsub_subscribe(TOPIC))
            a = await stack.enter_async_context(Node.open(NodeConfig.peer()))
            b = await stack.enter_async_context(Node.open(NodeConfig.peer()))
            a_in = await stack.enter_async_context(a.subscribe(TOPIC))
            b_in = await stack.enter_async_context(b.subscribe(TOPIC))
            await a.connect(go_addr)
            await b.connect(go_addr)
            for node in (a, b):
                await wait_topic_peer(node, TOPIC, go_id)
                await wait_mesh(node, TOPIC, go_id)
            await daemon.wait_pubsub_peers(TOPIC, [a.peer_id.to_base58(), b.peer_id.to_base58()])
            for node in (a, b):  # our GRAFTs are written (go's mesh is not visible to wait on)
                await node._driver.streams.flush()

            for src, src_in, dst_in in ((a, a_in, b_in), (b, b_in, a_in)):
                data = b"via go from %s" % src.peer_id.to_base58().encode()
                msg_id = await src.publish(TOPIC, data)
                assert (await src_in.receive()).data == data  # our own, locally
                msg = await dst_in.receive()
                assert (msg.data, msg.from_peer, msg.received_from, msg.msg_id) == \
                    (data, src.peer_id, go_id, msg_id)
                got = await go_inbox.receive()
                assert (got.data, got.from_id) == (data, bytes(src.peer_id))
                verify_signed(TOPIC, data, src.peer_id, got.seqno, got.signature)

            # go's own message reaches both (directly: both are in its mesh).
            await daemon.pubsub_publish(TOPIC, b"from go")
            for inbox in (a_in, b_in):
                msg = await inbox.receive()
                assert (msg.data, msg.from_peer, msg.received_from) == (b"from go", go_id, go_id)
            assert (await go_inbox.receive()).data == b"from go"

            assert set(a.peers()) == {go_id} and set(b.peers()) == {go_id}
            for node in (a, b):
                stats = node.topic_stats(TOPIC)
                assert (stats.invalid, stats.iwant_sent) == (0, 0)  # pushed, not pulled
                assert stats.delivered == 3


async def test_ihave_iwant_both_ways(p2pd_factory) -> None:
    """Gossip proper: b is subscribed but in nobody's mesh, so messages reach it, and leave it,
    only as IHAVE -> IWANT -> message. To get there b joins, leaves (its PRUNE carries a 10 s
    backoff, which go honours and b keeps too) and joins again: for 10 s nobody grafts. b does
    not flood-publish, so its own message goes out as an IHAVE too."""
    with trio.fail_after(60):
        daemon = await p2pd_factory(dht_mode="none", extra_args=PUBSUB)
        go_id = PeerId.from_base58(daemon.peer_id)
        go_addr = f"{daemon.addrs[0]}/p2p/{daemon.peer_id}"
        async with AsyncExitStack() as stack:
            go_inbox = await stack.enter_async_context(daemon.pubsub_subscribe(TOPIC))
            a = await stack.enter_async_context(Node.open(NodeConfig.peer()))
            b = await stack.enter_async_context(
                Node.open(NodeConfig.peer(gossip=GossipConfig(flood_publish=False)))
            )
            a_in = await stack.enter_async_context(a.subscribe(TOPIC))
            await a.connect(go_addr)
            await b.connect(go_addr)
            await wait_topic_peer(a, TOPIC, go_id)
            await wait_mesh(a, TOPIC, go_id)
            async with b.subscribe(TOPIC):
                await wait_topic_peer(b, TOPIC, go_id)
                await wait_mesh(b, TOPIC, go_id)
            async with b.subscribe(TOPIC) as b_in:
                left = trio.current_time()
                await daemon.wait_pubsub_peers(TOPIC, [b.peer_id.to_base58()])
                assert b.mesh_peers(TOPIC) == []

                # go -> b: go forwards a's message to its mesh (a is the source; b is not in
                # it) and announces it to b in its next heartbeat's IHAVE.
                msg_id = await a.publish(TOPIC, b"gossiped to b")
                msg = await b_in.receive()
                assert (msg.data, msg.from_peer, msg.received_from, msg.msg_id) == \
                    (b"gossiped to b", a.peer_id, go_id, msg_id)
                assert b.topic_stats(TOPIC).ihave_received >= 1
                assert b.stats()["gossip_iwant_sent"] >= 1  # (IWANT names no topic)
                assert b._core.gossip.promises == {}  # kept: the id go announced is ours

                # b -> go: b's IHAVE, go's IWANT (with our id for it: go's ids are ours).
                msg_id = await b.publish(TOPIC, b"gossiped by b")
                msg = await a_in.receive()
                while msg.data != b"gossiped by b":  # skip a's own message
                    msg = await a_in.receive()
                assert (msg.from_peer, msg.received_from, msg.msg_id) == (b.peer_id, go_id, msg_id)
                stats = b.topic_stats(TOPIC)
                assert stats.ihave_sent >= 1 and stats.iwant_received >= 1
                assert b.mesh_peers(TOPIC) == []
                assert trio.current_time() - left < 10  # all of it inside the backoff
            got = [await go_inbox.receive() for _ in range(2)]
            assert [m.data for m in got] == [b"gossiped to b", b"gossiped by b"]
