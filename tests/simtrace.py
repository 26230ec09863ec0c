"""A digest of everything a simulation did, to compare runs bit for bit (tests/sim)."""

from __future__ import annotations

import hashlib
from typing import Any


def digest(sc: Any, tables: bool = False) -> str:
    """Messages, lookup records and counters of ``sc`` (a ``Scenario`` built with
    ``record_messages=True``), and with ``tables`` every node's routing table."""
    h = hashlib.sha256()
    for m in sc.sim.metrics.messages:
        h.update(repr((m.time, m.src, m.dst, m.type, m.size, m.delay, m.dropped)).encode())
    for r in sc.sim.metrics.lookups:
        h.update(repr(r).encode())
    h.update(repr(sorted(sc.sim.metrics.counters.items())).encode())
    if tables:
        for node in sc.sim.nodes:
            h.update(repr([(e.peer_id, e.key, e.addrs, e.last_seen, e.failures)
                           for e in node.core.table.entries()]).encode())
    return h.hexdigest()
