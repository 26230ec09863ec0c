"""Interop with js-libp2p 2.10 (noise, yamux, identify, ping, kad-dht 15.1.11)."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
import trio

pytest.importorskip("micronetwork", reason="micronetwork is not installed (pip install -e .)")

from micronetwork import Node, NodeConfig, PeerId

KAD = "/micronetwork/kad/1.0.0"


async def test_connect_identify_ping_both_ways(js_peer_factory) -> None:
    with trio.fail_after(60):
        js = await js_peer_factory()
        async with Node.open() as node:
            # We dial js: Noise + yamux upgrade, identify, then js is in our routing table.
            assert await node.connect(js.addrs[0]) == PeerId.from_base58(js.peer_id)
            rtt = await node.ping(js.peer_id)
            assert 0 <= rtt < 5
            answer = await js.call("protocols", peer=str(node.peer_id))
            assert answer["ok"], answer
            assert {KAD, "/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"} <= set(answer["protocols"])
            answer = await js.call("ping", peer=str(node.peer_id))
            assert answer["ok"], answer
            assert [str(e.peer_id) for e in node.routing_table()] == [js.peer_id]

        # And js dials us.
        async with Node.open() as node:
            answer = await js.call("dial", addr=node.addrs[0])
            assert answer["ok"], answer
            assert (await js.call("ping", peer=str(node.peer_id)))["ok"]
            assert await node.ping(js.peer_id) >= 0


async def test_dht_find_node_values_and_providers_both_ways(js_peer_factory) -> None:
    with trio.fail_after(120):
        async with AsyncExitStack() as stack:
            sup = await stack.enter_async_context(Node.open(NodeConfig.super_node()))
            boot = sup.addrs[0]
            js = await js_peer_factory()
            assert (await js.call("dial", addr=boot))["ok"]
            peers = [
                await stack.enter_async_context(Node.open(NodeConfig.peer(bootstrap=(boot,))))
                for _ in range(3)
            ]
            # FIND_NODE through each other: js finds our peers, our peers find js.
            for p in peers:
                answer = await js.call("find_peer", peer=str(p.peer_id))
                assert answer["ok"], answer
                assert any(a.startswith(p.addrs[0].split("/p2p/")[0]) for a in answer["addrs"])
                found = await p.find_peer(js.peer_id)
                assert found.peer_id == PeerId.from_base58(js.peer_id) and found.addrs
            answer = await js.call("closest_peers", key=b"some key".hex())
            assert answer["ok"] and len(answer["peers"]) >= 3, answer

            # Binary /pk/ keys: our record, read by js; js's record, read by us.
            ours = peers[0]
            pk_key = b"/pk/" + bytes(ours.peer_id)
            public_key = ours.peer_id.public_key()
            assert public_key is not None
            assert await ours.put(pk_key, public_key) >= 1
            answer = await js.call("get", key=pk_key.hex())
            assert answer["ok"] and bytes.fromhex(answer["value"]) == public_key, answer
            js_id = PeerId.from_base58(js.peer_id)
            js_pk_key = b"/pk/" + bytes(js_id)
            answer = await js.call("put", key=js_pk_key.hex(), value=js_id.public_key().hex())
            assert answer["ok"], answer
            assert await peers[2].get(js_pk_key) == js_id.public_key()
            # Our own namespace with non-UTF-8 bytes in the key, both directions.
            mn_key = b"/mn/\xff\x00\x80 binary"
            answer = await js.call("put", key=mn_key.hex(), value=b"from js".hex())
            assert answer["ok"], answer
            assert await peers[1].get(mn_key) == b"from js"
            mn_key2 = b"/mn/\xfe\x01 also binary"
            assert await peers[1].put(mn_key2, b"from python") >= 1
            answer = await js.call("get", key=mn_key2.hex())
            assert answer["ok"] and bytes.fromhex(answer["value"]) == b"from python", answer

            # Provider records: js announces a CID, we find it by its multihash; and back.
            answer = await js.call("provide", data=b"js content".hex())
            assert answer["ok"], answer
            dht_key = bytes.fromhex(answer["dht_key"])
            providers = await peers[0].find_providers(dht_key)
            assert [str(p.peer_id) for p in providers] == [js.peer_id]
            # Our provide of the same multihash form: js looks it up by CID.
            our_key = bytes.fromhex(
                (await js.call("cid_key", data=b"py content".hex()))["dht_key"]
            )
            assert await peers[2].provide(our_key) >= 1
            answer = await js.call("find_providers", data=b"py content".hex())
            assert answer["ok"], answer
            assert str(peers[2].peer_id) in [p["peer"] for p in answer["providers"]]


async def test_ipfs_protocol_id_works_when_configured(js_peer_factory) -> None:
    from micronetwork import IPFS_PROTOCOL, KademliaConfig

    with trio.fail_after(60):
        js = await js_peer_factory(protocol=IPFS_PROTOCOL)
        kad = KademliaConfig(protocol_id=IPFS_PROTOCOL)
        async with Node.open(NodeConfig.peer(kademlia=kad)) as node:
            await node.connect(js.addrs[0])
            assert [str(e.peer_id) for e in node.routing_table()] == [js.peer_id]
            closest = await node.find_closest(b"anything")
            assert [str(p.peer_id) for p in closest] == [js.peer_id]
            answer = await js.call("closest_peers", key=b"anything".hex())
            assert answer["ok"] and str(node.peer_id) in answer["peers"], answer
