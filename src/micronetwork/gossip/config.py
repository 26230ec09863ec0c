"""Gossipsub settings (frozen): router parameters, peer-score parameters, score thresholds.

Router defaults follow the gossipsub v1.1 spec and go-libp2p-pubsub, except the heartbeat
(1 s, as go; py-libp2p's 120 s default is what makes it slow). Score parameters follow the
v1.1 spec's P1-P7. The defaults here are deliberately mild: P3 (mesh delivery deficit) is off by
default because the network's own topics (registry announcements) can be quiet for minutes,
and a delivery threshold above the real message rate would make every honest mesh peer
negative. Topics with a known rate should set P3 explicitly (see ``TopicScoreParams``).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..identity.peerid import PeerId

__all__ = [
    "GossipConfig",
    "PROTOCOL_V11",
    "PROTOCOL_V12",
    "PeerScoreParams",
    "ScoreThresholds",
    "TopicScoreParams",
]

PROTOCOL_V12 = "/meshsub/1.2.0"
PROTOCOL_V11 = "/meshsub/1.1.0"


@dataclass(frozen=True, slots=True)
class TopicScoreParams:
    """Per-topic score parameters (P1-P4 of the v1.1 spec). Weights of P3, P3b, P4 are <= 0."""

    topic_weight: float = 1.0
    # P1: time in mesh, counted in quanta, capped
    time_in_mesh_weight: float = 0.01
    time_in_mesh_quantum: float = 1.0
    time_in_mesh_cap: float = 600.0
    # P2: first deliveries of a message
    first_message_deliveries_weight: float = 1.0
    first_message_deliveries_decay: float = 0.99
    first_message_deliveries_cap: float = 20.0
    # P3: mesh delivery deficit (squared), only after the activation time in the mesh
    mesh_message_deliveries_weight: float = 0.0
    mesh_message_deliveries_decay: float = 0.97
    mesh_message_deliveries_cap: float = 20.0
    mesh_message_deliveries_threshold: float = 1.0
    mesh_message_deliveries_window: float = 0.01
    mesh_message_deliveries_activation: float = 30.0
    # P3b: sticky penalty for the deficit a peer had when it left the mesh
    mesh_failure_penalty_weight: float = 0.0
    mesh_failure_penalty_decay: float = 0.97
    # P4: invalid messages (squared)
    invalid_message_deliveries_weight: float = -10.0
    invalid_message_deliveries_decay: float = 0.99

    def __post_init__(self) -> None:
        if self.topic_weight < 0:
            raise ConfigError("topic_weight must be >= 0")
        for name in (
            "mesh_message_deliveries_weight",
            "mesh_failure_penalty_weight",
            "invalid_message_deliveries_weight",
        ):
            if getattr(self, name) > 0:
                raise ConfigError(f"{name} must be <= 0 (it is a penalty)")
        for name in ("time_in_mesh_weight", "first_message_deliveries_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        for name in (
            "first_message_deliveries_decay",
            "mesh_message_deliveries_decay",
            "mesh_failure_penalty_decay",
            "invalid_message_deliveries_decay",
        ):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in (0, 1)")
        if self.time_in_mesh_quantum <= 0:
            raise ConfigError("time_in_mesh_quantum must be positive")


AppScore = Callable[[PeerId], float]


def _zero(peer: PeerId) -> float:
    return 0.0


@functools.lru_cache(maxsize=4096)
def _is_loopback(ip: str) -> bool:  # asked on every score computation: parse each IP once
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class PeerScoreParams:
    """Peer score parameters: per-topic P1-P4, then P5 (application), P6 (IP), P7 (behaviour).

    ``app_specific_score`` is the hook the reputation layer plugs into (P5). ``default_topic``
    scores any topic without its own entry in ``topics`` (None: such topics add nothing).
    """

    topics: Mapping[str, TopicScoreParams] = field(default_factory=dict)
    default_topic: TopicScoreParams | None = field(default_factory=TopicScoreParams)
    topic_score_cap: float = 100.0  # cap on the positive part of the sum of topic scores
    app_specific_score: AppScore = _zero
    app_specific_weight: float = 1.0
    ip_colocation_factor_weight: float = -10.0
    ip_colocation_factor_threshold: int = 10
    ip_colocation_factor_whitelist: frozenset[str] = frozenset()
    # Loopback peers are processes on this machine (tests, demos, a local network); counting
    # them as Sybils graylists every local network of more than ``threshold`` + 8 nodes.
    ip_colocation_exempt_loopback: bool = True
    behaviour_penalty_weight: float = -1.0
    behaviour_penalty_threshold: float = 2.0
    behaviour_penalty_decay: float = 0.99
    decay_interval: float = 1.0
    decay_to_zero: float = 0.01
    retain_score: float = 300.0  # keep a disconnected peer's counters this long

    def __post_init__(self) -> None:
        if self.ip_colocation_factor_weight > 0 or self.behaviour_penalty_weight > 0:
            raise ConfigError("P6 and P7 weights must be <= 0")
        if self.decay_interval <= 0 or not 0 < self.behaviour_penalty_decay < 1:
            raise ConfigError("decay_interval must be > 0 and behaviour_penalty_decay in (0, 1)")

    def topic(self, topic: str) -> TopicScoreParams | None:
        return self.topics.get(topic, self.default_topic)

    def ip_scored(self, ip: str) -> bool:
        """Whether P6 counts ``ip`` (not whitelisted, not loopback when that is exempt)."""
        if ip in self.ip_colocation_factor_whitelist:
            return False
        return not (self.ip_colocation_exempt_loopback and _is_loopback(ip))


@dataclass(frozen=True, slots=True)
class ScoreThresholds:
    """Score thresholds of the v1.1 spec; ``graylist <= publish <= gossip <= 0``."""

    gossip_threshold: float = -10.0  # below: no IHAVE/IWANT to or from the peer
    publish_threshold: float = -50.0  # below: our own messages are not flood-published to it
    graylist_threshold: float = -80.0  # below: its RPCs are ignored
    accept_px_threshold: float = 10.0  # PX from a pruning peer only above this
    opportunistic_graft_threshold: float = 1.0  # median mesh score below this: graft better peers

    def __post_init__(self) -> None:
        if not self.graylist_threshold <= self.publish_threshold <= self.gossip_threshold <= 0:
            raise ConfigError("need graylist <= publish <= gossip <= 0 thresholds")
        if self.accept_px_threshold < 0 or self.opportunistic_graft_threshold < 0:
            raise ConfigError("accept_px and opportunistic_graft thresholds must be >= 0")


MsgIdFn = Callable[[Any], bytes]  # (PubMessage) -> id


@dataclass(frozen=True, slots=True)
class GossipConfig:
    """Router parameters (names as in the spec; times in seconds)."""

    d: int = 6
    d_lo: int = 5
    d_hi: int = 12
    d_score: int = 4
    d_out: int = 2
    d_lazy: int = 6
    gossip_factor: float = 0.25
    heartbeat_interval: float = 1.0
    heartbeat_initial_delay: float = 0.1
    fanout_ttl: float = 60.0
    mcache_len: int = 5  # history windows kept for IWANT
    mcache_gossip: int = 3  # windows advertised in IHAVE
    seen_ttl: float = 120.0
    prune_backoff: float = 60.0
    unsubscribe_backoff: float = 10.0
    graft_flood_threshold: float = 10.0
    prune_peers: int = 16  # peers offered in PX
    do_px: bool = True
    flood_publish: bool = True
    # Of the mesh slots the router fills by choice (subscribe, graft below d_lo, and above
    # d_hi the slots after the d_score best scored), this share goes to the lowest round-trip
    # times the driver reported (GossipCore.set_peer_rtt), the rest at random as in the spec.
    # 0 turns it off; peers without an RTT count as slowest.
    mesh_latency_share: float = 0.67
    opportunistic_graft_ticks: int = 60
    opportunistic_graft_peers: int = 2
    # Topic discovery (FindPeers): a subscribed topic whose mesh is below d_lo with no
    # connected peer left to graft asks the driver for d - |mesh| more peers of the topic once
    # it has stayed so for discovery_backoff_ticks heartbeats, then again after twice as many,
    # up to discovery_backoff_max_ticks, until the mesh is back at d_lo.
    # A topic with traffic (or P3 on) is starved too while fewer than d_lo of its mesh peers
    # and candidates sent a message or IHAVE within discovery_active_ticks heartbeats; the
    # graft below d_lo prefers such peers. 0 turns both off.
    discovery: bool = True
    discovery_backoff_ticks: int = 2
    discovery_backoff_max_ticks: int = 64
    discovery_active_ticks: int = 10
    gossip_retransmission: int = 3  # IWANT answers per message per peer
    max_ihave_length: int = 5000  # ids we ask one peer for per heartbeat
    max_ihave_messages: int = 10  # IHAVEs from one peer we act on per heartbeat
    max_idontwant_messages: int = 1000  # IDONTWANT ids we store per peer per heartbeat
    iwant_followup_time: float = 3.0
    idontwant_threshold: int = 1024  # bytes of data above which we send IDONTWANT
    idontwant_ttl_heartbeats: int = 3
    max_message_size: int = 1 << 20
    bad_rpc_limit: int = 10  # undecodable RPCs from one peer before it is disconnected
    validation_timeout: float = 10.0  # async validation unanswered: IGNORE
    max_pending_validations: int = 4096  # beyond: IGNORE at once (counted)
    msg_id_fn: MsgIdFn | None = None  # None: from + seqno
    protocols: tuple[str, ...] = (PROTOCOL_V12, PROTOCOL_V11)
    score: PeerScoreParams | None = field(default_factory=PeerScoreParams)  # None: no scoring
    thresholds: ScoreThresholds = field(default_factory=ScoreThresholds)

    def __post_init__(self) -> None:
        if not (0 <= self.d_lo <= self.d <= self.d_hi):
            raise ConfigError("need d_lo <= d <= d_hi")
        if not (0 <= self.d_out < self.d_lo and self.d_out <= self.d // 2):
            raise ConfigError("need d_out < d_lo and d_out <= d / 2")
        if not 0 <= self.d_score <= self.d:
            raise ConfigError("need 0 <= d_score <= d")
        if not 0 < self.mcache_gossip <= self.mcache_len:
            raise ConfigError("need 0 < mcache_gossip <= mcache_len")
        if not 0.0 <= self.mesh_latency_share <= 1.0:
            raise ConfigError("mesh_latency_share must be within [0, 1]")
        if not 1 <= self.discovery_backoff_ticks <= self.discovery_backoff_max_ticks:
            raise ConfigError("need 1 <= discovery_backoff_ticks <= discovery_backoff_max_ticks")
        if self.discovery_active_ticks < 0:
            raise ConfigError("discovery_active_ticks must be >= 0")
        if self.heartbeat_interval <= 0:
            raise ConfigError("heartbeat_interval must be positive")
        if not self.protocols or any(p not in (PROTOCOL_V12, PROTOCOL_V11) for p in self.protocols):
            raise ConfigError(f"protocols must be among {PROTOCOL_V12}, {PROTOCOL_V11}")
