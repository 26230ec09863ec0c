"""Kademlia messages <-> libp2p protobuf bytes (``libp2p.kad_dht.pb``'s ``Message``).

Keys and values are bytes end to end: a ``/pk/`` key with binary multihash bytes round-trips
unchanged. Anything that does not parse, has an unknown type, or carries a malformed peer id
raises :class:`~micronetwork.errors.RemoteProtocolError`.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError
from libp2p.kad_dht.pb import kademlia_pb2 as pb

from ..errors import RemoteProtocolError
from ..identity.peerid import PeerId
from .messages import ConnectionType, KadMessage, MessageType, PeerInfo, Record

__all__ = ["decode_message", "encode_message"]

_TYPES = {t.value for t in MessageType}


def _peer_to_pb(info: PeerInfo, out: pb.Message.Peer) -> None:
    out.id = bytes(info.peer_id)
    out.addrs.extend(info.addrs)
    out.connection = int(info.connection)  # type: ignore[assignment]


def encode_message(msg: KadMessage) -> bytes:
    m = pb.Message()
    m.type = int(msg.type)  # type: ignore[assignment]
    if msg.cluster_level:
        m.clusterLevelRaw = msg.cluster_level
    if msg.key:
        m.key = msg.key
    if msg.record is not None:
        m.record.key = msg.record.key
        m.record.value = msg.record.value
        if msg.record.time_received:
            m.record.timeReceived = msg.record.time_received
    for info in msg.closer_peers:
        _peer_to_pb(info, m.closerPeers.add())
    for info in msg.provider_peers:
        _peer_to_pb(info, m.providerPeers.add())
    return m.SerializeToString()


def _peer_from_pb(p: pb.Message.Peer) -> PeerInfo:
    if len(p.id) < 2 or len(p.id) > 128:
        raise RemoteProtocolError("peer id of impossible length in a Kademlia message")
    conn = p.connection if p.connection in (0, 1, 2, 3) else 0
    return PeerInfo(PeerId(p.id), tuple(bytes(a) for a in p.addrs), ConnectionType(conn))


def decode_message(data: bytes) -> KadMessage:
    m = pb.Message()
    try:
        m.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise RemoteProtocolError(f"undecodable Kademlia message: {exc}") from exc
    if m.type not in _TYPES:
        raise RemoteProtocolError(f"unknown Kademlia message type {m.type}")
    record = None
    if m.HasField("record"):
        record = Record(bytes(m.record.key), bytes(m.record.value), m.record.timeReceived)
    return KadMessage(
        type=MessageType(m.type),
        key=bytes(m.key),
        record=record,
        closer_peers=tuple(_peer_from_pb(p) for p in m.closerPeers),
        provider_peers=tuple(_peer_from_pb(p) for p in m.providerPeers),
        cluster_level=m.clusterLevelRaw,
    )
