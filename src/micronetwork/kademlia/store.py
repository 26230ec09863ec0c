"""Value records and provider records, with validators and TTLs (no I/O).

Keys are bytes. A value key names its namespace as its first path segment (``/pk/<multihash>``,
``/mn/<anything>``) and the namespace's :class:`Validator` decides whether a value is valid
and which of several values is best. Keys of unknown namespaces are rejected. Records expire
``record_ttl`` after they were stored; provider records ``provider_ttl`` after they were added.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ..errors import ValidationError
from ..identity.peerid import PeerId

__all__ = [
    "AnyValueValidator",
    "ProviderStore",
    "PublicKeyValidator",
    "RecordStore",
    "Validator",
    "default_validators",
    "namespace_of",
]


class Validator(Protocol):
    def validate(self, key: bytes, value: bytes) -> None:
        """Raise :class:`ValidationError` if ``value`` is not valid for ``key``."""

    def select(self, key: bytes, values: list[bytes]) -> int:
        """Index of the best of several valid values."""


def namespace_of(key: bytes) -> str:
    """``b"/pk/..."`` -> ``"pk"``; raises ValidationError for keys without a namespace."""
    if not key.startswith(b"/"):
        raise ValidationError("record key has no namespace (expected /<namespace>/...)")
    end = key.find(b"/", 1)
    if end <= 1:
        raise ValidationError("record key has no namespace (expected /<namespace>/...)")
    try:
        return key[1:end].decode("ascii")
    except UnicodeDecodeError as exc:
        raise ValidationError("record namespace is not ASCII") from exc


class PublicKeyValidator:
    """``/pk/<peer id multihash bytes>`` -> the protobuf public key whose id that is."""

    def validate(self, key: bytes, value: bytes) -> None:
        raw_id = key[len(b"/pk/") :]
        try:
            derived = PeerId.from_public_key(value)
        except Exception as exc:  # pragma: no cover - from_public_key only slices and hashes
            raise ValidationError(f"bad public key: {exc}") from exc
        if bytes(derived) != raw_id:
            raise ValidationError("public key does not match the peer id in the key")

    def select(self, key: bytes, values: list[bytes]) -> int:
        return 0


class AnyValueValidator:
    """Accepts any value up to ``max_size`` bytes; the first one is best."""

    def __init__(self, max_size: int = 64 * 1024) -> None:
        self.max_size = max_size

    def validate(self, key: bytes, value: bytes) -> None:
        if len(value) > self.max_size:
            raise ValidationError(f"value of {len(value)} bytes exceeds {self.max_size}")

    def select(self, key: bytes, values: list[bytes]) -> int:
        return 0


def default_validators(max_value_size: int = 64 * 1024) -> dict[str, Validator]:
    return {"pk": PublicKeyValidator(), "mn": AnyValueValidator(max_value_size)}


class RecordStore:
    def __init__(
        self, validators: Mapping[str, Validator], ttl: float, max_records: int
    ) -> None:
        self.validators = dict(validators)
        self.ttl = ttl
        self.max_records = max_records
        self._records: dict[bytes, tuple[bytes, float]] = {}  # key -> (value, expires)

    def __len__(self) -> int:
        return len(self._records)

    def validate(self, key: bytes, value: bytes) -> Validator:
        ns = namespace_of(key)
        validator = self.validators.get(ns)
        if validator is None:
            raise ValidationError(f"no validator for namespace {ns!r}")
        validator.validate(key, value)
        return validator

    def put(self, key: bytes, value: bytes, now: float) -> bool:
        """Validate and store; keeps the better of old and new. Returns True if stored."""
        validator = self.validate(key, value)
        old = self.get(key, now)
        if old is not None and old != value and validator.select(key, [old, value]) == 0:
            return False
        if old is None and len(self._records) >= self.max_records:
            self.expire(now)
            if len(self._records) >= self.max_records:
                raise ValidationError("record store is full")
        self._records[key] = (value, now + self.ttl)
        return True

    def get(self, key: bytes, now: float) -> bytes | None:
        item = self._records.get(key)
        if item is None:
            return None
        if item[1] <= now:
            del self._records[key]
            return None
        return item[0]

    def select(self, key: bytes, values: list[bytes]) -> int:
        validator = self.validators.get(namespace_of(key))
        return 0 if validator is None else validator.select(key, values)

    def expire(self, now: float) -> int:
        dead = [k for k, (_, exp) in self._records.items() if exp <= now]
        for k in dead:
            del self._records[k]
        return len(dead)


class ProviderStore:
    def __init__(self, ttl: float, max_per_key: int, max_keys: int) -> None:
        self.ttl = ttl
        self.max_per_key = max_per_key
        self.max_keys = max_keys
        # key -> provider -> (addrs, expires)
        self._providers: dict[bytes, dict[PeerId, tuple[tuple[bytes, ...], float]]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._providers.values())

    def add(self, key: bytes, provider: PeerId, addrs: tuple[bytes, ...], now: float) -> bool:
        provs = self._providers.get(key)
        if provs is None:
            if len(self._providers) >= self.max_keys:
                self.expire(now)
                if len(self._providers) >= self.max_keys:
                    return False
            provs = self._providers[key] = {}
        if provider not in provs and len(provs) >= self.max_per_key:
            return False
        provs[provider] = (addrs, now + self.ttl)
        return True

    def get(self, key: bytes, now: float) -> list[tuple[PeerId, tuple[bytes, ...]]]:
        provs = self._providers.get(key)
        if not provs:
            return []
        out = []
        for peer, (addrs, exp) in list(provs.items()):
            if exp <= now:
                del provs[peer]
            else:
                out.append((peer, addrs))
        return out

    def expire(self, now: float) -> int:
        n = 0
        for key in list(self._providers):
            provs = self._providers[key]
            for peer in [p for p, (_, exp) in provs.items() if exp <= now]:
                del provs[peer]
                n += 1
            if not provs:
                del self._providers[key]
        return n
