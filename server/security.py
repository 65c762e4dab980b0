"""Who is calling: bearer tokens mapped to tenants, and a per-tenant rate limit, applied
to every call by one gRPC server interceptor (health checks stay open for probes).

Tokens come from a file of `token=tenant` lines or a variable of such pairs, never from
the image. `token=tenant:operator` also gives the token the operator's view of
ClusterStatus (every worker's address and load, the gateway's cache counters); a tenant's
token sees only what is its own (server/scope.py). Only SHA-256 digests of the tokens
are kept in memory, and a lookup compares digests, so the time it takes says nothing
about how much of a token was right.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import threading
import time
from pathlib import Path

import grpc

from remotegrad.proto import keys
from remotegrad.proto.peer import refusal

DEFAULT_TENANT = "default"
OPERATOR = "operator"  # the one role a `token=tenant:operator` line may name
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
LIMITED_PREFIX = "/remotegrad.v1.Gateway/"


class Auth:
    """token → tenant. With no tokens configured every caller is the default tenant."""

    def __init__(self, pairs: dict[str, str] | None = None) -> None:
        self._by_digest = {}
        self._operators: set[bytes] = set()
        for token, entry in (pairs or {}).items():
            if not token:
                raise ValueError("empty token")
            tenant, marked, role = entry.partition(":")
            if marked and role != OPERATOR:
                raise ValueError(f"token role {role!r}: the only one is `{OPERATOR}` "
                                 f"(`token=tenant:{OPERATOR}`)")
            if keys.TENANT.fullmatch(tenant) is None:  # one rule, where keys are made
                raise ValueError(f"tenant name {tenant!r}: use 1-64 letters, digits, _ . -")
            self._by_digest[_digest(token)] = tenant
            if marked:
                self._operators.add(_digest(token))

    @classmethod
    def from_args(cls, args) -> Auth:
        return cls(_pairs(args))

    @staticmethod
    def first_token(args) -> str | None:
        """A configured token (for a launcher's own readiness checks)."""
        return next(iter(_pairs(args)), None)

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def tenant(self, metadata) -> str | None:
        """The caller's tenant from `authorization: Bearer <token>`; None when required
        and missing or unknown."""
        if not self.enabled:
            return DEFAULT_TENANT
        digest = _bearer(metadata)
        return None if digest is None else self._by_digest.get(digest)

    def operator(self, metadata) -> bool:
        """Whether the caller sees the whole cluster: with no tokens configured, every
        caller (there is one tenant, on a gateway that listens on loopback unless
        --allow-anonymous); otherwise the holder of a token marked `:operator`."""
        if not self.enabled:
            return True
        digest = _bearer(metadata)
        return digest is not None and digest in self._operators


def _bearer(metadata) -> bytes | None:
    """The digest of the token in `authorization: Bearer <token>`, if there is one."""
    for key, value in metadata or ():
        if key == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token:
                return _digest(token.strip())
    return None


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps a server reachable from this machine only."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name (or 0.0.0.0's spellings): it may face a network


def exposure_error(host: str, auth: Auth, allow_anonymous: bool) -> str | None:
    """Why a gateway must not start: no tokens while it listens beyond loopback (any caller
    would be the default tenant). None when it may."""
    if auth.enabled or allow_anonymous or is_loopback(host):
        return None
    return (f"no tokens are configured and --host {host} is not a loopback address: anyone "
            "who reaches it would be served as the default tenant. Set REMOTEGRAD_TOKENS or "
            "--tokens-file, bind 127.0.0.1, or pass --allow-anonymous true to accept that")


def _pairs(args) -> dict[str, str]:
    """`token=tenant` pairs from --tokens-file and --tokens."""
    pairs: dict[str, str] = {}
    text = ""
    if getattr(args, "tokens_file", ""):
        text += Path(args.tokens_file).read_text() + "\n"
    text += getattr(args, "tokens", "") or ""
    for raw in re.split(r"[,\n]", text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        token, sep, tenant = line.rpartition("=")
        if not sep:
            raise ValueError("tokens: expected `token=tenant` pairs")
        pairs[token.strip()] = tenant.strip()
    return pairs


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# One tenant's token bucket in Redis, shared by every gateway on it: refilled at `rate` a
# second from the last call (Redis's clock, so the gateways' clocks do not matter), one token
# taken per call. The key lives as long as a bucket takes to fill; gone is full.
_BUCKET_LUA = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local v = redis.call('HMGET', KEYS[1], 'level', 'ts')
local level = tonumber(v[1]) or burst
local last = tonumber(v[2]) or now
level = math.min(burst, level + math.max(0, now - last) * rate)
local ok = 0
if level >= 1 then
  level = level - 1
  ok = 1
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return ok
"""


class RateLimiter:
    """A token bucket per tenant: `rate` calls a second, up to `burst` at once.

    With `redis_url` the bucket lives in Redis (one Lua script per call), so every gateway
    on that Redis draws from it and the limit holds for the cluster. While Redis cannot be
    reached the gateway falls back to its own bucket (each gateway then admits the rate),
    tried again a second later (proto/store.py's Breaker)."""

    TIMEOUT = 0.25  # seconds a call waits for Redis before the local bucket decides

    def __init__(self, rate: float, burst: int = 0, redis_url: str = "",
                 on_error=lambda op: None) -> None:
        self.rate = rate
        self.burst = float(burst or max(1.0, rate))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._script = self._breaker = None
        if redis_url and rate > 0:
            from remotegrad.proto.redis_client import connect
            from remotegrad.proto.store import Breaker
            client = connect(redis_url, socket_timeout=self.TIMEOUT,
                             socket_connect_timeout=self.TIMEOUT)
            self._script = client.register_script(_BUCKET_LUA)
            self._breaker = Breaker("rate limiter", on_error)

    @property
    def shared(self) -> bool:
        return self._script is not None

    def allow(self, tenant: str) -> bool:
        if self.rate <= 0:
            return True
        if self._script is not None:
            shared = self._breaker.call("rate", lambda: self._script(
                keys=[keys.rate_key(tenant)], args=[self.rate, self.burst]), None)
            if shared is not None:
                return bool(shared)
        return self._local(tenant)

    def _local(self, tenant: str) -> bool:
        now = time.monotonic()
        with self._lock:
            level, last = self._buckets.get(tenant, (self.burst, now))
            level = min(self.burst, level + (now - last) * self.rate)
            if level < 1.0:
                self._buckets[tenant] = (level, now)
                return False
            self._buckets[tenant] = (level - 1.0, now)
            return True


class AuthInterceptor(grpc.ServerInterceptor):
    """UNAUTHENTICATED without a known token, RESOURCE_EXHAUSTED past the tenant's rate;
    health checks pass untouched."""

    def __init__(self, auth: Auth, limiter: RateLimiter | None = None, on_refused=None) -> None:
        self.auth, self.limiter = auth, limiter
        self._on_refused = on_refused or (lambda method, code: None)

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.startswith(OPEN_PREFIXES):
            return continuation(handler_call_details)
        tenant = self.auth.tenant(handler_call_details.invocation_metadata)
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        if tenant is None:
            self._on_refused(method, "UNAUTHENTICATED")
            return refusal(handler, grpc.StatusCode.UNAUTHENTICATED,
                            "missing or unknown token: send `authorization: Bearer <token>`")
        if (self.limiter is not None and method.startswith(LIMITED_PREFIX)
                and not method.endswith("/ClusterStatus") and not self.limiter.allow(tenant)):
            self._on_refused(method, "RESOURCE_EXHAUSTED")
            return refusal(handler, grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"tenant {tenant!r} is over its rate limit of "
                            f"{self.limiter.rate:g} calls/s; retry later")
        return handler
