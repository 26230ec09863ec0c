"""A node in its own OS process, driven by JSON lines on stdin (for integration tests).

Prints ``{"event": "ready", "peer_id": ..., "addrs": [...]}`` once up, then one line per
command answer (``{"id": N, "ok": ..., ...}``) and per peer event
(``{"event": "peer_added"|"peer_removed", "peer": ...}``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import trio

from micronetwork import Node, NodeConfig, PeerAdded, PeerRemoved
from micronetwork.errors import MicronetworkError
from micronetwork.identity.envelope import seal
from micronetwork.identity.keys import KeyPair
from micronetwork.identity.peerid import PeerId
from micronetwork.registry import Registration, RegistryConfig, service_topic
from micronetwork.service import CallContext, Service

# Short registry timings so expiry tests take seconds (MN_TEST_TTL / MN_TEST_ANNOUNCE).
TTL = float(os.environ.get("MN_TEST_TTL", "20"))
ANNOUNCE = float(os.environ.get("MN_TEST_ANNOUNCE", "10"))


def echo_service(version: str) -> Service:
    svc = Service("echo", version=version)

    @svc.endpoint(idempotent=True)
    async def echo(text: str, ctx: CallContext) -> dict[str, str]:
        """Answer with the text and who answered."""
        return {"text": text, "by": NODE_ID[0]}

    return svc


NODE_ID = [""]


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def on_event(ev: object) -> None:
    if isinstance(ev, PeerAdded):
        emit({"event": "peer_added", "peer": str(ev.peer_id)})
    elif isinstance(ev, PeerRemoved):
        emit({"event": "peer_removed", "peer": str(ev.peer_id), "reason": ev.reason})


async def handle(node: Node, cmd: dict[str, Any]) -> dict[str, Any]:
    op = cmd["cmd"]
    if op == "find_peer":
        peer = await node.find_peer(cmd["peer"], timeout=15)
        return {"addrs": list(peer.addrs)}
    if op == "put":
        return {"stored": await node.put(bytes.fromhex(cmd["key"]), bytes.fromhex(cmd["value"]))}
    if op == "get":
        return {"value": (await node.get(bytes.fromhex(cmd["key"]))).hex()}
    if op == "provide":
        return {"sent": await node.provide(bytes.fromhex(cmd["key"]))}
    if op == "find_providers":
        provs = await node.find_providers(bytes.fromhex(cmd["key"]))
        return {"providers": [str(p.peer_id) for p in provs]}
    if op == "routing_table":
        return {"peers": [str(e.peer_id) for e in node.routing_table()]}
    if op == "stats":
        return {"stats": node.stats()}
    if op == "serve":
        await node.serve(echo_service(cmd.get("version", "1.0.0")))
        return {}
    if op == "services_get":
        found = await node.registry.get(cmd["name"], cmd.get("version"))
        return {"instances": [str(i.peer) for i in found]}
    if op == "publish":
        ev = await node.broker.publish(cmd["topic"], cmd["data"].encode(),
                                       retained=cmd.get("retained", False))
        return {"seq": ev.seq}
    if op == "call":
        answer = await node.client.call(cmd["service"], cmd["endpoint"], cmd.get("body"))
        return {"answer": answer}
    if op == "forge":
        return await forge(node, cmd)
    raise ValueError(f"unknown command {op}")


async def forge(node: Node, cmd: dict[str, Any]) -> dict[str, Any]:
    """Publish forged registrations of ``name`` on its registry topic, as a malicious node
    would: one naming ``claim`` (another node) as the server but signed with this node's key,
    one naming this node but signed with a key that is not its own. Waits (bounded by
    ``timeout``) until ``to`` (the watcher) is subscribed to the topic here, so the gossip
    reaches it; the registry layer is bypassed (it would refuse to sign such records)."""
    name, version = cmd["name"], cmd.get("version", "6.6.6")
    topic = service_topic(name)
    gossip = node._core.gossip
    gossip.subscribe(topic, node._driver.now())
    node._driver.pump()
    to = PeerId.from_base58(cmd["to"])
    with trio.fail_after(cmd.get("timeout", 15.0)):
        while to not in node.topic_peers(topic):
            await trio.sleep(0.02)  # no event for a peer's subscription here: poll, bounded
    desc = echo_service(version).describe()
    wrong_key = KeyPair.from_seed(os.urandom(32))
    records = [
        # names the victim, signed by us: only the node a record names may sign it
        (Registration(desc, PeerId.from_base58(cmd["claim"]), (), 1 << 60, TTL), node.key),
        # names us, signed by a stranger's key
        (Registration(desc, node.peer_id, (), 1 << 60, TTL), wrong_key),
    ]
    for reg, key in records:
        data = seal(key, "micronetwork-registry", b"/micronetwork/registry/1", reg.to_wire())
        gossip.publish(topic, data, node._driver.now())
    node._driver.pump()
    return {"published": len(records)}


async def main() -> None:
    role = sys.argv[1]
    bootstrap = tuple(sys.argv[2:])
    factory = NodeConfig.super_node if role == "super" else NodeConfig.peer
    registry = RegistryConfig(ttl=TTL, announce_interval=ANNOUNCE,
                              catalog_subscribe=role == "super")
    extra: dict[str, Any] = {}
    if os.environ.get("MN_TEST_DATA_DIR"):
        extra["data_dir"] = os.environ["MN_TEST_DATA_DIR"]
    if os.environ.get("MN_TEST_KEY_SEED"):
        extra["key_seed"] = bytes.fromhex(os.environ["MN_TEST_KEY_SEED"])
    if os.environ.get("MN_TEST_LISTEN"):
        extra["listen"] = (os.environ["MN_TEST_LISTEN"],)
    async with Node.open(factory(bootstrap=bootstrap, registry=registry, **extra)) as node:
        NODE_ID[0] = str(node.peer_id)
        node.on_peer_event(on_event)
        emit({"event": "ready", "peer_id": str(node.peer_id), "addrs": node.addrs})
        stdin = trio.wrap_file(sys.stdin)
        async with trio.open_nursery() as nursery:
            while True:
                line = await stdin.readline()
                if not line:
                    break
                cmd = json.loads(line)
                if cmd["cmd"] == "exit":
                    break
                nursery.start_soon(run_one, node, cmd)
            nursery.cancel_scope.cancel()


async def run_one(node: Node, cmd: dict[str, Any]) -> None:
    try:
        emit({"id": cmd["id"], "ok": True, **(await handle(node, cmd))})
    except (MicronetworkError, ValueError) as exc:
        emit({"id": cmd["id"], "ok": False, "error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    trio.run(main)
