"""Noise transport messages read and written on the TCP socket directly, for our yamux.

After the handshake py-libp2p's Noise session reads each message as a 2-byte length, then the
body, through three layers, each with a trio lock (a scheduler pass) per call, and writes the
length and body of each message the same way. For the muxer, which owns the connection once
it runs, this reads whatever the socket has (up to 256 KiB at once) and decrypts every
complete message in it, and writes all messages of one output in a single ``send_all``. The
cipher states are py-libp2p's (from its handshake, via the ``noise`` library), used in the
same order, so the wire is unchanged. :meth:`NoiseFrames.attach` returns None for anything
but a Noise session over TCP, and the muxer then uses the session's own read and write.
"""

from __future__ import annotations

from typing import Any

import trio

__all__ = ["MAX_PLAINTEXT", "NoiseFrames"]

MAX_PLAINTEXT = 65535 - 16  # a Noise message is at most 64 KiB - 1, with a 16-byte tag
RECV_SIZE = 256 * 1024


class NoiseFrames:
    def __init__(self, sock: trio.SocketStream, state: Any, leftover: bytes = b"") -> None:
        self._sock = sock
        self._encrypt = state.encrypt
        self._decrypt = state.decrypt
        self._buf = bytearray()
        self._leftover = leftover  # plaintext py-libp2p's session had already read

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
        if self._leftover:
            out, self._leftover = self._leftover, b""
            await trio.lowlevel.checkpoint()
            return out
        buf = self._buf
        while True:
            out = self._decrypt_ready(buf)
            if out:
                return out
            data = await self._sock.receive_some(RECV_SIZE)
            if not data:
                if buf:
                    raise ConnectionError("the connection ended inside a Noise message")
                return b""
            buf += data

    def _decrypt_ready(self, buf: bytearray) -> bytes:
        pos, end = 0, len(buf)
        parts = []
        while end - pos >= 2:
            n = (buf[pos] << 8) | buf[pos + 1]
            if end - pos - 2 < n:
                break
            parts.append(self._decrypt(bytes(buf[pos + 2:pos + 2 + n])))
            pos += 2 + n
        if pos:
            del buf[:pos]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def write(self, data: bytes) -> None:
        """``data`` as Noise messages of at most ``MAX_PLAINTEXT`` bytes, in one send."""
        if len(data) <= MAX_PLAINTEXT:
            ct = self._encrypt(data)
            await self._sock.send_all(len(ct).to_bytes(2, "big") + ct)
            return
        out = bytearray()
        view = memoryview(data)
        for i in range(0, len(data), MAX_PLAINTEXT):
            ct = self._encrypt(bytes(view[i:i + MAX_PLAINTEXT]))
            out += len(ct).to_bytes(2, "big")
            out += ct
        await self._sock.send_all(bytes(out))
