"""One super node and five peers, each in its own OS process on 127.0.0.1."""

from __future__ import annotations

import pytest
import trio

pytestmark = pytest.mark.integration


async def test_all_find_all_records_round_trip_and_dead_peer_evicted(cluster) -> None:
    with trio.fail_after(90):
        sup = await cluster.start("super")
        boot = sup.addrs[0]
        peers = [await cluster.start("peer", boot) for _ in range(5)]
        everyone = [sup, *peers]

        # Every peer was given only the super node's address; all find all through the DHT.
        for a in peers:
            for b in everyone:
                if a is b:
                    continue
                answer = await a.call("find_peer", peer=b.peer_id)
                assert answer["ok"], answer
                assert any(addr in b.addrs[0] for addr in answer["addrs"]), (answer, b.addrs)

        # Values (binary keys) and provider records round-trip between processes.
        key = (b"/mn/" + bytes(range(256))).hex()
        answer = await peers[0].call("put", key=key, value=b"\x00value\xff".hex())
        assert answer["ok"] and answer["stored"] >= 3, answer
        answer = await peers[4].call("get", key=key)
        assert answer == {"id": answer["id"], "ok": True, "value": b"\x00value\xff".hex()}

        pkey = b"service/greeter".hex()
        assert (await peers[1].call("provide", key=pkey))["ok"]
        answer = await peers[3].call("find_providers", key=pkey)
        assert answer["providers"] == [peers[1].peer_id]

        # A killed peer is noticed and evicted from the super node's routing table.
        table = await sup.call("routing_table")
        victim = peers[2]
        assert victim.peer_id in table["peers"]
        victim.kill()
        await victim.proc.wait()
        removed = await sup.wait_event("peer_removed", victim.peer_id)
        assert "ping failed" in removed["reason"] or "requests failed" in removed["reason"]
        table = await sup.call("routing_table")
        assert victim.peer_id not in table["peers"]
        # ...and the rest of the network still works.
        answer = await peers[0].call("find_peer", peer=peers[4].peer_id)
        assert answer["ok"], answer

        for p in everyone:
            if p is not victim:
                await p.proc.stdin.send_all(b'{"cmd": "exit"}\n')
