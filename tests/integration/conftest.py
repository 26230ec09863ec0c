"""Fixtures that run nodes in separate OS processes (see node_proc.py)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

SCRIPT = Path(__file__).with_name("node_proc.py")


class NodeProcess:
    """Controls one node_proc.py process; every wait is bounded by the caller's fail_after."""

    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self.peer_id = ""
        self.addrs: list[str] = []
        self._ids = itertools.count(1)
        self._answers: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._changed = trio.Event()

    async def reader(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert self.proc.stdout is not None
        buf = b""
        started = False
        async for chunk in self.proc.stdout:
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                msg = json.loads(line)
                if msg.get("event") == "ready":
                    self.peer_id, self.addrs = msg["peer_id"], msg["addrs"]
                    if not started:
                        started = True
                        task_status.started()
                elif "id" in msg:
                    self._answers[msg["id"]] = msg
                else:
                    self.events.append(msg)
                self._changed.set()
                self._changed = trio.Event()
        if not started:
            raise RuntimeError("node process exited before it was ready")

    async def call(self, cmd: str, **kw: Any) -> dict[str, Any]:
        i = next(self._ids)
        assert self.proc.stdin is not None
        await self.proc.stdin.send_all((json.dumps({"id": i, "cmd": cmd, **kw}) + "\n").encode())
        while i not in self._answers:
            await self._changed.wait()
        return self._answers.pop(i)

    async def wait_event(self, event: str, peer: str) -> dict[str, Any]:
        while True:
            for e in self.events:
                if e.get("event") == event and e.get("peer") == peer:
                    return e
            await self._changed.wait()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)


class Cluster:
    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.procs: list[NodeProcess] = []

    async def start(self, role: str, *bootstrap: str) -> NodeProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = await trio.lowlevel.open_process(
            [sys.executable, str(SCRIPT), role, *bootstrap],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        node = NodeProcess(proc)
        self.procs.append(node)
        await self.nursery.start(node.reader)
        return node


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        try:
            yield c
        finally:
            for p in c.procs:
                if p.proc.returncode is None:
                    p.kill()
            with trio.move_on_after(10):
                for p in c.procs:
                    await p.proc.wait()
            nursery.cancel_scope.cancel()
