"""gevent for gRPC, done once and in the right order.

Locust runs every User in a greenlet. grpcio's blocking calls only yield to other greenlets
after `grpc.experimental.gevent.init_gevent()`, which must run after the standard library
is monkey-patched and before any channel is made. Every module of this package that makes
channels under Locust calls `init()` first.
"""

from __future__ import annotations

_done = False


def init() -> None:
    global _done
    if _done:
        return
    from gevent import monkey
    if not monkey.is_module_patched("socket"):
        monkey.patch_all()
    import grpc.experimental.gevent as grpc_gevent
    grpc_gevent.init_gevent()
    _done = True
