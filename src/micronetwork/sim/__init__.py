"""The deterministic network simulator: the real sans-IO cores on a virtual clock.

Start with :class:`Scenario` (``docs/simulator.md``); :class:`Simulator` is the driver underneath.
Gossipsub: :class:`GossipScenario` over :class:`GossipSimulator`.
"""

from .churn import Churn
from .crypto import CryptoModel, ground_key
from .gossip import FlashSybil, GossipBehaviour, GossipSimulator, MsgRecord, SilentSybil
from .gossip_scenarios import GossipScenario
from .loop import EventLoop
from .metrics import LookupRecord, MessageRecord, Metrics, percentile, summarize_lookups
from .models import Constant, LogNormal, NetworkModel, Uniform
from .network import Simulator, message_size
from .node import Behaviour, Coalition, Colluding, Silent, SimNode
from .scenario import Scenario
from .topology import Topology, barabasi_albert, load_graph, random_regular, waxman

__all__ = [
    "Behaviour",
    "Churn",
    "Coalition",
    "Colluding",
    "Constant",
    "CryptoModel",
    "EventLoop",
    "FlashSybil",
    "GossipBehaviour",
    "GossipScenario",
    "GossipSimulator",
    "LogNormal",
    "LookupRecord",
    "MessageRecord",
    "Metrics",
    "MsgRecord",
    "NetworkModel",
    "Scenario",
    "Silent",
    "SilentSybil",
    "SimNode",
    "Simulator",
    "Topology",
    "Uniform",
    "barabasi_albert",
    "ground_key",
    "load_graph",
    "message_size",
    "percentile",
    "random_regular",
    "summarize_lookups",
    "waxman",
]
