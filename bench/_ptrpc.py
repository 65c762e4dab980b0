"""PyTorch's own remote path: torch.distributed.rpc over TensorPipe on loopback, two
processes (a client, rank 0, and a worker, rank 1), in both of its forms:

- dist: distributed autograd — rpc_sync runs the forward on the worker, then
  dist_autograd.backward and get_gradients on the client;
- grad: one rpc_sync whose function computes the gradient on the worker with
  torch.autograd.grad and returns it.

The functions the worker runs live at module level here, so RPC pickles them by name.
`PtRpc` keeps both processes up and times a block of calls whenever asked.
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


# The resident form: the model and its optimiser live on the worker, as a PT-RPC user
# who trains remotely would keep them; the client sends a batch and gets the loss back.
_RESIDENT: dict = {}


def resident_init(hidden: int, optimizer: str, seed: int) -> None:
    import torch
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.Tanh(),
                                torch.nn.Linear(hidden, hidden), torch.nn.Tanh(),
                                torch.nn.Linear(hidden, 10))
    opt = (torch.optim.SGD(model.parameters(), lr=0.05) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=1e-3))
    _RESIDENT[optimizer] = (model, opt)


def resident_step(optimizer: str, x, y):
    import torch.nn.functional as F
    model, opt = _RESIDENT[optimizer]
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


# --- the client ------------------------------------------------------------------------

KINDS = ("seed dist_autograd", "seed rpc_sync(autograd.grad)", "mlp dist_autograd",
         "mlp rpc_sync(autograd.grad)", "train step dist_autograd",
         "train step rpc_sync(autograd.grad)", "train step resident sgd",
         "train step resident adam")


def _client(hidden: int, conn) -> None:
    """Answer (kind, n) with n timings (seconds) of that call, until told None."""
    import torch
    import torch.distributed.autograd as dist_autograd
    import torch.distributed.rpc as rpc

    from remotegrad.loadtest.workloads import mlp_params
    torch.set_num_threads(1)
    gen = np.random.default_rng(0)

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

    state = {"dist": [p.clone() for p in params], "rpc": [p.clone() for p in params]}

    def train(form, fn):
        def step():  # one SGD step: parameters out, gradients back, update here
            _, grads = fn(state[form])
            with torch.no_grad():
                state[form] = [p - 0.1 * g for p, g in zip(state[form], grads)]
        return step

    def resident(optimizer):
        rpc.rpc_sync("worker", resident_init, args=(hidden, optimizer, 0))

        def step():
            x, y = batch()
            return rpc.rpc_sync("worker", resident_step, args=(optimizer, x, y))
        return step

    calls = dict(zip(KINDS, (seed_dist, seed_rpc, mlp_dist, mlp_rpc, train("dist", mlp_dist),
                             train("rpc", mlp_rpc), resident("sgd"), resident("adam"))))
    while (msg := conn.recv()) is not None:
        kind, n = msg
        fn, out = calls[kind], []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
        conn.send(out)


def _proc(rank: int, port: int, hidden: int, tcp_only: bool, conn) -> None:
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
        _client(hidden, conn)
    rpc.shutdown()


class PtRpc:
    """A PT-RPC client and worker (two processes) that time calls on request, so that the
    benchmark can interleave them with remotegrad's calls: both then see the same machine
    load. TensorPipe picks shared memory between processes of one machine; `tcp_only`
    pins it to its TCP transport (uv) and basic channel, as between two machines."""

    def __init__(self, hidden: int = 256, tcp_only: bool = False) -> None:
        from _common import free_port
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        port = free_port()
        self.procs = [ctx.Process(target=_proc, args=(r, port, hidden, tcp_only,
                                                      child if r == 0 else None))
                      for r in (0, 1)]
        for p in self.procs:
            p.start()

    def time(self, kind: str, n: int, timeout: float = 600) -> list[float]:
        self.conn.send((kind, n))
        if not self.conn.poll(timeout):
            raise TimeoutError(f"PT-RPC {kind} did not answer in {timeout}s")
        return self.conn.recv()

    def close(self) -> None:
        try:
            self.conn.send(None)
        finally:
            for p in self.procs:
                p.join(timeout=60)
                if p.is_alive():
                    p.kill()
