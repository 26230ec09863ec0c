"""Independent libp2p peers for interop tests: js-libp2p (npm) and the go-libp2p daemon.

Fixtures:

* ``js_peer_factory``: ``await js_peer_factory(protocol=..., seed=..., identity=...)`` starts a
  ``js/peer.mjs`` process on 127.0.0.1 and returns a :class:`~interop.jspeer.JsPeer`.
* ``p2pd_factory``: ``await p2pd_factory(identity=..., dht_mode="server")`` starts ``p2pd`` on
  127.0.0.1 and returns a :class:`~interop.p2pd.Daemon`.

Everything started is stopped at teardown. Without Node.js/npm (or when ``npm ci`` cannot reach
the package registry) the js tests are skipped with the reason; without the hivemind wheel the
go tests are. Every test here is marked ``interop`` (``pytest -m "not interop"`` leaves them out).
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from .jspeer import MN_KAD, JsPeer, find_node, node_modules_ok, npm_ci
from .keys import Ed25519Identity
from .p2pd import Daemon, Unavailable, ensure_p2pd

HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "interop: talks to independent libp2p implementations (js-libp2p, go-libp2p daemon)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="session")
def js_node() -> str:
    """The ``node`` executable, with js/node_modules installed (``npm ci``, once) if needed."""
    node, npm = find_node()
    if node is None or npm is None:
        pytest.skip("Node.js (node and npm) is not installed: js-libp2p interop tests skipped")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    major = int(version.stdout.strip().lstrip("v").split(".")[0] or 0)
    if major < 20:
        pytest.skip(f"js-libp2p 2.x needs Node.js >= 20, found {version.stdout.strip()}")
    if not node_modules_ok():
        try:
            npm_ci(npm)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"npm ci failed (no package registry?): js-libp2p tests skipped: {exc}")
    return node


@pytest.fixture(scope="session")
def p2pd_binary() -> Path:
    try:
        return ensure_p2pd()
    except Unavailable as exc:
        pytest.skip(f"go-libp2p daemon unavailable, go interop tests skipped: {exc}")


JsPeerFactory = Callable[..., Awaitable[JsPeer]]
P2pdFactory = Callable[..., Awaitable[Daemon]]


async def _stop_all(stoppers: list[Callable[[], Awaitable[None]]]) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(20):
        async with trio.open_nursery() as nursery:
            for stop in stoppers:
                nursery.start_soon(stop)


@pytest.fixture
async def js_peer_factory(js_node: str, tmp_path: Path) -> AsyncIterator[JsPeerFactory]:
    started: list[JsPeer] = []
    async with trio.open_nursery() as nursery:

        async def start(
            protocol: str = MN_KAD,
            *,
            seed: bytes | None = None,
            identity: Ed25519Identity | None = None,
            client_mode: bool = False,
            listen: str = "/ip4/127.0.0.1/tcp/0",
            timeout: float = 30,
            **extra: Any,
        ) -> JsPeer:
            config: dict[str, Any] = {"listen": listen, "protocol": protocol,
                                      "client_mode": client_mode, **extra}
            if identity is not None:
                config["private_key"] = identity.private_key.hex()
            elif seed is not None:
                config["seed"] = seed.hex()
            log = tmp_path / f"js-peer-{len(started)}.log"
            peer = await JsPeer.start(nursery, js_node, log, config, timeout=timeout)
            started.append(peer)
            return peer

        try:
            yield start
        finally:
            await _stop_all([p.stop for p in started])
            nursery.cancel_scope.cancel()


@pytest.fixture
async def p2pd_factory(p2pd_binary: Path, tmp_path: Path) -> AsyncIterator[P2pdFactory]:
    started: list[Daemon] = []
    async with trio.open_nursery() as nursery:

        async def start(
            *,
            identity: Ed25519Identity | None = None,
            key_file: Path | None = None,
            dht_mode: str = "server",
            extra_args: tuple[str, ...] = (),
            timeout: float = 20,
        ) -> Daemon:
            workdir = tmp_path / f"p2pd-{len(started)}"
            workdir.mkdir()
            daemon = await Daemon.start(
                nursery, identity=identity, key_file=key_file, dht_mode=dht_mode,
                extra_args=extra_args, workdir=workdir, timeout=timeout,
            )
            started.append(daemon)
            return daemon

        try:
            yield start
        finally:
            await _stop_all([d.stop for d in started])
            nursery.cancel_scope.cancel()
