"""The grpcio (asyncio) side of ``rpc.py``, run in a subprocess of its own (grpcio's aio API
runs on asyncio; the other sides run on trio).

One process holds the server and the client: ``grpc.aio.server()`` with a generic handler
(``grpc.method_handlers_generic_handler`` + ``grpc.unary_unary_rpc_method_handler``, no
protoc) for ``/bench.Echo/Echo`` on ``127.0.0.1:0``, insecure (plaintext HTTP/2), and one
``grpc.aio.insecure_channel`` (one HTTP/2 connection, calls multiplexed as HTTP/2 streams).
Request and response are the body inside a CBOR map (``{"body": bytes}``, cbor2 as the
serializer), like the other sides' varint + CBOR framing; gRPC adds its own 5-byte message
prefix and HTTP/2 framing.

Per payload size: ``--warmup`` untimed calls, then ``--calls`` calls with ``--concurrency`` in
flight (calls/s, per-call latency p50/p99, CPU per call = ``time.process_time()`` of this
process -- client, server and grpc's C-core threads -- over the load / calls), then
``--seq-calls`` calls one at a time (latency p50/p99). Prints one JSON object on stdout.

    python benchmarks/_rpc_grpc.py --sizes 100 --calls 200 --seq-calls 20   # smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import _quantile  # noqa: E402

METHOD = "/bench.Echo/Echo"


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x]


def _serialize(msg: Any) -> bytes:
    import cbor2

    return cbor2.dumps(msg)  # type: ignore[no-any-return]


def _deserialize(data: bytes) -> Any:
    import cbor2

    return cbor2.loads(data)


async def _echo(request: Any, _context: Any) -> Any:
    return {"body": request["body"]}


async def _load(stub: Any, body: bytes, n: int, concurrency: int) -> dict[str, float]:
    lat: list[float] = []
    it = iter(range(n))

    async def worker() -> None:
        for _ in it:
            t0 = time.perf_counter()
            out = await stub({"body": body}, timeout=30.0)
            lat.append(time.perf_counter() - t0)
            if len(out["body"]) != len(body):
                raise RuntimeError("echo answered a different body")

    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    lat.sort()
    return {"calls": n, "seconds": elapsed, "calls_per_s": n / elapsed,
            "p50_ms": _quantile(lat, 0.5) * 1e3, "p99_ms": _quantile(lat, 0.99) * 1e3,
            "cpu_ms_per_call": cpu / n * 1e3}


async def _sequential(stub: Any, body: bytes, n: int) -> dict[str, float]:
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        await stub({"body": body}, timeout=30.0)
        lat.append(time.perf_counter() - t0)
    lat.sort()
    return {"seq_p50_ms": _quantile(lat, 0.5) * 1e3, "seq_p99_ms": _quantile(lat, 0.99) * 1e3}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import grpc

    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(
            _echo, request_deserializer=_deserialize, response_serializer=_serialize)})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    out: dict[str, Any] = {"grpcio": grpc.__version__, "results": {}}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = channel.unary_unary(METHOD, request_serializer=_serialize,
                                       response_deserializer=_deserialize)
            for size, calls, seq in zip(args.sizes, args.calls, args.seq_calls, strict=True):
                body = os.urandom(size)
                for _ in range(args.warmup):
                    await stub({"body": body}, timeout=30.0)
                res = await _load(stub, body, calls, args.concurrency)
                res.update(await _sequential(stub, body, seq))
                out["results"][str(size)] = res
    finally:
        await server.stop(grace=None)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=_ints, default=[100, 65536])
    ap.add_argument("--calls", type=_ints, default=[3000, 300])
    ap.add_argument("--seq-calls", type=_ints, default=[200, 50])
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    out = asyncio.run(asyncio.wait_for(run(args), args.timeout))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
