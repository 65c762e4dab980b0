"""The compose files keep workers and Redis off the client network and take secrets from
files or variables at run time, never from the image (no Docker engine runs here:
the files are read and `docker-compose config` validates them when it is installed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

from remotegrad.server.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
TLS = yaml.safe_load((ROOT / "deploy" / "compose.tls.yml").read_text())
BY_ENV = {s.env: s for s in SETTINGS}
SECRET_VARS = {"REMOTEGRAD_TOKENS", "REMOTEGRAD_TOKENS_FILE", "REMOTEGRAD_TLS_CERT",
               "REMOTEGRAD_TLS_KEY", "REMOTEGRAD_TLS_CA"}


def test_workers_and_redis_unreachable_from_clients():
    for name in ("redis", "worker", "worker-gpu"):
        assert "ports" not in BASE["services"][name] and "ports" not in TLS["services"][name]
        assert BASE["services"][name]["networks"] == ["internal"]
        assert "networks" not in TLS["services"][name]  # the override adds no network
    assert BASE["networks"]["internal"]["internal"] is True


def test_secrets_come_from_variables_or_mounted_files():
    gw = BASE["services"]["gateway"]["environment"]
    assert re.fullmatch(r"\$\{REMOTEGRAD_TOKENS(:-)?\}", gw["REMOTEGRAD_TOKENS"])
    for name, svc in TLS["services"].items():
        command = "gateway" if name == "gateway" else "worker"
        for var, value in (svc.get("environment") or {}).items():
            assert var in BY_ENV and command in BY_ENV[var].commands, (name, var)
            if var in SECRET_VARS:
                assert value.startswith("/run/secrets/"), (name, var, value)
        for secret in svc.get("secrets", []):
            assert secret in TLS["secrets"], (name, secret)
    for secret in TLS["secrets"].values():
        assert secret["file"].startswith("./deploy/secrets/")
    ignored = (ROOT / "deploy" / "secrets" / ".gitignore").read_text().split()
    assert "*" in ignored


def test_image_holds_no_secret():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith(("COPY", "ADD")):
            assert "deploy" not in line and "secret" not in line.lower(), line
        if line.startswith(("ENV", "ARG")):
            assert not re.search(r"TOKEN|KEY|CERT|PASSWORD", line), line
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert {"deploy/secrets", "**/*.pem", "**/*.key"} <= set(ignore)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose missing")
def test_compose_with_tls_override_validates():
    # The compose files require these (they refuse to start without them).
    env = dict(os.environ, REMOTEGRAD_REDIS_PASSWORD="p" * 32,
               REMOTEGRAD_WORKER_SECRET="s" * 32)
    out = subprocess.run(["docker-compose", "-f", "docker-compose.yml", "-f",
                          "deploy/compose.tls.yml", "config", "-q"], cwd=ROOT,
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
