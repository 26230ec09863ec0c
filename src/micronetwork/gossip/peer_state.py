"""What a gossip router keeps per connected peer (:class:`PeerState`)."""

from __future__ import annotations

__all__ = ["PeerState"]


class PeerState:
    """What the router knows of one connected gossip peer."""

    __slots__ = (
        "protocol", "outbound", "topics", "ip", "dontwant", "ihaves", "iasked",
        "idontwants", "bad", "heard",
    )

    def __init__(self, protocol: str, outbound: bool, ip: str | None) -> None:
        self.protocol = protocol
        self.outbound = outbound
        self.ip = ip
        self.topics: set[str] = set()
        self.dontwant: dict[bytes, int] = {}  # msg id -> heartbeat tick it was announced
        self.ihaves = 0  # IHAVEs acted on this heartbeat
        self.iasked = 0  # ids asked for this heartbeat
        self.idontwants = 0
        self.bad = 0
        self.heard: dict[str, int] = {}  # topic -> tick of its last message or IHAVE from it
