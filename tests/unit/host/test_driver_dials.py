"""HostDriver.ensure_connected: concurrent dials of one peer share one dial and its outcome.

A fake host whose ``connect`` waits at a gate, so the test decides when each dial ends and
whether it connected. Before the fix, callers that waited on a failed dial each dialled
again, one overwrote the other's entry in ``_dialing``, and the second to finish deleted a
missing key: a KeyError that killed the node's nursery (seen in benchmarks/gossip_real.py
at 30 nodes once topic discovery dialled more).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from micronetwork.errors import DialError
from micronetwork.host.driver import HostDriver, to_libp2p_id
from micronetwork.identity.keys import KeyPair

PEER = KeyPair.generate().peer_id
ADDR = (b"\x04\x7f\x00\x00\x01\x06\x10\x00",)  # /ip4/127.0.0.1/tcp/4096


class _Host:
    def __init__(self) -> None:
        self.connected: set[Any] = set()
        self.dials = 0
        self.gate = trio.Event()
        self.succeed = False
        self.store = SimpleNamespace(add_addrs=lambda *a: None, addrs=lambda pid: [])

    def get_network(self) -> Any:
        return SimpleNamespace(
            get_connections=lambda pid: [object()] if pid in self.connected else [])

    def get_peerstore(self) -> Any:
        return self.store

    async def connect(self, info: Any) -> None:
        self.dials += 1
        await self.gate.wait()
        if not self.succeed:
            raise OSError("connection refused")
        self.connected.add(info.peer_id)


async def _race(host: _Host) -> list[str]:
    driver = HostDriver(host, SimpleNamespace(), lambda e: None)  # type: ignore[arg-type]
    outcomes: list[str] = []

    async def dial() -> None:
        try:
            await driver.ensure_connected(PEER, ADDR)
            outcomes.append("ok")
        except DialError:
            outcomes.append("failed")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(dial)
            await trio.testing.wait_all_tasks_blocked()
            host.gate.set()
    assert driver._dialing == {}
    return outcomes


async def test_callers_of_a_failed_dial_fail_with_it_without_dialling_again() -> None:
    host = _Host()
    assert await _race(host) == ["failed"] * 3
    assert host.dials == 1


async def test_callers_of_a_successful_dial_share_its_connection() -> None:
    host = _Host()
    host.succeed = True
    assert await _race(host) == ["ok"] * 3
    assert host.dials == 1 and to_libp2p_id(PEER) in host.connected


@pytest.mark.parametrize("succeed", [False, True])
async def test_a_new_dial_after_the_first_ended_dials_again(succeed: bool) -> None:
    host = _Host()
    host.succeed = succeed
    await _race(host)
    host.connected.clear()
    assert await _race(host) == (["ok"] if succeed else ["failed"]) * 3
    assert host.dials == 2
