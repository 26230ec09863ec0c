"""yamux (the libp2p stream multiplexer) as a sans-IO session; driven by ``host/muxer.py``."""

from .session import YamuxSession

__all__ = ["YamuxSession"]
