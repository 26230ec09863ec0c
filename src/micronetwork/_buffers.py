"""Lists of byte strings written as one: what is left after the first bytes went out."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["after"]


def after(parts: Sequence[bytes | memoryview], n: int) -> list[bytes | memoryview]:
    """``parts`` without their first ``n`` bytes (a part cut in two is left as a view of its
    end: no copy)."""
    i = 0
    while i < len(parts) and n >= len(parts[i]):
        n -= len(parts[i])
        i += 1
    rest = list(parts[i:])
    if n:
        first = rest[0]
        rest[0] = (first if type(first) is memoryview else memoryview(first))[n:]
    return rest
