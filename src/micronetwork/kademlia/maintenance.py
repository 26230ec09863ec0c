"""What a Kademlia node does every ``maintenance_interval`` (no I/O, like the core).

Records and provider records past their TTL are dropped; a node whose table has emptied
re-runs bootstrap (at most every ``rebootstrap_interval``); otherwise buckets not refreshed
within ``refresh_interval`` are refreshed, up to 8 entries not heard from for
``liveness_interval`` are pinged (a failed ping evicts the entry), and keys we provide are
announced again every ``provider_republish``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .events import QueryKind
from .query import REQ_LIVENESS_PING

if TYPE_CHECKING:
    from .protocol import KademliaCore

__all__ = ["maintain"]

LIVENESS_PINGS = 8  # per round: the rest wait for the next one


def maintain(core: KademliaCore, now: float) -> None:
    cfg = core.config
    core.records.expire(now)
    core.providers.expire(now)
    if not len(core.table):
        if core._bootstrap_peers and now - core._last_bootstrap >= cfg.rebootstrap_interval:
            core.counters["rebootstraps"] += 1
            core.bootstrap(now)
        return
    core.refresh(now)
    for entry in core.table.stale(now, cfg.liveness_interval)[:LIVENESS_PINGS]:
        core._ping(entry.peer_id, entry.addrs, REQ_LIVENESS_PING, now)
    for key, last in list(core._provided.items()):
        if now - last >= cfg.provider_republish:
            core._provided[key] = now
            core._start(QueryKind.ADD_PROVIDER, key, now)
