"""SegmentStore: a retention log on disk that survives a crash mid-write.

This module is a storage driver: it does file I/O (no sockets, no trio). One directory per
topic log, holding append-only *segment* files named by the offset of their first record
(``00000000000000000042.seg``, 20 digits). A segment is an 8-byte header ``b"MNBLOG\\x00\\x01"``
followed by records::

    record  = length (u32, big-endian) | crc (u32, big-endian) | body (length bytes)
    crc     = CRC-32 of (length bytes || body)
    body    = CBOR [offset, stored_at, signed event bytes]

Only the last segment is ever written. On open every segment is scanned: each complete record
whose CRC matches and whose offset is above the one before it is recovered; at the first torn
or corrupt record the segment is truncated there and the scan goes on with the next segment.
A crash mid-write therefore loses at most the records not yet written out (the one being
written, or the batch not yet flushed); nothing is ever half-read. Corruption *inside* an older
segment (a disk fault, not a crash) loses the rest of that segment; the log then drops what
came before the hole so its offsets stay contiguous.

Segments roll over at ``segment_bytes``; eviction deletes whole segments whose records are all
below the log's first retained offset (the active segment is never deleted, so the next offset
survives a restart even when everything was evicted).

Durability (``fsync``): appends are buffered and written with one ``write`` per ``flush()``
(the core flushes once per batch of inputs).

* ``"never"`` (default): flush hands the batch to the OS; it survives the process crashing
  but not the machine losing power. Cheapest.
* ``"batch"``: flush also ``fsync``s the segment (and the directory when a segment was created
  or deleted): a power loss loses at most the batch being flushed. One fsync per batch.
* ``"always"``: every append is written and fsync'd at once: a power loss loses at most the
  record being written, at the cost of one fsync per event.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cbor2

from ..errors import ConfigError

__all__ = ["HEADER", "SegmentStore", "StoredRecord", "encode_record"]

log = logging.getLogger(__name__)

HEADER = b"MNBLOG\x00\x01"
_PREFIX = struct.Struct(">II")
_NAME = re.compile(r"(\d{20})\.seg\Z")
MAX_RECORD = 4 << 20


@dataclass(frozen=True, slots=True)
class StoredRecord:
    offset: int
    stored_at: float
    signed: bytes


@dataclass(slots=True)
class _Segment:
    base: int
    path: Path
    size: int
    last: int  # offset of the last record, base - 1 if none


def encode_record(offset: int, stored_at: float, signed: bytes) -> bytes:
    body = cbor2.dumps([offset, float(stored_at), signed])
    length = len(body).to_bytes(4, "big")
    return length + zlib.crc32(length + body).to_bytes(4, "big") + body


class SegmentStore:
    """The on-disk form of one retention log (a :class:`~.log.LogSink`)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = 8 << 20,
        fsync: Literal["never", "batch", "always"] = "never",
    ) -> None:
        if fsync not in ("never", "batch", "always"):
            raise ConfigError(f"fsync must be 'never', 'batch' or 'always', not {fsync!r}")
        if segment_bytes < 1024:
            raise ConfigError("segment_bytes must be at least 1024")
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.segments: list[_Segment] = []
        self._pending = bytearray()
        self._pending_last = -1
        self._file: int | None = None
        self._dir_dirty = False
        self.recovered_truncations = 0

    # == open / recover =========================================================================

    def load(self) -> list[StoredRecord]:
        """Recover every complete record (truncating torn or corrupt tails); open for append."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.close()
        self.segments = []
        records: list[StoredRecord] = []
        names = sorted(p for p in self.directory.iterdir() if _NAME.match(p.name))
        last = -1
        for path in names:
            base = int(path.name[:20])
            if base <= last:
                log.warning("broker store: segment %s overlaps the one before; removed", path)
                path.unlink()
                continue
            seg_records, good_size = _scan(path, max(base, last + 1))
            actual = path.stat().st_size
            if good_size != actual or good_size < len(HEADER):
                self.recovered_truncations += 1
                log.warning(
                    "broker store: %s: %d bytes of torn/corrupt tail truncated",
                    path, actual - good_size,
                )
                _truncate(path, good_size)
                good_size = max(good_size, len(HEADER))
            if seg_records:
                last = seg_records[-1].offset
            self.segments.append(_Segment(base, path, good_size, last if seg_records else base - 1))
            records.extend(seg_records)
        return records

    @property
    def next_offset(self) -> int:
        """The offset after the last record (or the active segment's base when it is empty)."""
        if not self.segments:
            return 0
        seg = self.segments[-1]
        return max(seg.last + 1, seg.base)

    # == writing ================================================================================

    def persist(self, offset: int, stored_at: float, signed: bytes) -> None:
        last = self._pending_last if self._pending else self._last_written()
        if offset <= last:
            raise ValueError(f"offset {offset} is not above the last stored {last}")
        record = encode_record(offset, stored_at, signed)
        if len(record) > MAX_RECORD:
            raise ValueError("record over the store's size limit")
        active = self.segments[-1] if self.segments else None
        if (
            active is None
            or active.size + len(self._pending) + len(record) > self.segment_bytes
            and (active.last >= active.base or self._pending)
        ):
            self.flush()
            self._roll(offset)
        self._pending += record
        self._pending_last = offset
        if self.fsync == "always":
            self.flush()

    def flush(self) -> None:
        """Write what is buffered (one write), and fsync as the policy says."""
        if self._pending:
            seg = self.segments[-1]
            fd = self._open(seg)
            data = bytes(self._pending)
            os.write(fd, data)
            seg.size += len(data)
            seg.last = self._pending_last
            self._pending.clear()
            if self.fsync != "never":
                os.fsync(fd)
        if self._dir_dirty and self.fsync != "never":
            _fsync_dir(self.directory)
        self._dir_dirty = False

    def evict_below(self, offset: int) -> None:
        """Delete the segments whose records are all below ``offset`` (never the active one)."""
        while len(self.segments) > 1 and self.segments[1].base <= offset:
            seg = self.segments.pop(0)
            seg.path.unlink(missing_ok=True)
            self._dir_dirty = True

    def close(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None

    def records(self) -> Iterator[StoredRecord]:
        """Read back what is on disk now (for tests and tools)."""
        for seg in self.segments:
            yield from _scan(seg.path, seg.base)[0]

    # == helpers ================================================================================

    def _last_written(self) -> int:
        return self.segments[-1].last if self.segments else -1

    def _roll(self, base: int) -> None:
        self.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{base:020d}.seg"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, HEADER)
        self._file = fd
        self.segments.append(_Segment(base, path, len(HEADER), base - 1))
        self._dir_dirty = True

    def _open(self, seg: _Segment) -> int:
        if self._file is None:
            self._file = os.open(seg.path, os.O_WRONLY | os.O_APPEND)
        return self._file


def _scan(path: Path, min_offset: int) -> tuple[list[StoredRecord], int]:
    """The good records of a segment and the length of its good prefix."""
    data = path.read_bytes()
    if data[: len(HEADER)] != HEADER:
        return [], 0  # a header torn at creation (or not ours): rewritten on truncate
    out: list[StoredRecord] = []
    pos = len(HEADER)
    last = min_offset - 1
    while pos + _PREFIX.size <= len(data):
        length, crc = _PREFIX.unpack_from(data, pos)
        end = pos + _PREFIX.size + length
        if length > MAX_RECORD or end > len(data):
            break
        body = data[pos + _PREFIX.size : end]
        if zlib.crc32(data[pos : pos + 4] + body) != crc:
            break
        rec = _decode(body)
        if rec is None or rec.offset <= last:
            break
        out.append(rec)
        last = rec.offset
        pos = end
    return out, pos


def _decode(body: bytes) -> StoredRecord | None:
    try:
        raw = cbor2.loads(body)
    except Exception:
        return None
    if (
        isinstance(raw, list) and len(raw) == 3
        and isinstance(raw[0], int) and not isinstance(raw[0], bool) and raw[0] >= 0
        and isinstance(raw[1], float) and isinstance(raw[2], bytes)
    ):
        return StoredRecord(raw[0], raw[1], raw[2])
    return None


def _truncate(path: Path, size: int) -> None:
    if size < len(HEADER):
        path.write_bytes(HEADER)
        return
    with open(path, "r+b") as f:
        f.truncate(size)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
