"""The go-libp2p daemon (``p2pd``) as an independent peer, and a small client of its control API.

``p2pd`` ships inside the ``hivemind`` wheel on PyPI (a static go-libp2p-daemon build with
go-libp2p-kad-dht v0.25.1). :func:`ensure_p2pd` downloads the wheel once into a cache directory
(``MICRONETWORK_INTEROP_CACHE``, default ``~/.cache/micronetwork-interop``) and extracts the
binary and the daemon's protobuf module (``p2pd_pb2``) from it; neither is committed.

The control protocol: one TCP connection per request on a loopback port; the request and each
response are varint-length-prefixed protobufs (``Request`` / ``Response``); streaming DHT
answers (providers, closest peers) come as ``DHTResponse`` BEGIN, VALUE..., END.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import trio

from micronetwork.framing import FrameDecoder, encode_frame

WHEEL = "hivemind==1.1.12"
CACHE = Path(os.environ.get("MICRONETWORK_INTEROP_CACHE", "~/.cache/micronetwork-interop"))


class Unavailable(Exception):
    """The daemon cannot be had here (no wheel, no network to the package index)."""


def ensure_p2pd() -> tuple[Path, ModuleType]:
    cache = CACHE.expanduser()
    binary = cache / "hivemind" / "hivemind_cli" / "p2pd"
    proto = cache / "hivemind" / "proto" / "p2pd_pb2.py"
    if not binary.exists() or not proto.exists():
        cache.mkdir(parents=True, exist_ok=True)
        wheels = glob.glob(str(cache / "hivemind-*.whl"))
        if not wheels:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-q", "-d",
                 str(cache)],
                capture_output=True, text=True, timeout=300,
            )
            wheels = glob.glob(str(cache / "hivemind-*.whl"))
            if result.returncode != 0 or not wheels:
                raise Unavailable(f"pip download {WHEEL} failed: {result.stderr[-500:]}")
        with zipfile.ZipFile(wheels[0]) as z:
            z.extract("hivemind/hivemind_cli/p2pd", cache)
            z.extract("hivemind/proto/p2pd_pb2.py", cache)
        binary.chmod(0o755)
    spec = importlib.util.spec_from_file_location("p2pd_pb2", proto)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return binary, module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    """A running p2pd with the DHT in server mode, listening on 127.0.0.1."""

    def __init__(self, proc: trio.Process, pb: ModuleType, control_port: int) -> None:
        self.proc = proc
        self.pb = pb
        self.control_port = control_port
        self.peer_id = ""
        self.addrs: list[str] = []

    @classmethod
    async def start(cls, nursery: trio.Nursery, key_file: Path | None = None) -> Daemon:
        binary, pb = ensure_p2pd()
        port = free_port()
        argv = [str(binary), "-listen", f"/ip4/127.0.0.1/tcp/{port}",
                "-hostAddrs", "/ip4/127.0.0.1/tcp/0", "-dhtServer"]
        if key_file is not None:
            argv += ["-id", str(key_file)]
        proc = await trio.lowlevel.open_process(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        daemon = cls(proc, pb, port)
        await nursery.start(daemon._read_banner)
        return daemon

    async def _read_banner(self, task_status: trio.TaskStatus[None]) -> None:
        # p2pd prints "Control socket", "Peer ID: ...", "Peer Addrs:" and one address a line.
        assert self.proc.stdout is not None
        buf = b""
        started = False
        async for chunk in self.proc.stdout:
            buf += chunk
            lines = buf.decode(errors="replace").splitlines()
            for line in lines:
                if line.startswith("Peer ID:"):
                    self.peer_id = line.split(":", 1)[1].strip()
                elif line.startswith("/ip4/") and line not in self.addrs:
                    self.addrs.append(line.strip())
            if self.peer_id and self.addrs and not started:
                started = True
                task_status.started()
        if not started:
            raise RuntimeError("p2pd exited before printing its identity")

    async def request(self, req: Any, stream: bool = False) -> list[Any]:
        """Send one control request; the answers (one, or the DHT stream's VALUE entries)."""
        conn = await trio.open_tcp_stream("127.0.0.1", self.control_port)
        async with conn:
            await conn.send_all(encode_frame(req.SerializeToString(), 1 << 22))
            decoder = FrameDecoder(1 << 22)
            out: list[Any] = []
            while True:
                frame = decoder.next_frame()
                if frame is None:
                    data = await conn.receive_some(65536)
                    if not data:
                        return out
                    decoder.feed(data)
                    continue
                if not out:
                    resp = self.pb.Response()
                    resp.ParseFromString(frame)
                    if resp.type != self.pb.Response.OK:
                        raise RuntimeError(f"p2pd: {resp.error.msg}")
                    out.append(resp)
                    if not stream:
                        return out
                else:
                    item = self.pb.DHTResponse()
                    item.ParseFromString(frame)
                    if item.type == self.pb.DHTResponse.END:
                        return out
                    out.append(item)

    async def connect(self, peer: bytes, addrs: list[bytes]) -> None:
        pb = self.pb
        req = pb.Request(type=pb.Request.CONNECT, connect=pb.ConnectRequest(peer=peer, addrs=addrs))
        await self.request(req)

    async def dht(self, kind: str, stream: bool = False, **fields: Any) -> list[Any]:
        pb = self.pb
        req = pb.Request(
            type=pb.Request.DHT,
            dht=pb.DHTRequest(type=getattr(pb.DHTRequest, kind), timeout=15, **fields),
        )
        return await self.request(req, stream=stream)

    async def list_peers(self) -> list[bytes]:
        (resp,) = await self.request(self.pb.Request(type=self.pb.Request.LIST_PEERS))
        return [bytes(p.id) for p in resp.peers]

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        with trio.move_on_after(10):
            await self.proc.wait()
