"""The redis-server `cluster up` starts, reachable only by processes that know its password.

It listens on a unix socket in a folder only this user may enter (0700, made by mkdtemp)
and on no TCP port, and requires a password generated for this cluster. The password is
written in its config file (0600, in that folder), never in an argv (which every local
user can read in `ps`); the children get the URL, password included, through their
environment (REMOTEGRAD_REDIS_URL), which only this user and root can read. A restart of
redis-server reads the same file: same socket, same password.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass


@dataclass(frozen=True)
class LocalRedis:
    folder: str
    password: str
    argv: list[str]

    @property
    def socket(self) -> str:
        return os.path.join(self.folder, "redis.sock")

    @property
    def url(self) -> str:
        """What the children connect with (secret: pass it through the environment)."""
        return f"unix://:{self.password}@{self.socket}?db=0"

    @property
    def url_file(self) -> str:
        """A 0600 file holding `url`, for an operator's redis-cli or a test."""
        return os.path.join(self.folder, "url")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _private_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def prepare(exe: str, maxmemory: str) -> LocalRedis:
    """The folder, config file and command line of a fresh local redis-server."""
    if not re.fullmatch(r"\d+[kmg]?b?", maxmemory.strip().lower()):
        raise ValueError(f"redis maxmemory {maxmemory!r}: use bytes or a size such as 1gb")
    folder = tempfile.mkdtemp(prefix="remotegrad-redis-")  # 0700
    redis = LocalRedis(folder, secrets.token_urlsafe(32),
                       [exe, os.path.join(folder, "redis.conf")])
    config = [
        "port 0",  # no TCP: only the socket, whose folder only this user may enter
        f"unixsocket {redis.socket}", "unixsocketperm 700",
        f"requirepass {redis.password}",
        f"dir {folder}", 'save ""', "appendonly no",
        f"maxmemory {maxmemory.strip()}",
        # Evicts only keys with a TTL (the cache): kept tensors' durable copies have
        # none, so no pressure removes them (proto/kept.py says why not noeviction).
        "maxmemory-policy volatile-lru",
        "loglevel warning",
    ]
    _private_file(redis.argv[1], "\n".join(config) + "\n")
    _private_file(redis.url_file, redis.url + "\n")
    return redis


def redacted(url: str) -> str:
    """`url` with any password replaced by ***, for logs and the ready line."""
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)
