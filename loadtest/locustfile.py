"""The Locust user for a remotegrad gateway, driving the gRPC stubs directly.

Run headless through `remotegrad loadtest` (which uses this module as a library), or with
Locust's own command line:

    locust -f loadtest/locustfile.py --host 127.0.0.1:50051 --headless -u 8 -t 30s --mix mlp

Closed loop (default): each user sends its next call as soon as the last one answered, so
the rate is whatever the cluster sustains. Open loop (`--rate R`): calls arrive on a fixed
schedule, R per second over all users, each in its own greenlet, and latency is counted
from the moment the call was due; an arrival that finds `--max-outstanding` calls of its
user still in flight is recorded as a CLIENT_BUSY failure instead of being delayed, so a
saturated cluster shows up as failures and growing latency, not as a quietly lower rate.
"""

from __future__ import annotations

import itertools
import random
import time

from remotegrad.loadtest import _gevent

_gevent.init()  # before any channel is made

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import grpc  # noqa: E402
from locust import User, constant, events, task  # noqa: E402

from remotegrad.loadtest.options import MIXES, Settings, add_workload_arguments  # noqa: E402
from remotegrad.loadtest.report import Call, Recorder  # noqa: E402
from remotegrad.loadtest.workloads import make_workload  # noqa: E402
from remotegrad.proto import remotegrad_pb2 as pb  # noqa: E402
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc  # noqa: E402

SETTINGS = Settings()
RECORDER = Recorder()
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1),
                   ("grpc.max_receive_message_length", -1)]
_user_ids = itertools.count()
_pools: list[gevent.pool.Pool] = []


@events.init_command_line_parser.add_listener
def _add_options(parser, **_kw) -> None:
    add_workload_arguments(parser)


@events.init.add_listener
def _read_options(environment, **_kw) -> None:
    opts = getattr(environment, "parsed_options", None)
    if opts is not None and hasattr(opts, "mix"):
        for k, v in vars(Settings.from_namespace(opts)).items():
            if k != "target":
                setattr(SETTINGS, k, v)
    if environment.host:
        SETTINGS.target = environment.host


def stop_all() -> None:
    """Kill the open-loop greenlets still in flight (the runner kills only the users)."""
    for p in _pools:
        p.kill(block=False)
    _pools.clear()


class RemotegradUser(User):
    """One client with its own channel; its calls follow the mix's weights."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.id = next(_user_ids)
        self.channel = grpc.insecure_channel(self.environment.host or SETTINGS.target,
                                             options=CHANNEL_OPTIONS)
        self.stub = pb_grpc.GatewayStub(self.channel)
        mix = MIXES[SETTINGS.mix]
        options = dict(param_mib=SETTINGS.param_mib, mib=SETTINGS.upload_mib,
                       ops=SETTINGS.ops, numel=SETTINGS.numel, hit_ratio=SETTINGS.hit_ratio)
        self.workloads = [make_workload(n, seed=SETTINGS.seed * 100_003 + self.id, **options)
                          for n in mix]
        self.weights = list(mix.values())
        self.rng = random.Random(SETTINGS.seed * 7919 + self.id)
        self.pool = gevent.pool.Pool(SETTINGS.max_outstanding)
        _pools.append(self.pool)

    def on_stop(self) -> None:
        self.pool.kill(block=False)
        self.channel.close()

    def pick(self):
        if len(self.workloads) == 1:
            return self.workloads[0]
        return self.rng.choices(self.workloads, self.weights)[0]

    def call(self, wl, due_wall: float, due: float) -> None:
        req = wl.next_request()
        code, hit, nin, exc, nout, resent = "OK", False, 0, None, req.ByteSize(), False
        try:
            try:
                resp = self.stub.Compute(req, timeout=SETTINGS.call_timeout)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                # The cluster evicted leaves sent earlier: send them again inline, once,
                # as the SDK does; the call's latency includes both attempts.
                wl.mark_lost()
                req = wl.next_request()
                nout += req.ByteSize()
                resent = True
                resp = self.stub.Compute(req, timeout=SETTINGS.call_timeout)
            wl.sent_ok(req)
            hit, nin = resp.cache_hit, resp.ByteSize()
        except grpc.RpcError as e:
            code, exc = e.code().name, e
        latency = time.perf_counter() - due
        RECORDER.add(Call(due_wall, latency, wl.name, code, hit, nout, nin, resent))
        self.environment.events.request.fire(
            request_type="grpc", name=f"Compute/{wl.name}", response_time=latency * 1e3,
            response_length=nin, exception=exc, context={"cache_hit": hit})

    def refuse(self, wl, due_wall: float) -> None:
        RECORDER.add(Call(due_wall, 0.0, wl.name, "CLIENT_BUSY", False, 0, 0, False))
        self.environment.events.request.fire(
            request_type="grpc", name=f"Compute/{wl.name}", response_time=0.0,
            response_length=0, exception=RuntimeError("CLIENT_BUSY"), context={})

    def open_loop(self) -> None:
        runner = self.environment.runner
        users = max(1, getattr(runner, "target_user_count", None) or 1)
        interval = users / SETTINGS.rate
        due = time.perf_counter() + self.rng.random() * interval  # stagger the users
        offset = time.time() - time.perf_counter()
        while True:
            delay = due - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            wl = self.pick()
            if self.pool.full():
                self.refuse(wl, due + offset)
            else:
                self.pool.spawn(self.call, wl, due + offset, due)
            due += interval

    @task
    def compute(self) -> None:
        if SETTINGS.rate > 0:
            self.open_loop()
        else:
            now = time.perf_counter()
            self.call(self.pick(), time.time(), now)


def cluster_status(target: str, timeout: float = 5.0) -> pb.ClusterStatusResponse | None:
    try:
        with grpc.insecure_channel(target) as ch:
            return pb_grpc.GatewayStub(ch).ClusterStatus(pb.ClusterStatusRequest(),
                                                        timeout=timeout)
    except grpc.RpcError:
        return None
