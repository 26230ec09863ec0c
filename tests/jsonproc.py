"""A child process driven by JSON lines (our node_proc.py, the js-libp2p peer, ...).

The child prints ``{"event": "ready", "peer_id": ..., "addrs": [...]}`` once, then answers each
``{"id": N, "cmd": ...}`` with ``{"id": N, "ok": ..., ...}`` and may print other events. Every
wait here is bounded by the caller's ``trio.fail_after``.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

import trio


class JsonProcess:
    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self.peer_id = ""
        self.addrs: list[str] = []
        self._ids = itertools.count(1)
        self._answers: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._changed = trio.Event()

    @classmethod
    async def start(
        cls, nursery: trio.Nursery, argv: Sequence[str], **kwargs: Any
    ) -> JsonProcess:
        proc = await trio.lowlevel.open_process(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, **kwargs
        )
        child = cls(proc)
        await nursery.start(child.reader)
        return child

    async def reader(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert self.proc.stdout is not None
        buf = b""
        started = False
        async for chunk in self.proc.stdout:
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("event") == "ready" and not started:
                    self.peer_id, self.addrs = msg["peer_id"], msg["addrs"]
                    started = True
                    task_status.started()
                elif "id" in msg:
                    self._answers[msg["id"]] = msg
                else:
                    self.events.append(msg)
                self._changed.set()
                self._changed = trio.Event()
        if not started:
            raise RuntimeError(f"{self.proc.args!r} exited before it was ready")

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
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        self.kill()
        with trio.move_on_after(10):
            await self.proc.wait()
