"""Waiting on our node's gossipsub state, and checking signatures, for the gossip interop tests.

Subscriptions are waited for on the node's events (``PeerSubscribed`` reaches ``node.events()``);
the mesh has no event, so :func:`wait_mesh` polls with short checkpoints (callers bound it).
"""

from __future__ import annotations

import trio

from micronetwork import Node, PeerId
from micronetwork.gossip import PubMessage, verify_message

MESH_POLL = 0.01


async def wait_topic_peer(node: Node, topic: str, peer: PeerId) -> None:
    """Until ``peer``'s subscription to ``topic`` has reached ``node``."""
    async with node.events() as events:
        # Opened before the check: a subscription arriving in between is not missed.
        while peer not in node.topic_peers(topic):
            await events.receive()  # any event may be the PeerSubscribed we wait for


async def wait_mesh(node: Node, topic: str, peer: PeerId) -> None:
    """Until ``peer`` is in ``node``'s mesh for ``topic`` (grafts have no event: polled)."""
    while peer not in node.mesh_peers(topic):
        await trio.sleep(MESH_POLL)


def verify_signed(topic: str, data: bytes, author: PeerId, seqno: bytes, signature: bytes,
                  key: bytes = b"") -> PubMessage:
    """Check a message's StrictSign signature with our verifier (raises SignatureError)."""
    msg = PubMessage(topic, data, bytes(author), seqno, signature, key)
    verify_message(msg)
    return msg
