"""docker-compose.yml, the Dockerfile and the Prometheus config, checked against the code:
every command, flag, variable and port they use exists and agrees. (No Docker engine runs
here; `docker-compose config` validates the compose schema when the tool is installed.)"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

from remotegrad.server import cli
from remotegrad.server.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
BY_ENV = {s.env: s for s in SETTINGS}
REMOTEGRAD = {name: svc for name, svc in SERVICES.items()
              if svc.get("command", [""])[0] == "remotegrad"}


def _value(text) -> str:
    """A compose value as the default interpolation gives it: `${V:-d}` is d, a required
    `${V:?message}` is `x`."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1",
                  re.sub(r"\$\{\w+:\?[^}]*\}", "x", str(text)))


def _redis_server_args(service: dict) -> list[str]:
    """redis-server's own argv in a `sh -c "... && exec redis-server ..."` command."""
    command = service["command"]
    assert command[:2] == ["sh", "-c"], command
    script = command[2].replace("$$", "$")
    return shlex.split(script.split("exec ", 1)[1])


def _parses(argv: list[str]) -> bool:
    try:
        cli._parser().parse_args(argv)
        return True
    except SystemExit:
        return False


def test_every_remotegrad_command_is_a_real_subcommand():
    assert set(REMOTEGRAD) == {"gateway", "worker", "worker-gpu"}
    for name, svc in REMOTEGRAD.items():
        assert _parses(svc["command"][1:]), f"{name}: {svc['command']} is not a valid command"


def test_every_variable_is_a_setting_of_that_command():
    for name, svc in REMOTEGRAD.items():
        command = svc["command"][1]
        for var, value in svc["environment"].items():
            assert var in BY_ENV, f"{name}: {var} is not a remotegrad setting"
            setting = BY_ENV[var]
            assert command in setting.commands, f"{name}: {var} is not used by `{command}`"
            if setting.type is not str:
                setting.type(_value(value))  # parses as the setting's type


def test_ports_agree():
    gw = SERVICES["gateway"]
    grpc_port = gw["environment"]["REMOTEGRAD_PORT"]
    assert [p.endswith(f":{grpc_port}:{grpc_port}") for p in gw["ports"]] == [True]
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    scraped = {n: c["port"] for job in prom["scrape_configs"] for c in job["dns_sd_configs"]
               for n in c["names"]}
    for name, svc in REMOTEGRAD.items():
        assert scraped[name] == int(svc["environment"]["REMOTEGRAD_METRICS_PORT"]), name
    volume = SERVICES["prometheus"]["volumes"][0].split(":")[0]
    assert (ROOT / volume).exists()


def test_redis_runs_with_maxmemory_and_lru_and_is_internal():
    cmd = _redis_server_args(SERVICES["redis"])
    assert "--maxmemory" in cmd and cmd[cmd.index("--maxmemory-policy") + 1] == "volatile-lru"
    assert SERVICES["redis"]["networks"] == ["internal"]
    assert COMPOSE["networks"]["internal"]["internal"] is True
    for name in ("worker", "worker-gpu", "redis"):
        assert "ports" not in SERVICES[name], f"{name} must not be reachable from clients"
    for name, svc in REMOTEGRAD.items():
        url = svc["environment"]["REMOTEGRAD_REDIS_URL"]
        assert url.startswith("redis://:${REMOTEGRAD_REDIS_PASSWORD:?"), name
        assert _value(url).startswith("redis://:x@redis:"), name


def test_redis_needs_a_password_that_is_in_no_argv():
    """Issue 15, items 2 and 13: the password is required, reaches redis-server through a
    0600 config file (not argv), and the healthcheck authenticates and wants PONG (an
    unauthenticated redis-cli ping exits 0 on NOAUTH)."""
    redis = SERVICES["redis"]
    script = redis["command"][2]
    assert script.startswith("umask 077 && printf 'requirepass %s")
    assert "requirepass" not in _redis_server_args(redis)
    assert _redis_server_args(redis)[1] == "/tmp/redis.conf"
    assert redis["user"] == "redis"
    for var in ("REDIS_PASSWORD", "REDISCLI_AUTH"):
        assert redis["environment"][var].startswith("${REMOTEGRAD_REDIS_PASSWORD:?"), var
    assert redis["healthcheck"]["test"] == ["CMD-SHELL", "redis-cli ping | grep -q PONG"]


def test_secure_by_default():
    """Issue 15, items 1 and 13: the worker secret is required everywhere, the gateway is
    published on the host's loopback unless REMOTEGRAD_PUBLISH says otherwise (and refuses
    to start without tokens unless REMOTEGRAD_ALLOW_ANONYMOUS), Prometheus only with its
    profile and on loopback."""
    for name, svc in REMOTEGRAD.items():
        assert svc["environment"]["REMOTEGRAD_WORKER_SECRET"].startswith(
            "${REMOTEGRAD_WORKER_SECRET:?"), name
    gw = SERVICES["gateway"]
    assert _value(gw["environment"]["REMOTEGRAD_ALLOW_ANONYMOUS"]) == "false"
    assert _value(gw["environment"]["REMOTEGRAD_TOKENS"]) == ""
    prom = SERVICES["prometheus"]
    assert prom["profiles"] == ["metrics"]
    for name, svc in SERVICES.items():
        for port in svc.get("ports", []):
            assert _value(port).startswith("127.0.0.1:"), f"{name} publishes {port}"


def test_gpu_profile_reserves_an_nvidia_device_and_uses_cupy():
    gpu = SERVICES["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["environment"]["REMOTEGRAD_BACKEND"] == "cupy"
    assert gpu["build"]["args"]["EXTRAS"] == "gpu"
    dev = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert dev["driver"] == "nvidia" and "gpu" in dev["capabilities"]


def test_dockerfile_is_multistage_nonroot_and_copies_real_folders():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in src.split():
            assert (ROOT / path).exists(), f"Dockerfile copies missing {path}"
    cmd = re.findall(r'^CMD \["remotegrad", "(\w+)"\]', text, re.M)
    assert cmd and _parses([cmd[-1]])
    assert "gpu" in (ROOT / "pyproject.toml").read_text()  # the EXTRAS=gpu build arg


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_file_passes_schema_validation():
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REMOTEGRAD_")}
    secrets = dict(clean, REMOTEGRAD_REDIS_PASSWORD="p" * 32, REMOTEGRAD_WORKER_SECRET="s" * 32)
    for files in (["docker-compose.yml"], ["docker-compose.yml", "deploy/compose.tls.yml"]):
        argv = ["docker-compose", *(f for name in files for f in ("-f", str(ROOT / name)))]
        out = subprocess.run([*argv, "config", "-q"], capture_output=True, text=True,
                             timeout=60, cwd=ROOT, env=secrets)
        assert out.returncode == 0, out.stderr
        # Without the secrets compose refuses, naming what is missing.
        out = subprocess.run([*argv, "config", "-q"], capture_output=True, text=True,
                             timeout=60, cwd=ROOT, env=clean)
        assert out.returncode != 0 and "REMOTEGRAD_" in out.stderr, out.stderr


def _duration(text: str) -> float:
    """A compose duration (`20s`, `1m30s`) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(text))
    assert parts and any(parts.groups()), f"not a duration: {text!r}"
    return int(parts.group(1) or 0) * 60 + int(parts.group(2) or 0)


def test_every_service_restarts_and_has_a_healthcheck():
    for name, svc in SERVICES.items():
        assert svc.get("restart") in ("always", "unless-stopped"), f"{name}: no restart policy"
        check = svc.get("healthcheck", {})
        assert check.get("test", [""])[0] in ("CMD", "CMD-SHELL"), f"{name}: no healthcheck"
        assert _duration(check["timeout"]) <= _duration(check["interval"]), name


def test_remotegrad_healthchecks_probe_grpc_health_on_the_serving_port():
    for name, svc in REMOTEGRAD.items():
        argv = svc["healthcheck"]["test"][1:]
        assert argv[:2] == ["remotegrad", "health"], f"{name}: {argv}"
        args = cli._parser().parse_args(argv[1:])
        host, port = args.address.rsplit(":", 1)
        assert host in ("localhost", "127.0.0.1"), name
        assert port == svc["environment"]["REMOTEGRAD_PORT"], f"{name} probes another port"
        assert args.server_name == svc["command"][1], f"{name}: TLS name {args.server_name}"


def test_depends_on_waits_for_health():
    for name, svc in SERVICES.items():
        for dep, how in svc.get("depends_on", {}).items():
            assert dep in SERVICES, f"{name} depends on missing {dep}"
            condition = how["condition"]
            assert condition in ("service_started", "service_healthy"), (name, dep)
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[dep], (name, dep)
    for name in ("gateway", "worker", "worker-gpu"):
        assert SERVICES[name]["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_stop_grace_period_outlasts_the_drain():
    grace = next(s for s in SETTINGS if s.name == "stop_grace")
    for name, svc in REMOTEGRAD.items():
        drain = float(svc["environment"].get(grace.env, grace.default))
        assert _duration(svc["stop_grace_period"]) > drain, f"{name}: SIGKILL before drained"
        assert drain < 30, name  # what orchestrators allow by default (Kubernetes: 30 s)


def test_tls_override_checks_redis_on_its_tls_port():
    tls = yaml.safe_load((ROOT / "deploy" / "compose.tls.yml").read_text())["services"]
    cmd = _redis_server_args(tls["redis"])
    check = tls["redis"]["healthcheck"]["test"]
    assert cmd[cmd.index("--port") + 1] == "0"  # plaintext off: the base check cannot work
    assert "requirepass" not in cmd and cmd[1] == "/tmp/redis.conf"
    assert check[0] == "CMD-SHELL" and check[1].endswith("ping | grep -q PONG")
    probe = shlex.split(check[1].split("|")[0])
    assert "--tls" in probe and probe[probe.index("-p") + 1] == cmd[cmd.index("--tls-port") + 1]
    url = yaml.safe_load((ROOT / "deploy" / "compose.tls.yml").read_text())["x-tls-env"][
        "REMOTEGRAD_REDIS_URL"]
    assert _value(url).startswith("rediss://:x@redis:6380/"), url


def test_dockerfile_copies_every_folder_of_the_package():
    import ast
    tree = ast.parse((ROOT / "setup.py").read_text())
    roots = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                 and getattr(n.targets[0], "id", "") == "ROOTS")
    copied = {p for src in re.findall(r"^COPY (?!--from)(.+) \S+$",
                                      (ROOT / "Dockerfile").read_text(), re.M)
              for p in src.split()}
    missing = set(roots.values()) - copied
    assert not missing, f"the image build fails without {sorted(missing)} (setup.py maps them)"
