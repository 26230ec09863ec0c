"""Peer score P1-P7 and decay, against the formulas of the v1.1 spec."""

from __future__ import annotations

import pytest

from micronetwork.errors import ConfigError
from micronetwork.gossip import PeerScore, PeerScoreParams, ScoreThresholds, TopicScoreParams
from micronetwork.identity import PeerId

A, B, C = (PeerId(b"\x00\x24" + bytes([i]) * 36) for i in (1, 2, 3))
T = "t"


def make(**topic: float) -> PeerScore:
    tp = TopicScoreParams(**topic)  # type: ignore[arg-type]
    params = PeerScoreParams(topics={T: tp}, default_topic=None, topic_score_cap=0)
    s = PeerScore(params)
    for p in (A, B, C):
        s.add_peer(p, None)
    return s


def test_p1_time_in_mesh_is_capped() -> None:
    s = make(time_in_mesh_weight=0.5, time_in_mesh_quantum=2.0, time_in_mesh_cap=10.0)
    s.graft(A, T, 0.0)
    assert s.score(A, 8.0) == pytest.approx(0.5 * 4)
    assert s.score(A, 100.0) == pytest.approx(0.5 * 10)
    s.prune(A, T, 100.0)
    assert s.score(A, 100.0) == 0.0


def test_p2_first_deliveries_capped_and_decay() -> None:
    s = make(
        time_in_mesh_weight=0, first_message_deliveries_cap=3, first_message_deliveries_decay=0.5
    )
    for i in range(5):
        s.validate(b"m%d" % i, 0.0)
        s.deliver(A, b"m%d" % i, T, 0.0)
    assert s.score(A, 0.0) == pytest.approx(3.0)
    s.decay(1.0)
    assert s.score(A, 1.0) == pytest.approx(1.5)


def test_p3_deficit_after_activation_and_p3b_sticky_penalty() -> None:
    s = make(
        time_in_mesh_weight=0,
        first_message_deliveries_weight=0,
        mesh_message_deliveries_weight=-1.0,
        mesh_message_deliveries_threshold=4,
        mesh_message_deliveries_activation=5.0,
        mesh_message_deliveries_window=0.1,
        mesh_failure_penalty_weight=-2.0,
    )
    s.graft(A, T, 0.0)
    s.graft(B, T, 0.0)
    assert s.score(A, 4.0) == 0.0  # not active yet
    s.validate(b"m", 4.0)
    s.deliver(A, b"m", T, 4.0)  # first delivery: +1
    s.duplicate(B, b"m", T, 4.05)  # within the window: +1
    s.duplicate(C, b"m", T, 4.05)  # not in mesh: nothing
    s.validate(b"n", 4.0)
    s.deliver(A, b"n", T, 4.0)
    s.duplicate(B, b"n", T, 4.5)  # too late
    assert s.score(A, 6.0) == pytest.approx(-((4 - 2) ** 2))
    assert s.score(B, 6.0) == pytest.approx(-((4 - 1) ** 2))
    s.prune(B, T, 6.0)
    assert s.score(B, 6.0) == pytest.approx(-2.0 * 9)  # P3b remembers the deficit


def test_p4_invalid_is_negative_and_squared_and_decays() -> None:
    s = make(
        time_in_mesh_weight=0,
        invalid_message_deliveries_weight=-3.0,
        invalid_message_deliveries_decay=0.9,
    )
    for i in range(3):
        s.validate(b"m%d" % i, 0.0)
        s.reject(A, b"m%d" % i, T, 0.0)
    assert s.score(A, 0.0) == pytest.approx(-3.0 * 9)  # spec sign: a penalty, not a reward
    for k in range(1, 11):
        s.decay(float(k))
    assert s.score(A, 10.0) == pytest.approx(-3.0 * (3 * 0.9**10) ** 2)
    for k in range(11, 200):
        s.decay(float(k))
    assert s.score(A, 200.0) == 0.0  # decayed to zero


def test_duplicates_during_validation_share_the_verdict() -> None:
    s = make(time_in_mesh_weight=0, invalid_message_deliveries_weight=-1.0)
    s.validate(b"m", 0.0)
    s.duplicate(B, b"m", T, 0.1)
    s.reject(A, b"m", T, 0.2)
    assert s.score(A, 1.0) == s.score(B, 1.0) == -1.0
    s.duplicate(C, b"m", T, 0.3)  # a copy after the verdict too
    assert s.score(C, 1.0) == -1.0
    s.reject_unsigned(C, T)
    assert s.score(C, 1.0) == -4.0


def test_p5_p6_p7_and_topic_cap() -> None:
    app = {A: 2.0}
    params = PeerScoreParams(
        topics={T: TopicScoreParams(time_in_mesh_weight=1.0, time_in_mesh_cap=1000)},
        default_topic=None,
        topic_score_cap=5.0,
        app_specific_score=lambda p: app.get(p, 0.0),
        app_specific_weight=3.0,
        ip_colocation_factor_weight=-1.0,
        ip_colocation_factor_threshold=1,
        behaviour_penalty_weight=-2.0,
        behaviour_penalty_threshold=1.0,
    )
    s = PeerScore(params)
    s.add_peer(A, "10.0.0.1")
    s.graft(A, T, 0.0)
    assert s.score(A, 100.0) == pytest.approx(5.0 + 6.0)  # capped topic part + P5
    s.add_peer(B, "10.0.0.2")
    s.add_peer(C, "10.0.0.2")
    assert s.score(B, 0.0) == pytest.approx(-1.0)  # 2 on one IP, threshold 1: surplus 1
    s.add_penalty(B, 3)
    assert s.score(B, 0.0) == pytest.approx(-1.0 - 2.0 * 4)
    s.remove_peer(C, 0.0)  # retained (score not positive), still counted on the IP
    s.decay(params.retain_score + 1)
    assert not s.known(C)
    assert s.score(B, params.retain_score + 1) > -1.0 - 2.0 * 4


def test_p6_exempts_loopback_and_whitelist_by_default() -> None:
    params = PeerScoreParams(ip_colocation_factor_weight=-1.0, ip_colocation_factor_threshold=1,
                             ip_colocation_factor_whitelist=frozenset({"10.9.9.9"}))
    s = PeerScore(params)
    for peer, ip in ((A, "127.0.0.1"), (B, "127.0.0.1"), (C, "::1")):
        s.add_peer(peer, ip)
    assert s.score(A, 0.0) == 0.0  # three local processes are not Sybils
    strict = PeerScore(PeerScoreParams(ip_colocation_factor_weight=-1.0,
                                       ip_colocation_factor_threshold=1,
                                       ip_colocation_exempt_loopback=False))
    strict.add_peer(A, "127.0.0.1")
    strict.add_peer(B, "127.0.0.1")
    assert strict.score(A, 0.0) == pytest.approx(-1.0)
    assert not params.ip_scored("10.9.9.9") and params.ip_scored("10.0.0.1")
    assert params.ip_scored("not an ip")


def test_params_are_checked() -> None:
    with pytest.raises(ConfigError):
        TopicScoreParams(invalid_message_deliveries_weight=1.0)
    with pytest.raises(ConfigError):
        ScoreThresholds(gossip_threshold=-100, publish_threshold=-10)
