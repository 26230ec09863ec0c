"""The service registry in the simulator: what a node holds and sends, how fast news spreads.

Issue 5 asks that what a node holds and sends for the registry not grow with the total number
of services, that a new registration reach its watchers quickly, and that a dead node's
registrations disappear within ``ttl`` + one announce interval. This runs the real
:class:`~micronetwork.registry.RegistryCore` of every node on top of the real gossip core in
virtual time (:class:`~micronetwork.sim.gossip.GossipSimulator` supplies the event loop, links
with latency, and the gossipsub routers; the registry is wired to it as ``NodeCore`` wires it):

* N nodes on a random regular graph; S services, each served by one random node, registered at
  a random moment of the first announce interval (so announcements are not in phase); every
  node watches W random services. A watcher connects to each instance it watches, as the real
  node does when it fetches a registration from a provider found in the DHT (the DHT step
  itself is not simulated: its cost is one provider lookup per name, measured in the Kademlia
  scenarios);
* a few super nodes subscribe to the catalog topic, as on the real network, and every node
  keeps a connection to one of them (its bootstrap node);
* :func:`run_registry_scale`: after a warm-up, per node over a measurement window: the
  registrations held, the gossip topics joined and the bytes sent and received (all gossip
  traffic here is registry traffic); separately for super nodes, whose bounded catalog does
  grow with S, up to its size;
* :func:`run_registry_propagation`: a popular service watched by a share of the nodes gets a
  new instance, as do a hundred ordinary services (the new server dials the existing provider
  of its service, the model of "find the providers in the DHT and connect", so that it joins
  the topic's mesh); then those new servers and a hundred other serving nodes crash (no
  withdrawal, their links just go silent). Per watcher: when it saw the new instance, and when
  it deleted the dead ones, against the bound ``ttl + announce_interval``.

Signatures are executed (real Ed25519): registrations are signed envelopes and receivers verify
them, as on real hosts. A gossip message carried by several peers is verified once per message
(a memo of messages that verified: the check is a pure function of the message, so the outcome
is the same, only the simulator's CPU is spared); the registry's own check of the envelope runs
at every receiver.

Modules: :mod:`.registry_driver` (:class:`RegistrySimulator`), :mod:`.registry_net` (building a
network: :func:`build_registry_net`), :mod:`.registry_results` (the result dataclasses and their
statistics) and this one (the two experiments), which re-exports the others.
"""

from __future__ import annotations

import random
import statistics

from ..identity.peerid import PeerId
from ..registry import RegistryConfig
from .registry_driver import INF, Progress, RegistrySimulator, _no_progress
from .registry_net import RegistryNet, add_instance, add_watcher, build_registry_net, describe
from .registry_results import PropagationResult, RegistryScaleResult, _ms, _rss, _share, _spread
from .registry_results import Stats as Stats

__all__ = [
    "PropagationResult",
    "RegistryNet",
    "RegistryScaleResult",
    "RegistrySimulator",
    "build_registry_net",
    "run_registry_propagation",
    "run_registry_scale",
]


# == scale: what a node holds and sends ===========================================================


def run_registry_scale(
    nodes: int, services: int, *, watched: int = 3, supers: int = 3, degree: int = 8,
    warmup: float = 30.0, window: float = 60.0, seed: int = 1, catalog_size: int = 1024,
    progress: Progress = _no_progress,
) -> RegistryScaleResult:
    """One run: N nodes, S services, W watched per node; bytes counted over ``window`` after
    ``warmup`` virtual seconds (the registrations and the meshes' first grafts)."""
    rn = build_registry_net(nodes, services, watched=watched, supers=supers, degree=degree,
                            seed=seed, catalog_size=catalog_size,
                            progress=lambda f, s: progress(0.1 * f, s))
    sim = rn.sim
    sim.run(warmup, progress, "warm-up", 0.1, 0.1 + 0.9 * warmup / (warmup + window))
    out0, in0 = list(sim.bytes_out), list(sim.bytes_in)
    half = window / 2
    sim.run(half, progress, "window", 0.1 + 0.9 * warmup / (warmup + window),
            0.1 + 0.9 * (warmup + half) / (warmup + window))
    out_half = list(sim.bytes_out)
    sim.run(window - half, progress, "window", 0.1 + 0.9 * (warmup + half) / (warmup + window),
            1.0)
    peers = rn.peers()
    regs = [sim.registries[i] for i in peers]
    held = [sum(len(r.get(n)) for n in set(r.instances) | set(r.local)) for r in regs]
    remote = [sum(len(v) for v in r.instances.values()) for r in regs]
    topics = [len(r.subscribed) for r in regs]
    catalog = [len(r.catalog) for r in regs]
    covered = total = 0
    for i, ws in rn.watches.items():
        for n in ws:
            want = {rn.nodes[s].peer_id for s in rn.servers[n] if s != i}
            have = {r.peer for r in sim.registries[i].get(n)}
            total += len(want)
            covered += len(want & have)
    sup = range(supers)
    return RegistryScaleResult(
        nodes=nodes, services=services, watched_per_node=watched, supers=supers,
        warmup=warmup, window=window,
        held_mean=statistics.fmean(held), held_max=max(held),
        held_remote_mean=statistics.fmean(remote), held_remote_max=max(remote),
        own_mean=statistics.fmean(len(r.local) for r in regs),
        topics_mean=statistics.fmean(topics), topics_max=max(topics),
        catalog_mean=statistics.fmean(catalog), catalog_max=max(catalog),
        out_bps=_spread([(sim.bytes_out[i] - out0[i]) / window for i in peers]),
        in_bps=_spread([(sim.bytes_in[i] - in0[i]) / window for i in peers]),
        out_bps_half=_spread([(out_half[i] - out0[i]) / half for i in peers]),
        super_catalog_mean=statistics.fmean(len(sim.registries[i].catalog) for i in sup),
        super_in_bps=statistics.fmean((sim.bytes_in[i] - in0[i]) / window for i in sup),
        super_out_bps=statistics.fmean((sim.bytes_out[i] - out0[i]) / window for i in sup),
        watch_coverage=covered / total if total else 1.0,
        created_events=sim.events["created"], expired_live=sim.expired_live,
        events=sim.loop.events_run, rss_bytes=_rss(),
    )


# == propagation: a new registration, a dead node ================================================


def run_registry_propagation(
    nodes: int, services: int | None = None, *, hot_share: float = 0.1, new_instances: int = 100,
    crashes: int = 100, watched: int = 3, supers: int = 3, degree: int = 8, warmup: float = 30.0,
    settle: float = 20.0, seed: int = 1, config: RegistryConfig | None = None,
    progress: Progress = _no_progress,
) -> PropagationResult:
    """A new instance of a popular service (watched by ``hot_share`` of the nodes) and of
    ``new_instances`` ordinary services at ``warmup``; ``settle`` s later those new servers and
    ``crashes`` other serving nodes crash; then the run goes on for ``bound + 5`` s."""
    cfg = config or RegistryConfig()
    services = nodes if services is None else services
    bound = cfg.ttl + cfg.announce_interval
    tail = bound + 5.0
    total_t = warmup + settle + tail
    rn = build_registry_net(nodes, services, watched=watched, supers=supers, degree=degree,
                            seed=seed, config=cfg, progress=lambda f, s: progress(0.1 * f, s))
    sim, rng = rn.sim, random.Random(seed + 1)

    def frac(t: float) -> float:
        return 0.1 + 0.9 * t / total_t

    hot_server = rng.randrange(supers, nodes)
    rn.servers["hot"] = [hot_server]
    sim.loop.call_at(rng.random() * cfg.announce_interval, sim.register, rn.nodes[hot_server],
                     describe("hot"))
    others = [i for i in rn.peers() if i != hot_server]
    for idx in rng.sample(others, round(hot_share * len(others))):
        add_watcher(rn, idx, "hot")
    sim.run(warmup, progress, "warm-up", frac(0), frac(warmup))

    t_new = sim.now
    watching_hot = set(rn.watchers.get("hot", ()))
    busy = {hot_server, *(s for v in rn.servers.values() for s in v)}
    fresh = [i for i in rn.peers() if i not in busy and i not in watching_hot]
    hot_new = fresh.pop(rng.randrange(len(fresh)))
    add_instance(rn, hot_new, "hot")
    pairs: list[tuple[str, int]] = []  # (service, new server) of the ordinary new instances
    for name in rng.sample(rn.names, min(new_instances, len(rn.names))):
        if not fresh:
            break
        idx = fresh.pop(rng.randrange(len(fresh)))
        add_instance(rn, idx, name)
        pairs.append((name, idx))
    sim.run(settle, progress, "new instances", frac(warmup), frac(warmup + settle))

    def seen(name: str, idx: int) -> list[float]:
        log = sim.created_at[(name, rn.nodes[idx].peer_id)]
        return [log.get(w, INF) - t_new for w in rn.watchers.get(name, ()) if w != idx]

    hot_seen = seen("hot", hot_new)
    new_seen = [x for name, idx in pairs for x in seen(name, idx)]

    # The crash: the new servers, and as many other serving nodes (not the popular service's
    # first server, the hub its watchers dialled: losing it is another experiment).
    t_crash = sim.now
    old_servers = sorted({s for v in rn.servers.values() for s in v}
                         - {hot_server, hot_new, *(i for _, i in pairs)})
    victims = [hot_new, *(i for _, i in pairs),
               *rng.sample(old_servers, min(crashes, len(old_servers)))]
    holders: dict[tuple[str, PeerId], list[int]] = {}
    for v in victims:
        pid = rn.nodes[v].peer_id
        for name in sim.registries[v].local:
            sim.track(name, pid)
            sim.deleted_at[(name, pid)] = {}  # from the crash on (a live one may have lapsed)
            holders[(name, pid)] = [w for w in rn.watchers.get(name, ())
                                    if any(r.peer == pid for r in sim.registries[w].get(name))]
        sim.crash(rn.nodes[v])
    sim.run(tail, progress, "after the crash", frac(warmup + settle), 1.0)

    gone: list[float] = []
    hot_gone: list[float] = []
    for key, hs in holders.items():
        log = sim.deleted_at[key]
        times = [log.get(w, INF) - t_crash for w in hs if rn.nodes[w].alive]
        gone.extend(times)
        if key == ("hot", rn.nodes[hot_new].peer_id):
            hot_gone = times
    within = sum(1 for x in gone if x <= bound)
    return PropagationResult(
        nodes=nodes, services=services, supers=supers, ttl=cfg.ttl,
        announce_interval=cfg.announce_interval, bound_s=bound,
        hot_watchers=len(watching_hot), new_instances=len(pairs),
        hot_seen=_spread(hot_seen), hot_seen_share=_share(hot_seen),
        new_seen=_spread(new_seen), new_seen_share=_share(new_seen),
        crashed=len(victims), gone=_spread(gone), gone_share=_share(gone),
        gone_within_bound=within / len(gone) if gone else 1.0, hot_gone=_spread(hot_gone),
        deleted_reasons=dict(sim.deleted), expired_live=sim.expired_live,
        observed_after_crash_s=tail,
        samples={"hot_seen": _ms(hot_seen), "new_seen": _ms(new_seen), "gone": _ms(gone)},
        events=sim.loop.events_run, rss_bytes=_rss(),
    )
