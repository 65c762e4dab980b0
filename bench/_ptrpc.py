"""PyTorch's own remote path: torch.distributed.rpc over TensorPipe on loopback, two
processes (a client, rank 0, and a worker, rank 1), in both of its forms:

- dist: distributed autograd — rpc_sync runs the forward on the worker, then
  dist_autograd.backward and get_gradients on the client;
- grad: one rpc_sync whose function computes the gradient on the worker with
  torch.autograd.grad and returns it.

The functions the worker runs live at module level here, so RPC pickles them by name.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import numpy as np

# --- run on the worker ---------------------------------------------------------------


def seed_forward(x):
    return ((x * 2) ** 3).sum()


def seed_grad(x):
    import torch
    x = x.detach().requires_grad_(True)
    return torch.autograd.grad(((x * 2) ** 3).sum(), x)[0]


def _mlp_loss(params, x, y):
    import torch.nn.functional as F
    import torch
    h = torch.tanh(F.linear(x, params[0], params[1]))
    h = torch.tanh(F.linear(h, params[2], params[3]))
    return F.cross_entropy(F.linear(h, params[4], params[5]), y)


def mlp_forward(x, y, *params):
    return _mlp_loss(params, x, y)


def mlp_grad(x, y, *params):
    import torch
    params = [p.detach().requires_grad_(True) for p in params]
    loss = _mlp_loss(params, x, y)
    return (loss.detach(), *torch.autograd.grad(loss, params))


# --- the client ------------------------------------------------------------------------


def _client(n: int, steps: int, hidden: int, q) -> None:
    import torch
    import torch.distributed.autograd as dist_autograd
    import torch.distributed.rpc as rpc

    from remotegrad.loadtest.workloads import mlp_params
    torch.set_num_threads(1)
    gen = np.random.default_rng(0)
    res: dict[str, list[float]] = {}

    def timed(name, fn, count, warmup=20):
        for _ in range(warmup):
            fn()
        out = []
        for _ in range(count):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
        res[name] = out

    def seed_dist():
        x = torch.randn(3, 3, requires_grad=True)
        with dist_autograd.context() as cid:
            out = rpc.rpc_sync("worker", seed_forward, args=(x,))
            dist_autograd.backward(cid, [out])
            return dist_autograd.get_gradients(cid)[x]

    def seed_rpc():
        return rpc.rpc_sync("worker", seed_grad, args=(torch.randn(3, 3),))

    params = [torch.from_numpy(a) for a in mlp_params(hidden, np.random.default_rng(1234))]

    def batch():
        x = torch.from_numpy(gen.standard_normal((64, 784)).astype(np.float32))
        return x, torch.from_numpy(gen.integers(0, 10, 64))

    def mlp_dist(ps=params):
        ps = [p.detach().requires_grad_(True) for p in ps]
        x, y = batch()
        with dist_autograd.context() as cid:
            loss = rpc.rpc_sync("worker", mlp_forward, args=(x, y, *ps))
            dist_autograd.backward(cid, [loss])
            g = dist_autograd.get_gradients(cid)
            return loss, [g[p] for p in ps]

    def mlp_rpc(ps=params):
        x, y = batch()
        loss, *grads = rpc.rpc_sync("worker", mlp_grad, args=(x, y, *ps))
        return loss, grads

    timed("seed dist_autograd", seed_dist, n)
    timed("seed rpc_sync(autograd.grad)", seed_rpc, n)
    timed("mlp dist_autograd", mlp_dist, max(20, n // 10))
    timed("mlp rpc_sync(autograd.grad)", mlp_rpc, max(20, n // 10))
    for form, fn in (("dist_autograd", mlp_dist), ("rpc_sync(autograd.grad)", mlp_rpc)):
        ps = [p.clone() for p in params]
        step_times = []
        for _ in range(steps):
            t = time.perf_counter()
            _, grads = fn(ps)
            with torch.no_grad():
                ps = [p - 0.1 * g for p, g in zip(ps, grads)]
            step_times.append(time.perf_counter() - t)
        res[f"train step {form}"] = step_times
    q.put(res)


def _proc(rank: int, port: int, n: int, steps: int, hidden: int, tcp_only: bool, q) -> None:
    import torch
    import torch.distributed.rpc as rpc
    os.environ.setdefault("TP_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    extra = {"_transports": ["uv"], "_channels": ["basic"]} if tcp_only else {}
    opts = rpc.TensorPipeRpcBackendOptions(num_worker_threads=8,
                                           init_method=f"tcp://127.0.0.1:{port}",
                                           rpc_timeout=120, **extra)
    rpc.init_rpc("client" if rank == 0 else "worker", rank=rank, world_size=2,
                 rpc_backend_options=opts)
    if rank == 0:
        _client(n, steps, hidden, q)
    rpc.shutdown()


def run(n: int = 500, steps: int = 50, hidden: int = 256, tcp_only: bool = False,
        timeout: float = 600) -> dict:
    """Timings (seconds) of every PT-RPC call kind, from a client and a worker process.
    TensorPipe picks shared memory between processes of one machine; `tcp_only` pins it
    to its TCP transport (uv) and basic channel, as between two machines."""
    from _common import free_port
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_proc, args=(r, port, n, steps, hidden, tcp_only, q))
             for r in (0, 1)]
    for p in procs:
        p.start()
    try:
        res = q.get(timeout=timeout)
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    return {k: np.array(v) for k, v in res.items()}
