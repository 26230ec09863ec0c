"""What :mod:`micronetwork.node` uses around the ``Node`` class: the peer views it returns,
address and key helpers, the per-subscriber and per-query waiters, and the start-up helpers
(key, broker stores, retained logs, unwrapping the nurseries' exception groups)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import multiaddr
import trio

from .broker import SegmentStore, StoreFactory
from .config import NodeConfig
from .core import NodeCore
from .errors import MicronetworkError
from .gossip import Message
from .identity.keys import KeyPair, load_or_create_key
from .identity.peerid import PeerId
from .kademlia import PeerInfo, QueryFinished

__all__ = ["Peer", "RoutingEntry"]

log = logging.getLogger("micronetwork.node")


@dataclass(frozen=True, slots=True)
class Peer:
    """A peer and the multiaddrs it can be reached at (text form, without ``/p2p/``)."""

    peer_id: PeerId
    addrs: tuple[str, ...]

    @classmethod
    def from_info(cls, info: PeerInfo) -> Peer:
        return cls(info.peer_id, _addrs_to_text(info.addrs))


@dataclass(frozen=True, slots=True)
class RoutingEntry:
    """One row of the routing-table view."""

    peer_id: PeerId
    addrs: tuple[str, ...]
    bucket: int  # common prefix length with our key
    last_seen: float  # seconds since the entry was last heard from
    failures: int


def _addrs_to_text(addrs: tuple[bytes, ...]) -> tuple[str, ...]:
    out = []
    for a in addrs:
        try:
            out.append(str(multiaddr.Multiaddr(a)))
        except Exception:
            continue
    return tuple(out)


def _key_bytes(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def _split_p2p(addr: str) -> tuple[PeerId, bytes]:
    ma = multiaddr.Multiaddr(addr)
    peer = PeerId.from_base58(ma.value_for_protocol("p2p"))
    transport = ma.decapsulate(multiaddr.Multiaddr(f"/p2p/{peer.to_base58()}"))
    return peer, transport.to_bytes()


class _Subscription:
    __slots__ = ("send", "counters")

    def __init__(self, send: trio.MemorySendChannel[Message], counters: Any) -> None:
        self.send = send
        self.counters = counters

    def deliver(self, msg: Message) -> None:
        try:
            self.send.send_nowait(msg)
        except trio.WouldBlock:
            self.counters["app_dropped"] += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass


class _Waiter:
    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.result: QueryFinished | None = None


def _store_factory(data_dir: str | os.PathLike[str] | None) -> StoreFactory | None:
    """Broker retention logs under ``data_dir/broker/<kind>/<quoted topic>/``."""
    if data_dir is None:
        return None
    root = Path(data_dir) / "broker"

    def factory(kind: str, topic: str) -> SegmentStore:
        return SegmentStore(root / kind / quote(topic, safe=""))

    return factory


def _restore_retained(core: NodeCore, data_dir: str | os.PathLike[str] | None) -> None:
    """A restarted node keeps retaining the topics it retained before (logs and all)."""
    if data_dir is None:
        return
    retained = Path(data_dir) / "broker" / "retained"
    if retained.is_dir():
        for entry in sorted(retained.iterdir()):
            if entry.is_dir():
                try:
                    core.broker.retain(unquote(entry.name), trio.current_time())
                except MicronetworkError as exc:
                    log.warning("not restoring broker log %s: %s", entry, exc)


def _single_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception inside nested one-member groups, else None."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        if len(exc.exceptions) != 1:
            return None
        exc = exc.exceptions[0]
    return exc


def _load_key(config: NodeConfig) -> KeyPair:
    if config.key_seed is not None:
        return KeyPair.from_seed(config.key_seed)
    if config.key_file is not None:
        return load_or_create_key(config.key_file)
    return KeyPair.generate()
