"""Sync thread-pool gRPC server or grpc.aio for the gateway? Measured, not guessed.

Each kind serves a unary echo of a seed-sized payload in its own process; one asyncio
client process keeps N calls in flight for a fixed time. Prints calls/s and p50/p99 per
concurrency, and the aio/threads ratio of calls/s.

    .venv/bin/python bench/server_kind.py [--seconds 3] [--payload 600]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import statistics
import time

METHOD = "/bench.Echo/Call"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_threads(port: int, ready) -> None:
    from concurrent import futures

    import grpc
    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Call": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    ready.set()
    server.wait_for_termination()


def _serve_aio(port: int, ready) -> None:
    import grpc

    async def echo(req, ctx):
        return req

    async def main():
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", {
            "Call": grpc.unary_unary_rpc_method_handler(echo)}),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.set()
        await server.wait_for_termination()
    asyncio.run(main())


async def _drive(port: int, concurrency: int, seconds: float, payload: bytes):
    import grpc
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary(METHOD)
        await call(payload)  # connect and warm up
        latencies: list[float] = []
        end = time.perf_counter() + seconds

        async def one():
            while time.perf_counter() < end:
                t = time.perf_counter()
                await call(payload)
                latencies.append(time.perf_counter() - t)
        await asyncio.gather(*(one() for _ in range(concurrency)))
    return len(latencies) / seconds, latencies


def _measure(target, concurrency: int, seconds: float, payload: bytes):
    port, ready = _port(), mp.Event()
    proc = mp.Process(target=target, args=(port, ready), daemon=True)
    proc.start()
    try:
        ready.wait(30)
        rate, lat = asyncio.run(_drive(port, concurrency, seconds, payload))
    finally:
        proc.terminate()
        proc.join(10)
    lat.sort()
    return rate, statistics.median(lat) * 1e3, lat[int(0.99 * (len(lat) - 1))] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--payload", type=int, default=600, help="bytes per request and reply")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    args = ap.parse_args()
    payload = b"x" * args.payload
    print(f"{'in flight':>9} | {'threads calls/s':>15} {'p50 ms':>7} {'p99 ms':>7} | "
          f"{'aio calls/s':>11} {'p50 ms':>7} {'p99 ms':>7} | aio/threads")
    for c in args.concurrency:
        t = _measure(_serve_threads, c, args.seconds, payload)
        a = _measure(_serve_aio, c, args.seconds, payload)
        print(f"{c:>9} | {t[0]:>15.0f} {t[1]:>7.2f} {t[2]:>7.2f} | "
              f"{a[0]:>11.0f} {a[1]:>7.2f} {a[2]:>7.2f} | {a[0] / t[0]:>10.2f}x")


if __name__ == "__main__":
    main()
