"""``micronetwork services | routes | call`` against a super node and the greeter example."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from test_cli import _lines

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "greeter.py"
CLI = [sys.executable, "-m", "micronetwork.cli.main"]


async def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process([*CLI, *args], capture_stdout=True, capture_stderr=True,
                                  check=False)


async def test_services_routes_and_call_from_the_command_line() -> None:
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            sup = await trio.lowlevel.open_process(
                [*CLI, "node", "--super"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
            lines = _lines(sup.stdout)
            await lines.__anext__()
            boot = (await lines.__anext__()).split("listening on ")[1].strip()
            svc = await trio.lowlevel.open_process(
                [sys.executable, str(EXAMPLE), "--bootstrap", boot, "--duration", "80"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
            line = await _lines(svc.stdout).__anext__()
            assert line.startswith("serving greeter 1.0.0 on 12D3KooW"), line
            served_by = line.split()[-1]

            result = await _run("services", "--bootstrap", boot)
            out = result.stdout.decode()
            assert result.returncode == 0, result.stderr.decode()
            header, row = out.splitlines()[:2]
            assert header.split() == ["SERVICE", "VERSION", "INSTANCES"]
            assert row.split() == ["greeter", "1.0.0", "1"]

            result = await _run("services", "greeter", "--bootstrap", boot)
            out = result.stdout.decode()
            assert served_by in out and "countdown" in out and "HelloRequest" in out, out

            result = await _run("call", "greeter", "hello", '{"name": "Ada", "excited": true}',
                                "--bootstrap", boot)
            assert result.returncode == 0, result.stderr.decode()
            answer = json.loads(result.stdout)
            assert answer == {"message": "Hello, Ada!", "served_by": served_by}

            result = await _run("routes", "--bootstrap", boot)
            out = result.stdout.decode().splitlines()
            assert out[0].split() == ["SERVICE", "ADDRESS", "GATEWAY", "ROUTER", "NETWORK",
                                      "METRIC", "LINK"]
            assert out[1].split()[0] == "greeter" and "/ip4/127.0.0.1/tcp/" in out[1]

            # Errors a user can act on: one line, exit 2, no traceback.
            for args, expected in (
                (("call", "greeter", "hello", '{"name": 5}'), "request.name"),
                (("call", "greeter", "hello", "{not json"), "not JSON"),
                (("call", "nosuch", "hello", "{}"), "not found"),
                (("call", "greeter", "hello", '{"name": ""}'), "invalid_argument"),
            ):
                result = await _run(*args, "--bootstrap", boot)
                err = result.stderr.decode()
                assert result.returncode == 2, (args, err)
                assert expected in err and "Traceback" not in err, (args, err)
            for p in (sup, svc):
                p.kill()
                await p.wait()
            nursery.cancel_scope.cancel()
