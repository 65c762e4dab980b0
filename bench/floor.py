"""How much of a remote gradient call is ours: remotegrad against bare gRPC echoes of the
same payload sizes, each server a separate process with a sync thread-pool server (as the
gateway and workers are).

- one-hop echo:  client → server
- two-hop echo:  client → proxy → server (the gateway → worker shape)
- two-hop, inner hop over a unix socket (a cheaper hop between gateway and worker)
- one-hop echo on a grpc.aio server (asyncio, no thread-pool hand-off)
- one-hop engine: a bench-only gRPC server that runs Compute with the worker engine in
  its own process (no Redis, no second hop): what a one-hop path for small graphs costs

Targets: the seed call's p50 at most 2x the two-hop floor; a cache hit at most 1.3x the
one-hop echo.

    .venv/bin/python bench/floor.py [--calls 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time

from _common import Client, environment, free_port, local_cluster, print_table, time_calls

from remotegrad.loadtest.workloads import RepeatWorkload, SeedWorkload

METHOD = "/bench.Echo/Call"
OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def _serve(bind: str, reply: bytes | None, upstream: str | None, ready) -> None:
    """An echo server (answers `reply`) or a proxy (forwards to `upstream`)."""
    from concurrent import futures

    import grpc
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=OPTIONS)
    if upstream:
        channel = grpc.insecure_channel(upstream, options=OPTIONS)
        forward = channel.unary_unary(METHOD)

        def handle(request, context):
            return forward(request, timeout=30)
    else:
        def handle(request, context):
            return reply
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(handle)}),))
    server.add_insecure_port(bind)
    server.start()
    ready.set()
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    while not stop[0]:
        time.sleep(0.1)
    server.stop(0)


def _serve_aio(bind: str, reply: bytes, ready) -> None:
    """The same echo on grpc.aio (asyncio server, no thread-pool hand-off)."""
    import asyncio

    import grpc

    async def handle(request, context):
        return reply

    async def run():
        server = grpc.aio.server(options=OPTIONS)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(handle)}),))
        server.add_insecure_port(bind)
        await server.start()
        ready.set()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.stop(0)
    asyncio.run(run())


def _serve_engine(bind: str, ready) -> None:
    """Gateway.Compute on the worker engine in this process (bench only)."""
    from concurrent import futures

    import grpc

    from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
    from remotegrad.worker.compute import MemoryTensorStore, compute

    class Inline(pb_grpc.GatewayServicer):
        def __init__(self):
            self.store = MemoryTensorStore()

        def Compute(self, request, context):  # noqa: N802
            return compute(request, self.store)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=OPTIONS)
    pb_grpc.add_GatewayServicer_to_server(Inline(), server)
    server.add_insecure_port(bind)
    server.start()
    ready.set()
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    while not stop[0]:
        time.sleep(0.1)
    server.stop(0)


class Procs:
    def __init__(self) -> None:
        self.ctx = mp.get_context("spawn")
        self.procs: list = []

    def start(self, target, *args) -> None:
        ready = self.ctx.Event()
        p = self.ctx.Process(target=target, args=(*args, ready), daemon=True)
        p.start()
        self.procs.append(p)
        if not ready.wait(60):
            raise RuntimeError(f"{target.__name__} did not start")

    def stop(self) -> None:
        for p in self.procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(environment())
    import grpc

    seed_req = SeedWorkload(seed=5).next_request()
    req_bytes = seed_req.SerializeToString()
    n = args.calls
    timings = []
    with local_cluster(args.workers) as address:
        client = Client(address)
        resp = client.compute(seed_req)
        reply = resp.SerializeToString()
        print(f"payload: request {len(req_bytes)} B, response {len(reply)} B")
        seed = SeedWorkload(seed=6)
        rep = RepeatWorkload(pool=4)

        def run(w):
            def call():
                r = w.next_request()
                client.compute(r)
                w.sent_ok(r)
            return call
        timings.append(time_calls("remotegrad seed (miss, 2 hops + redis)", run(seed), n))
        timings.append(time_calls("remotegrad seed repeat (cache hit, 1 hop)", run(rep), n))
        client.close()

    procs = Procs()
    tmp = tempfile.mkdtemp(prefix="rg-floor-")
    try:
        p_srv, p_proxy, p_uproxy, p_engine, p_aio = (free_port() for _ in range(5))
        sock = f"unix:{tmp}/echo.sock"
        procs.start(_serve, f"127.0.0.1:{p_srv}", reply, None)
        procs.start(_serve, sock, reply, None)
        procs.start(_serve, f"127.0.0.1:{p_proxy}", None, f"127.0.0.1:{p_srv}")
        procs.start(_serve, f"127.0.0.1:{p_uproxy}", None, sock)
        procs.start(_serve_engine, f"127.0.0.1:{p_engine}")
        procs.start(_serve_aio, f"127.0.0.1:{p_aio}", reply)
        for name, target in (("one-hop echo (tcp)", p_srv), ("two-hop echo (tcp, tcp)", p_proxy),
                             ("two-hop echo (tcp, unix socket)", p_uproxy),
                             ("one-hop echo (tcp, grpc.aio server)", p_aio)):
            ch = grpc.insecure_channel(f"127.0.0.1:{target}", options=OPTIONS)
            call = ch.unary_unary(METHOD)
            timings.append(time_calls(name, lambda c=call: c(req_bytes, timeout=30), n))
            ch.close()
        eng = Client(f"127.0.0.1:{p_engine}")
        w = SeedWorkload(seed=7)
        timings.append(time_calls("one-hop engine server (seed, no redis)",
                                  lambda: eng.compute(w.next_request()), n))
        eng.close()
    finally:
        procs.stop()
    print_table("remotegrad against bare gRPC echoes of the same payloads (single client)",
                timings)
    by = {t.name: t for t in timings}
    two, one = by["two-hop echo (tcp, tcp)"].p50, by["one-hop echo (tcp)"].p50
    miss = by["remotegrad seed (miss, 2 hops + redis)"].p50
    hit = by["remotegrad seed repeat (cache hit, 1 hop)"].p50
    print("\nratios (same run)")
    print(f"  seed miss / two-hop echo      {miss:7.3f} / {two:7.3f} ms = {miss / two:5.2f}x"
          "  target <= 2.0x")
    print(f"  cache hit / one-hop echo      {hit:7.3f} / {one:7.3f} ms = {hit / one:5.2f}x"
          "  target <= 1.3x")
    uds = by["two-hop echo (tcp, unix socket)"].p50
    eng_p50 = by["one-hop engine server (seed, no redis)"].p50
    print(f"  two-hop, inner unix socket / two-hop tcp  {uds / two:5.2f}x")
    print(f"  one-hop engine server / seed miss          {eng_p50 / miss:5.2f}x")
    aio = by["one-hop echo (tcp, grpc.aio server)"].p50
    print(f"  one-hop echo, aio server / sync server      {aio / one:5.2f}x")
    print(f"  ours (seed miss - two-hop echo)            {miss - two:7.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
