"""The `remotegrad` command: gateway, worker, cluster up, status, health, loadtest."""

from __future__ import annotations

import argparse
import sys

from remotegrad.proto.observability import setup_logging

from . import config


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="remotegrad", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    config.add_arguments(sub.add_parser("gateway", help="run a gateway"), config.GATEWAY)
    config.add_arguments(sub.add_parser("worker", help="run a worker"), config.WORKER)
    cluster = sub.add_parser("cluster", help="a local cluster")
    csub = cluster.add_subparsers(dest="action", required=True)
    config.add_arguments(csub.add_parser("up", help="run redis, a gateway and N workers "
                                         "in the foreground"), config.CLUSTER)
    status = sub.add_parser("status", help="print the cluster at a glance")
    status.add_argument("--address", default=None,
                        help="gateway address (env REMOTEGRAD_ADDR, default localhost:50051)")
    health = sub.add_parser("health", help="probe a gateway's or worker's gRPC health "
                            "(exit 0 when SERVING; for container healthchecks)")
    health.add_argument("--address", default="localhost:50051", help="host:port to probe")
    health.add_argument("--service", default="", help="service name (default: the server "
                        "as a whole, which goes NOT_SERVING when it drains)")
    health.add_argument("--server-name", default="", help="name expected on the server's "
                        "certificate (TLS, when REMOTEGRAD_TLS_CA is set)")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait")
    from remotegrad.loadtest.cli import add_arguments as add_loadtest_arguments
    add_loadtest_arguments(sub.add_parser("loadtest", help="a headless Locust load test"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(getattr(args, "log_level", "INFO"))
    if getattr(args, "redis_url", ""):
        # A bad URL is the operator's typo: one line naming the setting, before any process
        # (cluster up's workers, a gateway's threads) starts, not redis-py's traceback.
        from remotegrad.proto.redis_client import RedisURLError, check_url
        try:
            check_url(args.redis_url)
        except RedisURLError as e:
            print(f"remotegrad {args.command}: cannot start: {e}", file=sys.stderr)
            return 2
    if args.command == "gateway":
        from .serve import serve
        serve(args)
    elif args.command == "worker":
        from remotegrad.worker.service import serve
        serve(args)
    elif args.command == "cluster":
        from .cluster import up
        return up(args)
    elif args.command == "status":
        from .status import status
        return status(args)
    elif args.command == "health":
        from .status import health
        return health(args)
    elif args.command == "loadtest":
        from remotegrad.loadtest.cli import main as loadtest
        return loadtest(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
