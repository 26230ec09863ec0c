"""``micronetwork nodes | graph | services | routes | call --api URL`` against a running
node's gateway (in-process CLI in a worker thread, and once as a real process)."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import networkx as nx
import pytest
import trio
from gateway_net import network

from micronetwork.cli.main import main

pytestmark = pytest.mark.integration


async def cli(*argv: str) -> tuple[int, str, str]:
    """Run the CLI in a thread (it blocks on HTTP while the node serves it here)."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return main(list(argv))

    code = await trio.to_thread.run_sync(run)
    out.flush()
    return code, out.buffer.getvalue().decode(), err.getvalue()  # type: ignore[attr-defined]


async def test_views_from_the_command_line(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with network() as net:
            api = ("--api", net.gateway.url)
            sup, server = net.sup.peer_id.to_base58(), net.server.peer_id.to_base58()

            code, out, err = await cli("nodes", *api)
            assert code == 0, err
            lines = out.splitlines()
            assert lines[0].split() == ["ID", "ROLE", "ADDRESS", "LATENCY", "LAST", "SEEN",
                                        "SERVICES"]
            assert lines[1].startswith(f"{sup} *") and " super " in lines[1]
            row = next(line for line in lines if line.startswith(server))
            assert "peer" in row and "greeter,lab" in row and " ms " in row

            code, out, _ = await cli("graph", *api)
            assert out.splitlines()[0].split() == ["NODE", "ROLE", "PEER", "ROLE", "LATENCY"]
            assert len(out.splitlines()) >= 3  # at least the super node's two links
            code, out, _ = await cli("graph", *api, "--format", "dot", "--depth", "1")
            assert out.startswith('graph "micronetwork"') and sup in out
            for name in ("net.svg", "net.png", "net.graphml", "net.json"):
                code, _, err = await cli("graph", *api, "--out", str(tmp_path / name))
                assert code == 0 and "wrote" in err, err
            assert b"<svg" in (tmp_path / "net.svg").read_bytes()[:400]
            assert (tmp_path / "net.png").read_bytes().startswith(b"\x89PNG")
            assert len(nx.read_graphml(tmp_path / "net.graphml")) == 3
            assert len(json.loads((tmp_path / "net.json").read_text())["nodes"]) == 3

            code, out, err = await cli("services", *api)
            assert code == 0, err
            assert out.splitlines()[0].split() == ["SERVICE", "VERSION", "INSTANCES"]
            assert ["greeter", "1.0.0", "1"] in [line.split() for line in out.splitlines()]
            code, out, _ = await cli("services", "greeter", *api)
            assert server in out and "countdown" in out and "HelloRequest" in out
            code, out, err = await cli("call", "greeter", "hello", '{"name": "Ada"}', *api)
            assert code == 0, err
            assert json.loads(out) == {"message": "Hello, Ada.", "served_by": server}
            code, out, _ = await cli("call", "greeter", "countdown", "2", *api)
            assert out.split() == ["2", "1", "0"]
            code, out, err = await cli("routes", *api)
            assert out.splitlines()[0].split()[:3] == ["SERVICE", "ADDRESS", "GATEWAY"]
            assert any(line.startswith("greeter ") for line in out.splitlines())

            for argv, expected in (
                (("call", "greeter", "hello", '{"name": 5}', *api), "request.name"),
                (("call", "nosuch", "hello", "{}", *api), "not found"),
                (("services",), "--bootstrap ADDR"),
                (("nodes", "--api", "http://127.0.0.1:1"), "cannot reach"),
                (("graph", *api, "--out", str(tmp_path / "x.gif")), "format"),
            ):
                code, _, err = await cli(*argv)
                assert code == 2 and expected in err, (argv, err)

            # once as a real process, the way a user runs it
            result = await trio.run_process(
                [sys.executable, "-m", "micronetwork.cli.main", "nodes", *api],
                capture_stdout=True, capture_stderr=True, check=False)
            assert result.returncode == 0, result.stderr.decode()
            assert sup in result.stdout.decode()
