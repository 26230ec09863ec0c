"""The `micronetwork` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import trio

pytestmark = pytest.mark.integration


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "micronetwork.cli.main", *args],
        capture_output=True, text=True, timeout=timeout,
    )


def test_demo_shows_discovery_services_and_fail_over() -> None:
    result = run_cli("demo", "--peers", "4", "--duration", "0")
    out = result.stdout
    assert result.returncode == 0, result.stderr + out
    assert "16/16 lookups succeeded" in out
    assert "registry.get('greeter'): 2 instances" in out
    assert "stream clock.countdown(3) -> [3, 2, 1, 0]" in out
    assert "code='invalid_argument'" in out
    assert "saw 'deleted (withdrawn)'" in out
    views = out.split("== 6. network views")[1].splitlines()
    assert views[1].split() == ["SERVICE", "VERSION", "INSTANCES"]
    assert views[2].split() == ["clock", "0.3.0", "1"]
    assert views[3].split() == ["greeter", "1.1.0", "1"]
    assert "replayed from the super node's retention: order 1, order 2, order 3" in out
    assert "demo finished" in out


async def test_demo_serves_the_dashboard_and_the_api() -> None:
    import httpx

    with trio.fail_after(90):
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "micronetwork.cli.main", "demo", "--peers", "4",
             "--duration", "60", "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        try:
            url = ""
            async for line in _lines(proc.stdout):
                if "dashboard:" in line:
                    url = line.split("dashboard:")[1].split()[0].rstrip("/")
                    break
            assert url.startswith("http://127.0.0.1:"), url
            async with httpx.AsyncClient(timeout=10) as http:
                answer = await http.post(f"{url}/greeter/hello", json={"name": "Ada"})
                assert answer.status_code == 200 and answer.json()["message"] == "Hello, Ada."
                page = await http.get(f"{url}/")
                assert page.status_code == 200 and "<html" in page.text
                services = (await http.get(f"{url}/network/services")).json()
                assert "greeter" in json.dumps(services)
        finally:
            proc.kill()
            await proc.wait()


def test_bad_input_is_one_clear_line() -> None:
    result = run_cli("node", "--listen", "not-an-address", "--duration", "0")
    assert result.returncode == 2
    assert "not a valid multiaddr" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("node", "--bootstrap", "/ip4/127.0.0.1/tcp/1", "--duration", "0")
    assert result.returncode == 2 and "/p2p/" in result.stderr
    result = run_cli("demo", "--peers", "0")
    assert result.returncode == 2


def test_corrupt_key_file_is_refused(tmp_path) -> None:
    key = tmp_path / "node.key"
    key.write_bytes(b"not a key")
    result = run_cli("node", "--key", str(key), "--duration", "0")
    assert result.returncode == 2
    assert str(key) in result.stderr and "Traceback" not in result.stderr


async def test_node_command_prints_identity_and_logs_peers(tmp_path) -> None:
    key = tmp_path / "super.key"
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            sup = await trio.lowlevel.open_process(
                [sys.executable, "-m", "micronetwork.cli.main", "node", "--super",
                 "--key", str(key)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
            lines = _lines(sup.stdout)
            first = await lines.__anext__()
            assert first.startswith("super node 12D3KooW")
            addr_line = await lines.__anext__()
            assert addr_line.strip().startswith("listening on /ip4/127.0.0.1/tcp/")
            boot = addr_line.split("listening on ")[1].strip()
            peer = await trio.lowlevel.open_process(
                [sys.executable, "-m", "micronetwork.cli.main", "node", "--bootstrap", boot,
                 "--duration", "30"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
            peer_id = (await _lines(peer.stdout).__anext__()).split()[-1]
            async for line in lines:  # the super node logs the peer it found
                if "+ peer" in line and peer_id in line:
                    break
            for p in (sup, peer):
                p.kill()
                await p.wait()
            nursery.cancel_scope.cancel()
    assert key.exists()


async def _lines(stream):  # type: ignore[no-untyped-def]
    buf = b""
    async for chunk in stream:
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.decode()
