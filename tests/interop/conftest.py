"""Independent libp2p peers for interop tests: js-libp2p (npm) and the go-libp2p daemon.

Every test here is marked ``interop``. Without Node.js the js tests are skipped with a clear
message; without the hivemind wheel (no package index) the go tests are.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio

from jsonproc import JsonProcess

from .p2pd import Daemon, Unavailable, ensure_p2pd

JS_DIR = Path(__file__).with_name("js")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/interop" in str(item.fspath):
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="session")
def js_ready() -> Path:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js (node and npm) is not installed: js-libp2p interop tests skipped")
    if not (JS_DIR / "node_modules" / "libp2p").exists():
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True, text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"npm ci in {JS_DIR} failed:\n{result.stderr[-2000:]}")
    return Path(node)


JsFactory = Callable[..., Awaitable[JsonProcess]]


@pytest.fixture
async def js_peer(js_ready: Path) -> AsyncIterator[JsFactory]:
    async with trio.open_nursery() as nursery:
        started: list[JsonProcess] = []

        async def start(protocol: str = "/micronetwork/kad/1.0.0") -> JsonProcess:
            config = json.dumps({"protocol": protocol})
            proc = await JsonProcess.start(
                nursery, [str(js_ready), str(JS_DIR / "peer.mjs"), config],
                stderr=subprocess.DEVNULL,
            )
            started.append(proc)
            return proc

        try:
            yield start
        finally:
            for p in started:
                await p.stop()
            nursery.cancel_scope.cancel()


@pytest.fixture(scope="session")
def p2pd_ready() -> None:
    try:
        ensure_p2pd()
    except Unavailable as exc:
        pytest.skip(f"go-libp2p daemon unavailable: {exc}")


@pytest.fixture
async def p2pd(p2pd_ready: None) -> AsyncIterator[Callable[..., Awaitable[Daemon]]]:
    async with trio.open_nursery() as nursery:
        started: list[Daemon] = []

        async def start(key_file: Path | None = None) -> Daemon:
            daemon = await Daemon.start(nursery, key_file)
            started.append(daemon)
            return daemon

        try:
            yield start
        finally:
            for d in started:
                await d.stop()
            nursery.cancel_scope.cancel()
