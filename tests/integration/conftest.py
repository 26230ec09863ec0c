"""Fixtures that run nodes in separate OS processes (see node_proc.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from jsonproc import JsonProcess

SCRIPT = Path(__file__).with_name("node_proc.py")


class Cluster:
    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.procs: list[JsonProcess] = []

    async def start(
        self, role: str, *bootstrap: str, env_extra: dict[str, str] | None = None
    ) -> JsonProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
        node = await JsonProcess.start(
            self.nursery, [sys.executable, str(SCRIPT), role, *bootstrap], env=env
        )
        self.procs.append(node)
        return node


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        try:
            yield c
        finally:
            for p in c.procs:
                await p.stop()
            nursery.cancel_scope.cancel()
