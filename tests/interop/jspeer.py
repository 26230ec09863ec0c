"""A trio client of ``js/peer.mjs``: a js-libp2p node driven by JSON lines.

``JsPeer.request(cmd, **args)`` sends ``{"id": N, "cmd": cmd, ...}`` and returns the answer,
raising :class:`JsPeerError` (with the tail of the peer's stderr log) when it says
``"ok": false``; ``JsPeer.call`` returns the raw answer instead. Every wait is bounded.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

JS_DIR = Path(__file__).with_name("js")
PEER_SCRIPT = JS_DIR / "peer.mjs"
MN_KAD = "/micronetwork/kad/1.0.0"
IPFS_KAD = "/ipfs/kad/1.0.0"


class JsPeerError(Exception):
    pass


def node_modules_ok() -> bool:
    """True when js/node_modules holds exactly the versions js/package.json pins."""
    wanted = json.loads((JS_DIR / "package.json").read_text())["dependencies"]
    for name, version in wanted.items():
        manifest = JS_DIR / "node_modules" / name / "package.json"
        try:
            if json.loads(manifest.read_text())["version"] != version:
                return False
        except (OSError, ValueError, KeyError):
            return False
    return True


def npm_ci(npm: str, timeout: float = 600) -> None:
    """``npm ci`` in js/ (the lock file pins every package); raises on failure."""
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=JS_DIR, capture_output=True, text=True, timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"npm ci in {JS_DIR} failed:\n{result.stderr[-2000:]}")


class JsPeer:
    def __init__(self, proc: trio.Process, log_path: Path, config: dict[str, Any]) -> None:
        self.proc = proc
        self.log_path = log_path
        self.config = config
        self.peer_id = ""
        self.addrs: list[str] = []  # with /p2p/<peer_id>
        self.protocols: list[str] = []
        self.dht_protocol = ""
        self._ids = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel[dict[str, Any]]] = {}
        self._exited = trio.Event()
        self.events: list[dict[str, Any]] = []  # unsolicited lines: pubsub events
        self._new_event = trio.Event()

    @classmethod
    async def start(
        cls,
        nursery: trio.Nursery,
        node: str,
        log_path: Path,
        config: dict[str, Any] | None = None,
        timeout: float = 30,
    ) -> JsPeer:
        config = dict(config or {})
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "wb")  # the child keeps its own descriptor
        try:
            proc = await trio.lowlevel.open_process(
                [node, str(PEER_SCRIPT), json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=JS_DIR,
                env={**os.environ, "NODE_NO_WARNINGS": "1"},
            )
        finally:
            log.close()
        peer = cls(proc, log_path, config)
        try:
            with trio.fail_after(timeout):
                await nursery.start(peer._reader)
        except BaseException:
            await peer.kill()
            raise
        return peer

    async def _reader(self, task_status: trio.TaskStatus[None]) -> None:
        assert self.proc.stdout is not None
        buf = b""
        started = False
        try:
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
                        self.protocols = msg.get("protocols", [])
                        self.dht_protocol = msg.get("dht_protocol", "")
                        started = True
                        task_status.started()
                    elif "id" in msg and msg["id"] in self._waiting:
                        self._waiting.pop(msg["id"]).send_nowait(msg)
                    else:
                        self.events.append(msg)
                        self._new_event.set()
                        self._new_event = trio.Event()
        finally:
            self._exited.set()
            self._new_event.set()
            for chan in self._waiting.values():
                chan.close()
        if not started:
            raise JsPeerError(f"peer.mjs exited before it was ready; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def call(self, cmd: str, timeout: float = 30, **args: Any) -> dict[str, Any]:
        """Send a command; its raw answer (``{"id", "ok", ...}``)."""
        if self._exited.is_set():
            raise JsPeerError(f"peer.mjs has exited; log:\n{self.log_tail()}")
        i = next(self._ids)
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self._waiting[i] = send
        assert self.proc.stdin is not None
        with trio.fail_after(timeout):
            line = json.dumps({"id": i, "cmd": cmd, **args}) + "\n"
            await self.proc.stdin.send_all(line.encode())
            try:
                return await receive.receive()
            except trio.EndOfChannel:
                raise JsPeerError(
                    f"peer.mjs exited during {cmd!r}; log:\n{self.log_tail()}"
                ) from None

    async def request(self, cmd: str, timeout: float = 30, **args: Any) -> dict[str, Any]:
        """Send a command; its answer, or :class:`JsPeerError` if it failed."""
        answer = await self.call(cmd, timeout=timeout, **args)
        if not answer.get("ok"):
            raise JsPeerError(f"{cmd} {args}: {answer.get('error')}\nlog:\n{self.log_tail()}")
        return answer

    async def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15, start: int = 0
    ) -> dict[str, Any]:
        """The first event from ``self.events[start:]`` that matches ``predicate``, waiting for
        new events as they are printed (no polling); :class:`JsPeerError` on timeout."""
        seen = start
        with trio.move_on_after(timeout):
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                if self._exited.is_set():
                    break
                await self._new_event.wait()
        raise JsPeerError(
            f"no matching event within {timeout} s; events: {self.events[start:][-10:]}\n"
            f"log:\n{self.log_tail()}"
        )

    async def stop(self, timeout: float = 10) -> None:
        """Ask the node to stop (closing stdin does too); kill it if it does not exit."""
        if self.proc.returncode is None and self.proc.stdin is not None:
            with trio.move_on_after(timeout):
                try:
                    await self.proc.stdin.aclose()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                await self.proc.wait()
        await self.kill()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            with trio.move_on_after(5):
                await self.proc.wait()


def find_node() -> tuple[str | None, str | None]:
    return shutil.which("node"), shutil.which("npm")
