"""The one place a Redis client is made from a `--redis-url`, in any of three modes.

- `redis://[:password@]host:port/db`, `rediss://...` (TLS), `unix://[:password@]/path`:
  one Redis (redis-py's own URL forms and query options).
- `redis+sentinel://[:password@]host:port[,host:port...]/service[/db]`: the primary that
  the Sentinels name for `service`, found again after a failover (redis-py's Sentinel;
  the password is the data nodes'; `?sentinel_password=...` the Sentinels' own, if any).
  `rediss+sentinel://` speaks TLS to the data nodes.
- `redis+cluster://[:password@]host:port[,host:port...]`: a Redis Cluster (redis-py's
  RedisCluster; any reachable nodes as the seed, the others are discovered).
  `rediss+cluster://` speaks TLS.

Every caller (tensor store, result cache, registry, rate limiter) gets its client here,
so every one of them speaks every mode. Keys are designed for Cluster (proto/keys.py).
redis-py is imported only when a client is made.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}


class RedisURLError(ValueError):
    """A --redis-url that names no Redis (said at startup, not at the first call)."""


def mode(url: str) -> str:
    """"single", "sentinel" or "cluster"."""
    scheme = url.split("://", 1)[0].lower()
    return "sentinel" if scheme in SENTINEL_SCHEMES else \
        "cluster" if scheme in CLUSTER_SCHEMES else "single"


def check_url(url: str) -> None:
    """Raise RedisURLError, one line naming the setting, for a URL that names no Redis;
    connects to nothing (entry points call it before they start anything)."""
    kind = mode(url)
    if kind == "single":
        from redis.connection import parse_url
        try:
            parse_url(url)
        except ValueError as e:
            more = " or redis+sentinel://, redis+cluster://" if "scheme" in str(e) else ""
            raise RedisURLError(f"--redis-url {_shown(url)}: {e}{more}") from None
        return
    parts = urlsplit(url)
    _nodes(parts.netloc.rpartition("@")[2], url)
    if kind == "sentinel":
        _service(parts.path, url)


def connect(url: str, **options):
    """A redis-py client for `url`; `options` (socket_timeout, ...) go to every connection."""
    import redis
    check_url(url)
    kind = mode(url)
    if kind == "single":
        return redis.Redis.from_url(url, **options)
    parts = urlsplit(url)
    nodes = _nodes(parts.netloc.rpartition("@")[2], url)
    password = unquote(parts.password) if parts.password else None
    username = unquote(parts.username) if parts.username else None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    tls = (SENTINEL_SCHEMES if kind == "sentinel" else CLUSTER_SCHEMES)[parts.scheme.lower()]
    auth = dict(password=password, username=username or None, ssl=tls, **options)
    if tls and "ssl_ca_certs" in query:
        auth["ssl_ca_certs"] = query.pop("ssl_ca_certs")
    if kind == "cluster":
        from redis.cluster import ClusterNode, RedisCluster
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes], **auth)
    from redis.sentinel import Sentinel
    service, db = _service(parts.path, url)
    sentinel_auth = {k: v for k, v in options.items() if k.startswith("socket_")}
    if "sentinel_password" in query:
        sentinel_auth["password"] = query.pop("sentinel_password")
    sentinel = Sentinel(nodes, sentinel_kwargs=sentinel_auth, **auth)
    return sentinel.master_for(service, db=db)


def _nodes(hosts: str, url: str) -> list[tuple[str, int]]:
    out = []
    for item in filter(None, hosts.split(",")):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise RedisURLError(f"--redis-url {_shown(url)}: {item!r} is not host:port")
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise RedisURLError(f"--redis-url {_shown(url)}: no host:port given")
    return out


def _service(path: str, url: str) -> tuple[str, int]:
    """The Sentinel service name and database number of a sentinel URL's path."""
    segments = [unquote(s) for s in path.split("/") if s]
    if not segments or len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise RedisURLError(f"--redis-url {_shown(url)}: use redis+sentinel://host:port"
                            "[,host:port]/<service name>[/<db>]")
    return segments[0], int(segments[1]) if len(segments) == 2 else 0


def _shown(url: str) -> str:
    import re
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)
