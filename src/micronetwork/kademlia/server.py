"""The server side of Kademlia: how a node answers each request type (no I/O).

FIND_NODE, GET_VALUE and GET_PROVIDERS answer with the ``k`` closest peers we know (never the
requester itself); GET_VALUE adds our record, GET_PROVIDERS our provider records. PUT_VALUE
stores a record its namespace's validator accepts (else :class:`ValidationError`, which the
core counts and answers by closing) and echoes it, as libp2p does. ADD_PROVIDER stores only
entries a peer makes for itself and has no answer. PING is echoed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ValidationError
from ..identity.peerid import PeerId
from .keyspace import kad_key
from .messages import KadMessage, MessageType, PeerInfo, Record

if TYPE_CHECKING:
    from .protocol import KademliaCore

__all__ = ["answer", "closer_peers"]

_INFOS: dict[PeerId, PeerInfo] = {}
_INFOS_MAX = 1 << 21


def _peer_info(peer: PeerId, addrs: tuple[bytes, ...]) -> PeerInfo:
    """``PeerInfo(peer, addrs)``, memoised: every answer carries k of them and building a
    frozen dataclass costs more than a dict lookup. A pure cache of immutable values."""
    info = _INFOS.get(peer)
    if info is None or info.addrs != addrs:
        if len(_INFOS) >= _INFOS_MAX:
            _INFOS.clear()
        info = _INFOS[peer] = PeerInfo(peer, addrs)
    return info


def closer_peers(core: KademliaCore, key: bytes, exclude: PeerId) -> tuple[PeerInfo, ...]:
    entries = core.table.closest(kad_key(key), core.config.k, exclude=exclude)
    return tuple([_peer_info(e.peer_id, e.addrs) for e in entries])


def answer(core: KademliaCore, peer: PeerId, msg: KadMessage, now: float) -> KadMessage | None:
    """The answer to ``msg`` from ``peer``; None closes the stream without one."""
    t = msg.type
    if t is MessageType.FIND_NODE:
        return KadMessage(t, key=msg.key, closer_peers=closer_peers(core, msg.key, peer))
    if t is MessageType.GET_VALUE:
        value = core.records.get(msg.key, now)
        record = Record(msg.key, value) if value is not None else None
        closer = closer_peers(core, msg.key, peer)
        return KadMessage(t, key=msg.key, record=record, closer_peers=closer)
    if t is MessageType.PUT_VALUE:
        rec = msg.record
        if rec is None or rec.key != msg.key:
            raise ValidationError("PUT_VALUE record key differs from the message key")
        core.records.put(rec.key, rec.value, now)
        core.counters["records_stored"] += 1
        return msg
    if t is MessageType.ADD_PROVIDER:
        for info in msg.provider_peers:
            if info.peer_id == peer:  # only a peer may announce itself
                if core.providers.add(msg.key, peer, info.addrs, now):
                    core.counters["providers_stored"] += 1
            else:
                core.counters["providers_rejected"] += 1
        return None
    if t is MessageType.GET_PROVIDERS:
        provs = tuple(PeerInfo(p, a) for p, a in core.providers.get(msg.key, now))
        closer = closer_peers(core, msg.key, peer)
        return KadMessage(t, key=msg.key, provider_peers=provs, closer_peers=closer)
    return KadMessage(MessageType.PING)
