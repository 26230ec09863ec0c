"""Gossipsub RPCs <-> protobuf bytes (py-libp2p's copy of go-libp2p-pubsub's ``rpc.proto``).

IDONTWANT is field 5 of ``ControlMessage`` there, as in the v1.2 spec. Fields we do not use
(v1.3 extensions, sender records) are ignored on input and never written. Anything that does not
parse, exceeds the size limit, or carries a message with other than exactly one topic raises
:class:`~micronetwork.errors.RemoteProtocolError`.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError
from libp2p.pubsub.pb import rpc_pb2 as pb

from ..errors import RemoteProtocolError
from .messages import (
    RPC,
    Control,
    Graft,
    IDontWant,
    IHave,
    IWant,
    PeerExchange,
    Prune,
    PubMessage,
    SubOpts,
)

__all__ = ["decode_rpc", "encode_rpc", "message_to_pb", "signing_bytes"]

SIGN_PREFIX = b"libp2p-pubsub:"


def message_to_pb(msg: PubMessage, out: pb.Message, *, signed_fields: bool = True) -> None:
    if msg.from_peer:
        out.from_id = msg.from_peer
    if msg.data:
        out.data = msg.data
    if msg.seqno:
        out.seqno = msg.seqno
    out.topicIDs.append(msg.topic)
    if signed_fields:
        if msg.signature:
            out.signature = msg.signature
        if msg.key:
            out.key = msg.key


def signing_bytes(msg: PubMessage) -> bytes:
    """What a libp2p pubsub signature covers: the prefix + the message without signature/key."""
    m = pb.Message()
    message_to_pb(msg, m, signed_fields=False)
    return SIGN_PREFIX + m.SerializeToString()


def encode_rpc(rpc: RPC) -> bytes:
    r = pb.RPC()
    for s in rpc.subscriptions:
        r.subscriptions.add(subscribe=s.subscribe, topicid=s.topic)
    for msg in rpc.publish:
        message_to_pb(msg, r.publish.add())
    c = rpc.control
    if c:
        ctl = r.control
        for ih in c.ihave:
            ctl.ihave.add(topicID=ih.topic, messageIDs=ih.message_ids)
        for iw in c.iwant:
            ctl.iwant.add(messageIDs=iw.message_ids)
        for g in c.graft:
            ctl.graft.add(topicID=g.topic)
        for p in c.prune:
            pp = ctl.prune.add(topicID=p.topic)
            if p.backoff:
                pp.backoff = p.backoff
            for px in p.peers:
                info = pp.peers.add(peerID=px.peer_id)
                if px.signed_peer_record:
                    info.signedPeerRecord = px.signed_peer_record
        for idw in c.idontwant:
            ctl.idontwant.add(messageIDs=idw.message_ids)
    return bytes(r.SerializeToString())


def _message_from_pb(m: pb.Message) -> PubMessage:
    if len(m.topicIDs) != 1:
        raise RemoteProtocolError(f"message with {len(m.topicIDs)} topics (need exactly one)")
    return PubMessage(
        topic=m.topicIDs[0],
        data=bytes(m.data),
        from_peer=bytes(m.from_id),
        seqno=bytes(m.seqno),
        signature=bytes(m.signature),
        key=bytes(m.key),
    )


def decode_rpc(data: bytes, max_size: int = 1 << 20) -> RPC:
    if len(data) > max_size:
        raise RemoteProtocolError(f"RPC of {len(data)} bytes exceeds {max_size}")
    r = pb.RPC()
    try:
        r.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise RemoteProtocolError(f"undecodable gossipsub RPC: {exc}") from exc
    control = None
    if r.HasField("control"):
        c = r.control
        control = Control(
            ihave=tuple(IHave(i.topicID, tuple(bytes(x) for x in i.messageIDs)) for i in c.ihave),
            iwant=tuple(IWant(tuple(bytes(x) for x in i.messageIDs)) for i in c.iwant),
            graft=tuple(Graft(g.topicID) for g in c.graft),
            prune=tuple(
                Prune(
                    p.topicID,
                    tuple(
                        PeerExchange(bytes(x.peerID), bytes(x.signedPeerRecord)) for x in p.peers
                    ),
                    p.backoff,
                )
                for p in c.prune
            ),
            idontwant=tuple(IDontWant(tuple(bytes(x) for x in i.messageIDs)) for i in c.idontwant),
        )
    return RPC(
        subscriptions=tuple(SubOpts(s.subscribe, s.topicid) for s in r.subscriptions),
        publish=tuple(_message_from_pb(m) for m in r.publish),
        control=control,
    )
