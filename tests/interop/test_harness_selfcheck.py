"""The harness itself, without micronetwork: js-libp2p and go-libp2p peers talking to each other.

If these fail, an interop failure elsewhere says nothing about our library.
"""

from __future__ import annotations

import base58
import pytest
import trio

from .jspeer import IPFS_KAD, MN_KAD
from .keys import (
    IDENTITY,
    Ed25519Identity,
    cid_v1_bytes,
    cid_v1_string,
    multihash,
    sha256_multihash,
    strip_p2p,
)
from .p2pd import P2pdError

SEED_A = bytes(range(32))
SEED_B = bytes(range(1, 33))


async def test_js_peer_identity_and_cid_mapping(js_peer_factory) -> None:
    with trio.fail_after(30):
        ident = Ed25519Identity(SEED_A)
        by_seed = await js_peer_factory(seed=SEED_A)
        by_key = await js_peer_factory(identity=Ed25519Identity(SEED_B))
        assert by_seed.peer_id == ident.peer_id
        assert by_key.peer_id == Ed25519Identity(SEED_B).peer_id
        assert all(a.startswith("/ip4/127.0.0.1/tcp/") for a in by_seed.addrs)
        assert MN_KAD in by_seed.protocols and by_seed.dht_protocol == MN_KAD
        info = await by_seed.request("info")
        assert info["mode"] == "server"

        # A CID's DHT key is its multihash: data -> CIDv1(raw, sha2-256(data)).
        answer = await by_seed.request("cid_key", data=b"hello".hex())
        mh = sha256_multihash(b"hello")
        assert answer == {**answer, "dht_key": mh.hex(), "cid": cid_v1_string(mh)}
        # The same multihash as a CIDv0 (base58 "Qm...") maps to the same key.
        v0 = base58.b58encode(mh).decode()
        assert (await by_seed.request("cid_key", cid=v0))["dht_key"] == mh.hex()
        assert (await by_seed.request("cid_key", key=mh.hex()))["dht_key"] == mh.hex()
        bad = await by_seed.call("cid_key", key=b"not a multihash".hex())
        assert not bad["ok"] and "not a multihash" in bad["error"]


async def test_two_js_peers_dht(js_peer_factory) -> None:
    """a -- hub -- b: a and b find each other, store and fetch values and provider records."""
    with trio.fail_after(60):
        hub = await js_peer_factory()
        a = await js_peer_factory()
        b = await js_peer_factory()
        for p in (a, b):
            assert (await p.request("dial", addr=hub.addrs[0]))["peer"] == hub.peer_id
        # Routing tables fill after identify (lists the DHT protocol) and a libp2p ping.
        await hub.request("wait_routing_table", peers=[a.peer_id, b.peer_id])
        await a.request("wait_routing_table", peers=[hub.peer_id])
        await b.request("wait_routing_table", peers=[hub.peer_id])

        # FIND_NODE through the hub, both ways (use_cache=false: always over the network).
        found = await a.request("find_peer", peer=b.peer_id)
        assert strip_p2p(b.addrs[0]) in [strip_p2p(x) for x in found["addrs"]]
        found = await b.request("find_peer", peer=a.peer_id)
        assert strip_p2p(a.addrs[0]) in [strip_p2p(x) for x in found["addrs"]]
        closest = await a.request("closest_peers", key=b"some key".hex())
        assert {hub.peer_id, b.peer_id} <= set(closest["peers"])

        # Values: the standard /pk namespace and micronetwork's /mn (binary key, any value).
        ident = Ed25519Identity(SEED_A)
        stored = await a.request("put", key=ident.pk_key.hex(), value=ident.public_key.hex())
        assert stored["stored_at"]
        got = await b.request("get", key=ident.pk_key.hex())
        assert bytes.fromhex(got["value"]) == ident.public_key
        mn_key = b"/mn/\xff\x00 binary key"
        await b.request("put", key=mn_key.hex(), value=b"\x80 from b".hex())
        got = await a.request("get", key=mn_key.hex())
        assert bytes.fromhex(got["value"]) == b"\x80 from b"

        # Provider records, by data (CIDv1 raw sha2-256) and by CID string.
        provided = await a.request("provide", data=b"content of a".hex())
        assert provided["dht_key"] == sha256_multihash(b"content of a").hex()
        assert hub.peer_id in provided["sent_to"]
        answer = await b.request("find_providers", data=b"content of a".hex())
        assert [p["peer"] for p in answer["providers"]] == [a.peer_id]
        cid = cid_v1_string(sha256_multihash(b"content of b"))
        await b.request("provide_cid", cid=cid)
        answer = await a.request("find_providers_cid", cid=cid)
        assert [p["peer"] for p in answer["providers"]] == [b.peer_id]
        assert answer["providers"][0]["addrs"]  # loopback addresses kept (passthroughMapper)

        # js servers keep only provider keys that decode as a CID (a sha2-256 multihash): an
        # identity-multihash record is dropped by the hub, though a's provide "succeeds".
        identity_mh = multihash(IDENTITY, b"hello")
        assert (await a.request("provide", key=identity_mh.hex()))["sent_to"]
        assert (await b.request("find_providers", key=identity_mh.hex()))["providers"] == []


async def test_p2pd_control_api(p2pd_factory) -> None:
    with trio.fail_after(30):
        ident = Ed25519Identity(SEED_A)
        d1 = await p2pd_factory(identity=ident)
        d2 = await p2pd_factory()
        assert d1.peer_id == ident.peer_id
        assert all(a.startswith("/ip4/127.0.0.1/tcp/") for a in d1.addrs)
        await d2.connect(d1.peer_id, d1.addrs)
        assert d1.peer_id_bytes in await d2.list_peers()
        assert 0 <= await d2.ping(d1.peer_id) < 5
        assert 0 <= await d1.ping(d2.peer_id) < 5
        assert (await d2.find_peer(d1.peer_id)).addr_strs == d1.addrs
        assert await d2.get_public_key(d1.peer_id) == ident.public_key


async def test_js_and_p2pd_connect_ping_identify(js_peer_factory, p2pd_factory) -> None:
    with trio.fail_after(40):
        daemon = await p2pd_factory()
        js = await js_peer_factory(IPFS_KAD)
        # js dials go.
        assert (await js.request("dial", addr=daemon.p2p_addrs[0]))["peer"] == daemon.peer_id
        assert (await js.request("ping", peer=daemon.peer_id))["rtt"] >= 0
        ident = await js.request("identify", peer=daemon.peer_id)
        assert {IPFS_KAD, "/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"} <= set(ident["protocols"])
        assert ident["agent"].startswith("p2pd/")
        assert [strip_p2p(a) for a in ident["listen_addrs"]] == daemon.addrs
        assert js.peer_id in [p.peer_id for p in await daemon.peers()]
        assert await daemon.ping(js.peer_id) >= 0
        # go dials js.
        other = await js_peer_factory(IPFS_KAD)
        await daemon.connect(other.peer_id, [strip_p2p(other.addrs[0])])
        assert daemon.peer_id in (await other.request("peers"))["peers"]
        assert await daemon.ping(other.peer_id) >= 0
        ident = await other.request("identify", peer=daemon.peer_id)
        assert IPFS_KAD in ident["protocols"]


async def test_js_and_p2pd_dht(js_peer_factory, p2pd_factory) -> None:
    """js_a -- go -- js_b on /ipfs/kad/1.0.0: lookups, /pk values and providers through go."""
    with trio.fail_after(60):
        go = await p2pd_factory()
        js_a = await js_peer_factory(IPFS_KAD)
        js_b = await js_peer_factory(IPFS_KAD)
        for js in (js_a, js_b):
            await js.request("dial", addr=go.p2p_addrs[0])
            await js.request("wait_routing_table", peers=[go.peer_id])

        # go adds the js peers to its table after identify + a FIND_NODE check (polled: the
        # control API reports no table changes).
        await go.wait_routing_table([js_a.peer_id, js_b.peer_id])

        found = await js_a.request("find_peer", peer=js_b.peer_id)
        assert strip_p2p(js_b.addrs[0]) in [strip_p2p(x) for x in found["addrs"]]
        # js_a knows of js_b only through go: from go's answer, or (when js_a's own table
        # refresh already met js_b through go, as happened on a busy machine) from js_b.
        assert found["from"] in (go.peer_id, js_b.peer_id)
        # go looks up a peer it is not connected to, through js_a.
        go2 = await p2pd_factory()
        await go2.connect(js_a.peer_id, [strip_p2p(js_a.addrs[0])])
        await go2.wait_routing_table([js_a.peer_id])
        info = await go2.find_peer(js_b.peer_id)
        assert strip_p2p(js_b.addrs[0]) in info.addr_strs

        # /pk values, both directions (go accepts only /pk and /ipns keys).
        ident = Ed25519Identity(SEED_B)
        await go.put_value(ident.pk_key, ident.public_key)
        got = await js_b.request("get", key=ident.pk_key.hex())
        assert bytes.fromhex(got["value"]) == ident.public_key
        ident2 = Ed25519Identity(SEED_A)
        await js_a.request("put", key=ident2.pk_key.hex(), value=ident2.public_key.hex())
        assert await go2.get_value(ident2.pk_key) == ident2.public_key

        with pytest.raises(P2pdError, match="invalid record keytype"):
            await go.put_value(b"/mn/key", b"value")

        # Providers: js provides a CID, go finds it (the DHT key is the multihash on both) ...
        mh = sha256_multihash(b"js content")
        await js_a.request("provide", key=mh.hex())
        providers = await go2.find_providers(cid_v1_bytes(mh), count=1)
        assert [p.peer_id for p in providers] == [js_a.peer_id]
        # ... and go provides, js finds it, with go's 127.0.0.1 address.
        mh = sha256_multihash(b"go content")
        await go.provide(cid_v1_bytes(mh))
        answer = await js_b.request("find_providers", key=mh.hex(), count=1)
        assert [p["peer"] for p in answer["providers"]] == [go.peer_id]
        assert go.addrs[0] in [strip_p2p(x) for x in answer["providers"][0]["addrs"]]

