"""A seeded core picks the same mesh whatever the process's hash seed (sets iterate in hash
order; PeerId hashes differ between processes)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

_SCRIPT = """
import random
from micronetwork.gossip import RPC, GossipConfig, GossipCore, SubOpts
from micronetwork.identity import KeyPair
core = GossipCore(KeyPair.from_seed(b"\\x01" * 32), config=GossipConfig(), rng=random.Random(7))
peers = [KeyPair.from_seed(bytes([i]) * 32).peer_id for i in range(2, 40)]
for p in peers:
    core.on_peer_connected(p, ["/meshsub/1.2.0"], True, 0.0)
    core.on_rpc(p, RPC(subscriptions=(SubOpts(True, "t"),)), 0.0)
core.subscribe("t", 0.0)
print(sorted(peers.index(p) for p in core.mesh_peers("t")))
"""


def _mesh_here() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(_SCRIPT, {})
    return out.getvalue().strip()


def _mesh_in_process_with_hash_seed(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return out.stdout.strip()


def test_subscribe_picks_the_same_mesh_under_any_hash_seed() -> None:
    here = _mesh_here()  # this process's (random) hash seed
    assert here == _mesh_in_process_with_hash_seed("12345")
    assert here.count(",") == 5  # d = 6 peers
