"""Noise transport messages read and written on the TCP socket directly, for our yamux.

After the handshake py-libp2p's Noise session reads each message as a 2-byte length, then the
body, through three layers, each with a trio lock (a scheduler pass) per call, and writes the
length and body of each message the same way. For the muxer, which owns the connection once
it runs, this reads whatever the socket has (up to 256 KiB at once) and decrypts every
complete message in it, and writes all messages of one output with ``sendmsg`` (the muxer's
queued pieces are gathered into each message's plaintext with one join: no copy before). The
cipher states are py-libp2p's (from its handshake, via the ``noise`` library), used in the
same order, so the wire is unchanged. :meth:`NoiseFrames.attach` returns None for anything
but a Noise session over TCP, and the muxer then uses the session's own read and write.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any

import trio

from .._buffers import after

__all__ = ["MAX_PLAINTEXT", "NoiseFrames"]

MAX_PLAINTEXT = 65535 - 16  # a Noise message is at most 64 KiB - 1, with a 16-byte tag
RECV_SIZE = 256 * 1024
_MAX_IOV = 512  # buffers in one sendmsg (Linux takes up to 1024)

Crypt = Callable[[bytes | memoryview], bytes]


class _CipherState:
    """One direction of the ``noise`` library's session, called as its ``encrypt_with_ad`` /
    ``decrypt_with_ad`` do (no associated data; the same key, nonce sequence and AEAD), but on
    any bytes-like message: the library's ``encrypt`` / ``decrypt`` take only ``bytes``, so
    every message would first be copied out of the buffer it sits in."""

    __slots__ = ("_state", "_crypt", "_invalid", "_depleted")

    def __init__(self, state: Any, decrypt: bool) -> None:
        from cryptography.exceptions import InvalidTag
        from noise.exceptions import NoiseInvalidMessage, NoiseMaxNonceError  # type: ignore[import-untyped]

        self._state = state
        self._crypt = state.cipher.decrypt if decrypt else state.cipher.encrypt
        self._invalid = (InvalidTag, NoiseInvalidMessage) if decrypt else None
        self._depleted = NoiseMaxNonceError

    @classmethod
    def of(cls, session: Any, decrypt: bool) -> Crypt:
        """Direct calls for ``session`` (a ``noise`` NoiseConnection after its handshake);
        its own method, with a copy into bytes, for anything else."""
        try:
            from noise.connection import NoiseConnection  # type: ignore[import-untyped]
            from noise.state import CipherState  # type: ignore[import-untyped]

            if isinstance(session, NoiseConnection) and session.handshake_finished:
                proto = session.noise_protocol
                state = proto.cipher_state_decrypt if decrypt else proto.cipher_state_encrypt
                if type(state) is CipherState and state.has_key() and type(state.n) is int:
                    return cls(state, decrypt)
        except ImportError:  # pragma: no cover - py-libp2p's Noise uses this library
            pass
        method = session.decrypt if decrypt else session.encrypt

        def crypt(data: bytes | memoryview) -> bytes:
            return method(bytes(data))  # type: ignore[no-any-return]

        return crypt

    def __call__(self, data: bytes | memoryview) -> bytes:
        state = self._state
        n = state.n
        if n >= 2**64 - 1:
            raise self._depleted("Nonce has depleted!")
        if self._invalid is None:
            out: bytes = self._crypt(state.k, n, None, data)
        else:
            try:
                out = self._crypt(state.k, n, None, data)
            except self._invalid[0]:
                raise self._invalid[1]("Failed authentication of message") from None
        state.n = n + 1
        return out


class NoiseFrames:
    def __init__(self, sock: trio.SocketStream, state: Any, leftover: bytes = b"") -> None:
        self._sock = sock
        self._encrypt = _CipherState.of(state, decrypt=False)
        self._decrypt = _CipherState.of(state, decrypt=True)
        self._buf = bytearray()
        self._leftover = leftover  # plaintext py-libp2p's session had already read
        # The stdlib socket under trio's, read directly (see _receive); None: trio's reads.
        raw = getattr(getattr(sock, "socket", None), "_sock", None)
        self._raw: socket.socket | None = raw if isinstance(raw, socket.socket) else None
        self._drained = True  # the last read left nothing behind in the socket

    @classmethod
    def attach(cls, secured: Any) -> NoiseFrames | None:
        from libp2p.security.noise.io import NoiseTransportReadWriter
        from libp2p.security.secure_session import SecureSession

        if not isinstance(secured, SecureSession):
            return None
        rw = secured.conn
        if not isinstance(rw, NoiseTransportReadWriter):
            return None
        raw = getattr(rw.read_writer, "read_write_closer", None)
        sock = getattr(getattr(raw, "stream", None), "stream", None)
        if not isinstance(sock, trio.SocketStream):
            return None
        return cls(sock, rw.noise_state, secured._drain(None))

    async def read(self) -> bytes:
        """The plaintext of every complete message that has arrived (at least one);
        b"" at the end of the connection."""
        parts = await self.read_parts()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def read_parts(self) -> list[bytes]:
        """As :meth:`read`, each message's plaintext apart (not joined: no copy); [] at the
        end of the connection."""
        if self._leftover:
            out, self._leftover = self._leftover, b""
            await trio.lowlevel.checkpoint()
            return [out]
        buf = self._buf
        while True:
            data = await self._receive()
            if not data:
                if buf:
                    raise ConnectionError("the connection ended inside a Noise message")
                return []
            parts = self._decrypt_ready(data)
            if parts:
                return parts

    async def _receive(self) -> bytes:
        """What the socket has, up to ``RECV_SIZE`` (b"" at its end). trio's ``receive_some``
        tries ``recv`` first and waits only after it failed; the muxer reads again as soon as it
        has handled a read, so most tries failed (an exception and a context manager each).
        After a short read (the socket was drained) this waits for readability first."""
        raw = self._raw
        if raw is None:
            return await self._sock.receive_some(RECV_SIZE)
        waited = False
        fd = raw.fileno()  # what trio waits on for a socket object too
        if self._drained:
            await trio.lowlevel.wait_readable(fd)
            waited = True
        while True:
            try:
                data = raw.recv(RECV_SIZE)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(fd)
                waited = True
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(f"socket read failed: {exc}") from exc
            break
        if not waited:
            await trio.lowlevel.checkpoint()
        self._drained = len(data) < RECV_SIZE
        return data

    def _decrypt_ready(self, data: bytes) -> list[bytes]:
        """Decrypt every message completed by ``data``: the one begun in an earlier read
        (completed in ``_buf`` with only the bytes it lacks), then those in ``data`` itself
        (decrypted from views of it); an unfinished one is kept in ``_buf``."""
        buf = self._buf
        parts = []
        pos, end = 0, len(data)
        with memoryview(data) as view:
            if buf:
                if len(buf) < 2:  # even the length was split
                    pos = min(2 - len(buf), end)
                    buf += view[:pos]
                if len(buf) >= 2:
                    lack = min(2 + ((buf[0] << 8) | buf[1]) - len(buf), end - pos)
                    buf += view[pos:pos + lack]
                    pos += lack
                    if len(buf) == 2 + ((buf[0] << 8) | buf[1]):
                        with memoryview(buf) as whole:
                            parts.append(self._decrypt(whole[2:]))
                        buf.clear()
            if not buf:
                while end - pos >= 2:
                    n = (data[pos] << 8) | data[pos + 1]
                    if end - pos - 2 < n:
                        break
                    parts.append(self._decrypt(view[pos + 2:pos + 2 + n]))
                    pos += 2 + n
                if pos < end:
                    buf += view[pos:]
        return parts

    async def write(self, parts: Sequence[bytes | memoryview]) -> None:
        """``parts`` (in order, as one byte string) as Noise messages of at most
        ``MAX_PLAINTEXT`` bytes, in one send. Each message's plaintext is gathered from the
        parts it spans with one join (a part that fills a message alone is encrypted from a
        view of it, not copied); the lengths and ciphertexts go to the kernel as they are,
        with ``sendmsg``, not joined first."""
        encrypt = self._encrypt
        total = sum(map(len, parts))
        if not total:
            await trio.lowlevel.checkpoint()
            return
        if total <= MAX_PLAINTEXT:  # one message (small writes)
            ct = encrypt(parts[0] if len(parts) == 1 else b"".join(parts))
            await self._send([len(ct).to_bytes(2, "big"), ct], 2 + len(ct))
            return
        out: list[bytes | memoryview] = []
        cur: list[bytes | memoryview] = []  # the pieces of the message being gathered
        room = MAX_PLAINTEXT
        for part in parts:
            size, pos = len(part), 0
            if size > room:  # the part ends this message (and maybe fills more)
                view = part if type(part) is memoryview else memoryview(part)
                while size - pos > room:
                    if room:
                        cur.append(view[pos:pos + room])
                        pos += room
                    ct = encrypt(cur[0] if len(cur) == 1 else b"".join(cur))
                    out.append(len(ct).to_bytes(2, "big"))
                    out.append(ct)
                    cur.clear()
                    room = MAX_PLAINTEXT
                part = view[pos:]
            if size > pos:
                cur.append(part)
                room -= size - pos
        if cur:
            ct = encrypt(cur[0] if len(cur) == 1 else b"".join(cur))
            out.append(len(ct).to_bytes(2, "big"))
            out.append(ct)
        await self._send(out, total + (len(out) // 2) * 18)  # a length and a tag each

    async def _send(self, out: list[bytes | memoryview], left: int) -> None:
        """All of ``out``, in order: ``sendmsg`` while the kernel takes it (when the
        socket's buffer is full, what is left goes in the next call, after waiting for
        room), nothing joined. ``left``: the bytes in ``out``."""
        sock = getattr(self._sock, "socket", None)
        if not hasattr(sock, "sendmsg"):
            await self._sock.send_all(b"".join(out))
            return
        assert sock is not None
        while True:
            try:
                sent = await sock.sendmsg(out if len(out) <= _MAX_IOV else out[:_MAX_IOV])
            except OSError as exc:  # as SocketStream.send_all reports it
                raise trio.BrokenResourceError from exc
            left -= sent
            if not left:
                return
            out = after(out, sent)

