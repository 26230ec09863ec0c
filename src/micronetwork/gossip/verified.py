"""What a gossip validator parsed, kept for the delivery of the same message.

The cores that own gossip topics (registry, broker, network view) check each message in their
validator (signature, author, topic) and use the parsed record again when the router delivers
the message (``on_message``). :class:`Verified` keeps the record by message id between the two
calls, bounded: past ``limit`` entries it starts afresh (a message validated and never
delivered, e.g. dropped by the router, must not be held forever). A message delivered without
a kept record (the cache was reset, or the driver skipped validation) is validated again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .events import Message, Outcome

__all__ = ["Verified"]

T = TypeVar("T")


class Verified(Generic[T]):
    __slots__ = ("_items", "limit")

    def __init__(self, limit: int = 4096) -> None:
        self._items: dict[bytes, T] = {}
        self.limit = limit

    def put(self, msg_id: bytes, item: T) -> None:
        """Keep what the validator accepted for ``msg_id``."""
        if len(self._items) >= self.limit:
            self._items.clear()
        self._items[msg_id] = item

    def take(self, msg: Message, validate: Callable[[Message], Outcome]) -> T | None:
        """The record kept for ``msg`` (validating it now if none is kept); None if invalid."""
        item = self._items.pop(msg.msg_id, None)
        if item is None:
            if validate(msg) is not Outcome.ACCEPT:
                return None
            item = self._items.pop(msg.msg_id, None)
        return item

    def __len__(self) -> int:
        return len(self._items)
