"""Building the py-libp2p host: TCP, Noise, yamux, identify, ping.

Why ``max_connections_per_peer=1``: py-libp2p's swarm (``network/swarm.py``, ``dial_peer``)
dials addresses happy-eyeballs style and, unless the peer already has
``max_connections_per_peer`` connections (default 3), waits out a 250 ms head start for a
second connection *after the first has already succeeded*. Every ``connect()`` then costs
~251 ms on loopback. With one connection per peer allowed, the first success ends the dial and
connection set-up takes milliseconds (see docs/decisions.md and benchmarks/discovery.py).

Why the auto-connector is switched off: py-libp2p's swarm dials every peer in its peerstore,
every 30 s and after each disconnect, until it holds 150 connections (midpoint of its
watermarks). Which peers a node connects to is the Kademlia core's decision (as in go-libp2p,
which has no such dialer); with it on, an idle 21-node network in one process spent most of a
core on connections nobody asked for, and their churn.
"""

from __future__ import annotations

import logging
from typing import Any

import multiaddr

from ..errors import ConfigError
from ..identity.keys import KeyPair
from .muxer import install as install_muxer

__all__ = ["MUXERS", "build_host", "quiet_libp2p_logging"]


def quiet_libp2p_logging() -> None:
    """py-libp2p logs expected events (a peer's clean end of stream) as errors; keep them
    out of our users' terminals unless they ask for them."""
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    logging.getLogger("multiaddr").setLevel(logging.WARNING)


MUXERS = ("micronetwork", "py-libp2p")


def build_host(key: KeyPair, listen: tuple[str, ...], *, muxer: str = "micronetwork",
               ) -> tuple[Any, list[multiaddr.Multiaddr]]:
    """A py-libp2p host on ``listen``. ``muxer`` runs ``/yamux/1.0.0`` with our yamux
    (:mod:`.muxer`, the default) or with py-libp2p's own (``"py-libp2p"``)."""
    from libp2p import new_host
    from libp2p.network.config import ConnectionConfig

    if muxer not in MUXERS:
        raise ConfigError(f"unknown muxer {muxer!r}; choose one of {', '.join(MUXERS)}")
    try:
        listen_addrs = [multiaddr.Multiaddr(a) for a in listen]
    except Exception as exc:
        raise ConfigError(f"bad listen address: {exc}") from exc
    for ma in listen_addrs:
        protos = [p.name for p in ma.protocols()]
        if "tcp" not in protos:
            raise ConfigError(f"listen address {ma} is not TCP; only TCP is supported today")
    host = new_host(
        key_pair=key.to_libp2p(),
        muxer_preference="YAMUX",
        connection_config=ConnectionConfig(
            max_connections_per_peer=1, min_connections=0, low_watermark=0
        ),
        listen_addrs=listen_addrs,
    )
    _disable_auto_connector(host)
    if muxer == "micronetwork":
        install_muxer(host)
    return host, listen_addrs


def _disable_auto_connector(host: Any) -> None:
    connector = getattr(host.get_network(), "auto_connector", None)
    if connector is None:
        return

    async def no_dials() -> None:
        return None

    connector.maybe_connect = no_dials
