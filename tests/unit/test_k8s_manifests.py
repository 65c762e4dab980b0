"""deploy/k8s/, checked against the code: every command, flag, variable, port, probe and
secret the manifests use exists and agrees. No cluster runs here: `kubectl kustomize`
renders each overlay (skipped where kubectl is missing; the base is then read file by
file) and kubernetes-validate checks the output strictly against the Kubernetes schemas of
the oldest and the newest version the manifests support. One test starts a real gateway
and worker with the base's environment (and a redis-server with its password)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

from remotegrad.proto.grpc_server import GATEWAY_SERVICE, WORKER_SERVICE
from remotegrad.server import cli
from remotegrad.server.config import SETTINGS, memory_size

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BY_ENV = {s.env: s for s in SETTINGS}
KUBECTL = shutil.which("kubectl")
TARGETS = ["base", "overlays/dev", "overlays/gpu", "overlays/prod", "overlays/prod-cluster",
           "overlays/autoscaled"]
# Custom resources (components/keda, components/servicemonitor): not in the Kubernetes
# schemas; each is checked against the schema written from its project's published CRD
# reference (tests/data/).
CRD_SCHEMAS = {("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject.schema.json",
               ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.schema.json"}
# Native gRPC probes are GA from 1.27; 1.37 is the newest schema kubernetes-validate ships.
VERSIONS = ["1.27.0", "1.37.0"]
SECRET_SETTINGS = {"REMOTEGRAD_WORKER_SECRET", "REMOTEGRAD_TOKENS", "REMOTEGRAD_REDIS_URL"}
DOCKERFILE_UID = int(re.search(r"useradd .*--uid (\d+)", (ROOT / "Dockerfile").read_text())[1])
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize) missing")


def _secrets_env(folder: Path) -> None:
    (folder / "base" / "secrets.env").write_text(
        "redis-password=" + "a" * 32 + "\nworker-secret=" + "s" * 32 + "\ntokens=t=alice\n")


def _kustomize(folder: Path, target: str) -> subprocess.CompletedProcess:
    return subprocess.run([KUBECTL, "kustomize", str(folder / target)], capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of deploy/k8s with a made-up secrets.env (the real one is never committed)."""
    folder = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, folder, ignore=shutil.ignore_patterns("secrets.env"))
    _secrets_env(folder)
    return folder


def _raw_base() -> list[dict]:
    kust = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    return [d for name in kust["resources"]
            for d in yaml.safe_load_all((K8S / "base" / name).read_text()) if d]


_RENDERED: dict[str, list[dict]] = {}


def rendered(tree: Path, target: str) -> list[dict]:
    if target not in _RENDERED:
        if KUBECTL is None:
            if target != "base":
                pytest.skip("kubectl (with kustomize) missing: overlays are not rendered")
            _RENDERED[target] = _raw_base()
        else:
            out = _kustomize(tree, target)
            assert out.returncode == 0, out.stderr
            _RENDERED[target] = [d for d in yaml.safe_load_all(out.stdout) if d]
    return _RENDERED[target]


def _by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _workloads(docs: list[dict]) -> dict[str, dict]:
    return {**_by_kind(docs, "Deployment"), **_by_kind(docs, "StatefulSet")}


def _remotegrad_containers(docs: list[dict]):
    """(workload name, pod spec, container) of every container that runs `remotegrad`."""
    for name, w in _workloads(docs).items():
        pod = w["spec"]["template"]["spec"]
        for c in pod["containers"]:
            if c.get("command", [""])[0] == "remotegrad":
                yield name, pod, c


def _configmap_for(docs: list[dict], container: dict) -> dict[str, str]:
    maps = _by_kind(docs, "ConfigMap")
    data: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, f"{container['name']}: secrets go through secretKeyRef"
        name = source["configMapRef"]["name"]
        assert name in maps, f"{container['name']} reads missing ConfigMap {name}"
        data.update(maps[name]["data"])
    return data


def _environment(docs: list[dict], container: dict) -> dict[str, dict]:
    """Every variable the container gets: {name: {"value": ...} or {"valueFrom": ...}}."""
    env = {k: {"value": v} for k, v in _configmap_for(docs, container).items()}
    env.update({e["name"]: e for e in container.get("env", [])})
    return env


def _parses(argv: list[str]) -> bool:
    try:
        cli._parser().parse_args(argv)
        return True
    except SystemExit:
        return False


@needs_kubectl
@pytest.mark.parametrize("target", TARGETS)
def test_every_target_renders_and_none_without_the_secrets(tree, target, tmp_path):
    assert rendered(tree, target)
    bare = tmp_path / "k8s"
    shutil.copytree(tree, bare, ignore=shutil.ignore_patterns("secrets.env"))
    out = _kustomize(bare, target)
    assert out.returncode != 0 and "secrets.env" in out.stderr, out.stderr


@needs_kubectl
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_output_is_valid_against_the_kubernetes_schemas(tree, target, version):
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate missing")
    for doc in rendered(tree, target):
        if (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS:
            continue  # test_custom_resources_match_their_published_schemas
        validate.validate(doc, version, strict=True)  # raises ValidationError, naming the field
    # It does check: a misspelled field is refused.
    bad = next(d for d in rendered(tree, target) if d["kind"] == "Deployment")
    bad = yaml.safe_load(yaml.safe_dump(bad))
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grcp"] = {}
    with pytest.raises(validate.ValidationError):
        validate.validate(bad, version, strict=True)


def test_every_kustomization_lists_every_file_beside_it():
    for kust_path in K8S.rglob("kustomization.yaml"):
        folder = kust_path.parent
        kust = yaml.safe_load(kust_path.read_text())
        listed = {r for r in kust.get("resources", []) if not r.startswith("..")}
        listed |= {p["path"] for p in kust.get("patches", []) if "path" in p}
        present = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
        assert listed == present, f"{folder}: listed {sorted(listed)}, present {sorted(present)}"
        for ref in kust.get("resources", []):
            assert (folder / ref).exists(), f"{folder}: {ref} missing"
    ignored = (K8S / ".gitignore").read_text().split()
    assert "secrets.env" in ignored
    tracked = subprocess.run(["git", "ls-files", str(K8S)], capture_output=True, text=True,
                             cwd=ROOT).stdout
    assert "secrets.env" not in tracked, "a real secrets.env is committed"


@pytest.mark.parametrize("target", TARGETS)
def test_every_command_and_variable_is_a_setting_of_that_command(tree, target):
    docs = rendered(tree, target)
    seen = set()
    for name, _, c in _remotegrad_containers(docs):
        assert _parses(c["command"][1:] + c.get("args", [])), f"{name}: {c['command']}"
        command = c["command"][1]
        seen.add(command)
        for var, how in _environment(docs, c).items():
            if not var.startswith("REMOTEGRAD_"):
                continue
            assert var in BY_ENV, f"{name}: {var} is not a remotegrad setting"
            setting = BY_ENV[var]
            assert command in setting.commands, f"{name}: {var} is not used by `{command}`"
            if "value" in how and setting.type is not str:
                setting.type(how["value"])  # parses as the setting's type
    assert seen == {"gateway", "worker"}


@pytest.mark.parametrize("target", TARGETS)
def test_secrets_come_only_from_secrets(tree, target):
    docs = rendered(tree, target)
    secrets = _by_kind(docs, "Secret")
    for name, pod in ((n, w["spec"]["template"]["spec"]) for n, w in _workloads(docs).items()):
        for c in pod["containers"]:
            env = _environment(docs, c)
            for var, how in env.items():
                ref = how.get("valueFrom", {}).get("secretKeyRef")
                if ref and KUBECTL is not None:
                    assert ref["name"] in secrets, f"{name}: Secret {ref['name']} missing"
                    assert ref["key"] in secrets[ref["name"]]["data"], f"{name}: {ref}"
                if var in SECRET_SETTINGS or "PASSWORD" in var or var == "REDISCLI_AUTH":
                    if var == "REMOTEGRAD_REDIS_URL":
                        # The kubelet expands $(REDIS_PASSWORD), a secretKeyRef defined first.
                        # (test_every_redis_url_is_one_the_code_accepts parses it.)
                        assert re.match(r"redis(\+sentinel|\+cluster)?://:\$\(REDIS_PASSWORD\)@",
                                        how["value"]), how
                        names = [e["name"] for e in c["env"]]
                        assert names.index("REDIS_PASSWORD") < names.index(var)
                    else:
                        assert ref, f"{name}: {var} is not taken from a Secret"
    for cm in _by_kind(docs, "ConfigMap").values():
        assert not SECRET_SETTINGS & set(cm["data"]), f"{cm['metadata']['name']} holds a secret"


def _port(container: dict, name: str) -> int:
    return next(p["containerPort"] for p in container["ports"] if p["name"] == name)


@pytest.mark.parametrize("target", TARGETS)
def test_ports_probes_and_scrape_annotations_agree(tree, target):
    docs = rendered(tree, target)
    service = {"gateway": GATEWAY_SERVICE, "worker": WORKER_SERVICE}
    for name, _, c in _remotegrad_containers(docs):
        env = {k: v.get("value") for k, v in _environment(docs, c).items()}
        assert _port(c, "grpc") == int(env["REMOTEGRAD_PORT"]), name
        assert _port(c, "metrics") == int(env["REMOTEGRAD_METRICS_PORT"]), name
        assert env["REMOTEGRAD_HOST"] == "0.0.0.0", f"{name} would listen on loopback only"
        annotations = _workloads(docs)[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == _port(c, "metrics"), name
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = c.get(kind)
            if probe is None:
                assert kind == "startupProbe", f"{name}: no {kind}"
                continue
            if "grpc" in probe:
                assert probe["grpc"]["port"] == _port(c, "grpc"), f"{name} {kind}: port"
                assert probe["grpc"]["service"] == service[c["command"][1]], f"{name} {kind}"
            else:  # TLS: `remotegrad health`, which speaks it (the kubelet's probe does not)
                argv = probe["exec"]["command"]
                assert argv[:2] == ["remotegrad", "health"] and _parses(argv[1:]), argv
                args = cli._parser().parse_args(argv[1:])
                host, port = args.address.rsplit(":", 1)
                assert host == "localhost" and int(port) == _port(c, "grpc"), argv
                assert args.service == service[c["command"][1]], argv
                assert args.server_name == c["command"][1], argv  # a name on the cert
    for svc in _by_kind(docs, "Service").values():
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", "nothing is exposed outside"
        pods = [w["spec"]["template"] for w in _workloads(docs).values()
                if _selects(svc["spec"]["selector"], w["spec"]["template"])]
        assert pods, f"Service {svc['metadata']['name']} selects no pod"
        for port in svc["spec"]["ports"]:
            names = {p["name"] for t in pods for c in t["spec"]["containers"]
                     for p in c.get("ports", [])}
            assert port["targetPort"] in names, (svc["metadata"]["name"], port)
    # Workers are reached through the registry only: a Service that selects them (for
    # a ServiceMonitor, components/servicemonitor) carries their metrics port alone.
    for svc in _by_kind(docs, "Service").values():
        if svc["spec"]["selector"]["app.kubernetes.io/component"] == "worker":
            assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["metrics"], svc


def _selects(selector: dict, template: dict) -> bool:
    labels = template["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("target", TARGETS)
def test_selectors_match_their_pods(tree, target):
    docs = rendered(tree, target)
    workloads = _workloads(docs)
    for name, w in workloads.items():
        assert _selects(w["spec"]["selector"]["matchLabels"], w["spec"]["template"]), name
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for name, d in _by_kind(docs, kind).items():
            sel = (d["spec"].get("selector") or d["spec"]["podSelector"]).get("matchLabels", {})
            hits = [w for w in workloads.values() if _selects(sel, w["spec"]["template"])]
            assert hits, f"{kind} {name} selects no pod"
    for name, hpa in _by_kind(docs, "HorizontalPodAutoscaler").items():
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment" and ref["name"] in workloads, name
        pod = workloads[ref["name"]]["spec"]["template"]["spec"]
        assert all("cpu" in c["resources"]["requests"] for c in pod["containers"]), \
            f"HPA {name} on CPU needs CPU requests"


def _components(peers: list[dict]) -> set[str]:
    return {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in peers
            if "namespaceSelector" not in p}


@pytest.mark.parametrize("target", TARGETS)
def test_only_the_gateway_reaches_workers_and_only_remotegrad_reaches_redis(tree, target):
    policies = _by_kind(rendered(tree, target), "NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and "ingress" not in deny
    allowed = {}
    for p in policies.values():
        comp = p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
        for rule in p["spec"].get("ingress", []):
            ports = {port["port"] for port in rule["ports"]}
            allowed.setdefault(comp, []).append((_components(rule.get("from", [])), ports,
                                                 "from" in rule))
    worker = [(src, ports) for src, ports, has_from in allowed["worker"] if 50052 in ports]
    assert worker == [({"gateway"}, {50052})]
    if "redis" in _workloads(rendered(tree, target)):
        assert [(s, p) for s, p, _ in allowed["redis"]] == [({"gateway", "worker"}, {6379})]
    else:  # an external Redis: its own policies are its operator's
        assert "redis" not in allowed
    # Clients reach the gateway's gRPC port from anywhere, its metrics port only Prometheus.
    assert (set(), {50051}, False) in allowed["gateway"]
    assert all(not ports & {9100} or has_from for _, ports, has_from in allowed["gateway"])


@pytest.mark.parametrize("target", TARGETS)
def test_grace_period_outlasts_prestop_and_the_drain(tree, target):
    docs = rendered(tree, target)
    grace = next(s for s in SETTINGS if s.name == "stop_grace")
    for name, pod, c in _remotegrad_containers(docs):
        drain = float(_environment(docs, c).get(grace.env, {}).get("value", grace.default))
        sleep = c["lifecycle"]["preStop"]["exec"]["command"]
        assert sleep[0] == "sleep", sleep
        # The kubelet's countdown includes preStop; SIGKILL comes at the period's end.
        assert pod["terminationGracePeriodSeconds"] > float(sleep[1]) + drain, name


@pytest.mark.parametrize("target", TARGETS)
def test_pods_run_unprivileged(tree, target):
    for name, w in _workloads(rendered(tree, target)).items():
        pod = w["spec"]["template"]["spec"]
        ctx = pod["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] != 0, name
        assert ctx["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "memory" in c["resources"]["limits"], f"{name}: no memory limit"
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}: a read-only root needs a writable /tmp"
        if any(c.get("command", [""])[0] == "remotegrad" for c in pod["containers"]):
            assert ctx["runAsUser"] == DOCKERFILE_UID, f"{name}: not the image's user"


@pytest.mark.parametrize("target", TARGETS)
def test_worker_memory_budget_fits_its_container(tree, target):
    docs = rendered(tree, target)
    _, _, c = next(x for x in _remotegrad_containers(docs) if x[2]["command"][1] == "worker")
    env = _environment(docs, c)
    assert env["REMOTEGRAD_ADVERTISE_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    budget = memory_size(env["REMOTEGRAD_MEMORY_LIMIT"]["value"])
    backend = env["REMOTEGRAD_BACKEND"]["value"]
    cache = next(s for s in SETTINGS if s.name == "memory_cache_bytes")
    cached = int(env.get(cache.env, {}).get("value", cache.default))  # worker's tensor tier
    if backend == "numpy":
        # A fraction would be of the node's memory, not the container's; the rest of the
        # limit is the process's own (Python, gRPC, numpy): at least 512 MiB.
        assert isinstance(budget, int)
        assert budget + cached + (512 << 20) <= _bytes(c["resources"]["limits"]["memory"])
    else:
        assert backend == "cupy" and isinstance(budget, float)


def _bytes(quantity: str) -> int:
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", quantity)
    assert m, quantity
    return int(m[1]) << {None: 0, "Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40}[m[2]]


@needs_kubectl
def test_gpu_overlay_asks_for_a_gpu_and_uses_cupy(tree):
    docs = rendered(tree, "overlays/gpu")
    pod = _workloads(docs)["worker"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1  # extended resources: in limits
    assert c["image"].endswith(":gpu")
    assert _environment(docs, c)["REMOTEGRAD_BACKEND"]["value"] == "cupy"
    assert pod["nodeSelector"] and pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert "/home/remotegrad/.cupy" in {m["mountPath"] for m in c["volumeMounts"]}
    assert c["startupProbe"]["grpc"]["service"] == WORKER_SERVICE
    base = _workloads(rendered(tree, "base"))["worker"]["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in base["containers"][0]["resources"]["limits"]


@pytest.mark.parametrize("target", TARGETS)
def test_every_redis_url_is_one_the_code_accepts(tree, target):
    """Each REMOTEGRAD_REDIS_URL, its $(VAR)s filled with a dummy as the kubelet would
    fill them, passes the check the gateway and worker run at start."""
    from remotegrad.proto.redis_client import RedisURLError, check_url
    docs = rendered(tree, target)
    urls = [_environment(docs, c)["REMOTEGRAD_REDIS_URL"]["value"]
            for _, _, c in _remotegrad_containers(docs)]
    assert urls
    for url in urls:
        check_url(re.sub(r"\$\(\w+\)", "dummy", url))
    # It does check: a Sentinel URL without its service name is refused.
    with pytest.raises(RedisURLError):
        check_url("redis+sentinel://:dummy@redis-sentinel.redis.svc.cluster.local:26379")


def test_gpu_component_asks_for_a_gpu():
    """components/gpu, read as written (no kubectl needed): the worker's limits."""
    kust = yaml.safe_load((K8S / "components" / "gpu" / "kustomization.yaml").read_text())
    assert kust["kind"] == "Component"
    docs = [d for p in kust["patches"]
            for d in yaml.safe_load_all((K8S / "components" / "gpu" / p["path"]).read_text())]
    worker = next(d for d in docs if d["kind"] == "Deployment" and
                  d["metadata"]["name"] == "worker")
    c = worker["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    overlay = yaml.safe_load((K8S / "overlays" / "gpu" / "kustomization.yaml").read_text())
    assert "../../components/gpu" in overlay["components"]


@needs_kubectl
@pytest.mark.parametrize("target, mode", [("overlays/dev", "single"),
                                          ("overlays/prod", "sentinel"),
                                          ("overlays/prod-cluster", "cluster"),
                                          ("overlays/autoscaled", "sentinel")])
def test_each_overlay_uses_its_redis_mode(tree, target, mode):
    from remotegrad.proto.redis_client import mode as url_mode
    docs = rendered(tree, target)
    for name, _, c in _remotegrad_containers(docs):
        assert url_mode(_environment(docs, c)["REMOTEGRAD_REDIS_URL"]["value"]) == mode, name


@needs_kubectl
def test_prod_overlay_uses_an_external_redis_and_requires_tokens(tree):
    docs = rendered(tree, "overlays/prod")
    assert "redis" not in _workloads(docs) and "redis" not in _by_kind(docs, "Service")
    for name, _, c in _remotegrad_containers(docs):
        env = _environment(docs, c)
        host = env["REMOTEGRAD_REDIS_URL"]["value"].split("@", 1)[1].split(":")[0]
        assert host != "redis" and host.endswith(".svc.cluster.local"), (name, host)
        if c["command"][1] == "gateway":
            assert env["REMOTEGRAD_ALLOW_ANONYMOUS"]["value"] == "false"
            assert env["REMOTEGRAD_TOKENS"]["valueFrom"]["secretKeyRef"].get("optional") in (
                None, False)
    assert _by_kind(docs, "HorizontalPodAutoscaler")["gateway"]["spec"]["minReplicas"] >= 2


@needs_kubectl
def test_tls_component_mounts_the_certificates_every_setting_names(tree):
    docs = rendered(tree, "overlays/prod")
    for name, pod, c in _remotegrad_containers(docs):
        env = _environment(docs, c)
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert secrets.get("tls") == "remotegrad-tls", name
        for var in ("REMOTEGRAD_TLS_CERT", "REMOTEGRAD_TLS_KEY", "REMOTEGRAD_TLS_CA"):
            assert env[var]["value"].startswith(mounts["tls"] + "/"), (name, var)
        if c["command"][1] == "worker":
            assert env["REMOTEGRAD_TLS_CLIENT_AUTH"]["value"] == "true"  # mutual TLS
        else:
            assert env["REMOTEGRAD_TLS_SERVER_NAME"]["value"] == "worker"
        assert all("grpc" not in c[k] for k in ("readinessProbe", "livenessProbe")), name


def _pod_environment(docs: list[dict], container: dict, overrides: dict[str, str]) -> dict:
    """The variables the kubelet would give the container: ConfigMap keys, Secret values
    (decoded), the pod IP (here loopback), `$(VAR)` expanded from variables defined
    earlier; then `overrides` (ports and hosts a test on this machine must change)."""
    import base64
    secrets = _by_kind(docs, "Secret")
    env = dict(_configmap_for(docs, container))
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), e["value"])
        elif "secretKeyRef" in e["valueFrom"]:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()
        else:
            assert e["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
            env[e["name"]] = "127.0.0.1"
    for var, value in overrides.items():
        assert var in env, f"override of a variable the manifest does not set: {var}"
        env[var] = value
    return env


@needs_kubectl
@pytest.mark.integration
def test_the_base_environment_starts_a_working_gateway_and_worker(tree):
    """The gateway and the worker started with exactly the base's variables (only ports,
    the bind host and Redis's address changed for this machine) come up healthy, reach
    each other (worker secret) and Redis (password), take the Secret's token, compute, and
    stop within the pod's grace period less preStop."""
    import os
    import signal
    import time

    import numpy as np

    import remotegrad as torch
    from procs import PY, free_port, stop, wait_until
    docs = rendered(tree, "base")
    containers = {c["command"][1]: (pod, c) for _, pod, c in _remotegrad_containers(docs)}
    password = _pod_environment(docs, containers["worker"][1], {})["REDIS_PASSWORD"]
    redis_port, gw_port = free_port(), free_port()
    redis = subprocess.Popen([shutil.which("redis-server"), "-"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL)
    redis.stdin.write(f"port {redis_port}\nbind 127.0.0.1\nsave \"\"\n"
                      f"requirepass {password}\n".encode())  # a config file, not argv
    redis.stdin.close()
    url = f"redis://:{password}@127.0.0.1:{redis_port}/0"
    procs = [redis]
    try:
        for command, port in (("worker", free_port()), ("gateway", gw_port)):
            env = _pod_environment(docs, containers[command][1], {
                "REMOTEGRAD_HOST": "127.0.0.1", "REMOTEGRAD_PORT": str(port),
                "REMOTEGRAD_METRICS_PORT": str(free_port()), "REMOTEGRAD_REDIS_URL": url})
            clean = {k: v for k, v in os.environ.items() if not k.startswith("REMOTEGRAD_")}
            procs.append(subprocess.Popen([PY, "-m", "remotegrad.server.cli", command],
                                          env={**clean, **env}, stdout=subprocess.DEVNULL))
        probe = [PY, "-m", "remotegrad.server.cli", "health", "--address",
                 f"127.0.0.1:{gw_port}", "--service", GATEWAY_SERVICE]
        wait_until(lambda: subprocess.run(probe, capture_output=True).returncode == 0,
                   "the gateway's gRPC health", timeout=60, procs=procs)
        session = torch.connect(f"127.0.0.1:{gw_port}", token="t")
        # 128 KiB of inline leaf: more than a gateway computes itself, so a worker does.
        big = np.ones(32768, np.float32)
        wait_until(lambda: float((torch.from_numpy(big) * 2).sum()) == 65536.0,
                   "a call through the worker", timeout=30, procs=procs)
        session.close()
        torch.connect("local")
        for (command, (pod, c)), proc in zip(containers.items(), procs[1:][::-1]):
            assert proc.args[-1] == command
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            budget = pod["terminationGracePeriodSeconds"] - float(
                c["lifecycle"]["preStop"]["exec"]["command"][1])
            assert time.monotonic() - started < budget, f"{command} would be SIGKILLed"
    finally:
        for p in procs[::-1]:
            stop(p)


# --- custom resources: KEDA and prometheus-operator (components/keda, servicemonitor) ---

def _crd_validator(api_version: str, kind: str):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema missing")
    import json
    schema = json.loads((ROOT / "tests" / "data" / CRD_SCHEMAS[(api_version, kind)]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _custom(docs: list[dict]) -> list[dict]:
    return [d for d in docs if (d["apiVersion"], d["kind"]) in CRD_SCHEMAS]


@needs_kubectl
def test_custom_resources_match_their_published_schemas(tree):
    docs = _custom(rendered(tree, "overlays/autoscaled"))
    assert {d["kind"] for d in docs} == {"ScaledObject", "ServiceMonitor"}
    for doc in docs:
        errors = list(_crd_validator(doc["apiVersion"], doc["kind"]).iter_errors(doc))
        assert not errors, [f"{doc['kind']} {list(e.absolute_path)}: {e.message}" for e in errors]
    # The schemas do check: a misspelled field, a bad duration and a Prometheus trigger
    # without a threshold are each refused.
    so = next(d for d in docs if d["kind"] == "ScaledObject")
    sm = next(d for d in docs if d["kind"] == "ServiceMonitor")
    for doc, path, change in ((so, ["spec"], {"minReplicas": 1}),
                              (sm, ["spec", "endpoints", 0], {"interval": "15 seconds"}),
                              (so, ["spec", "triggers", 0, "metadata"], {"threshold": None})):
        bad = yaml.safe_load(yaml.safe_dump(doc))
        node = bad
        for key in path:
            node = node[key]
        for k, v in change.items():
            node.pop(k) if v is None else node.__setitem__(k, v)
        assert not _crd_validator(bad["apiVersion"], bad["kind"]).is_valid(bad), (path, change)
    # Every target but autoscaled renders none: they need CRDs a cluster may not have.
    for target in TARGETS:
        if target != "overlays/autoscaled":
            assert not _custom(rendered(tree, target)), target


def _exported_metrics() -> dict[str, str]:
    """Every series name proto/metrics.py exports, and the Python name of its metric."""
    from prometheus_client.metrics import MetricWrapperBase

    from remotegrad.proto import metrics
    out = {}
    for attr, m in vars(metrics).items():
        if isinstance(m, MetricWrapperBase):
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
            for suffix in suffixes.get(m._type, [""]):
                out[m._name + suffix] = attr
    return out


@needs_kubectl
def test_keda_scales_the_worker_deployment_on_a_gateway_metric(tree):
    docs = rendered(tree, "overlays/autoscaled")
    so = _by_kind(docs, "ScaledObject")["worker"]["spec"]
    ref = so["scaleTargetRef"]
    workloads = _workloads(docs)
    assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
    target = workloads[ref["name"]]
    assert target["spec"]["template"]["spec"]["containers"][0]["command"] == ["remotegrad",
                                                                               "worker"]
    # KEDA owns the worker's HPA: no other one on it, and no replica count to fight it.
    assert all(h["spec"]["scaleTargetRef"]["name"] != ref["name"]
               for h in _by_kind(docs, "HorizontalPodAutoscaler").values())
    assert "replicas" not in target["spec"]
    assert 1 <= so["minReplicaCount"] <= so["fallback"]["replicas"] <= so["maxReplicaCount"]
    exported = _exported_metrics()
    server_code = "".join(p.read_text() for p in (ROOT / "server").glob("*.py"))
    for trigger in so["triggers"]:
        assert trigger["type"] == "prometheus"
        meta = trigger["metadata"]
        names = re.findall(r"\b(remotegrad_\w+)", meta["query"])
        assert names, meta["query"]
        for name in names:
            assert name in exported, f"{name} is not a metric of proto/metrics.py"
            # ... and one the gateway sets (server/), not only the workers.
            assert f"metrics.{exported[name]}" in server_code, name
        # One worker per --max-inflight outstanding calls: beyond that, calls queue.
        _, _, worker = next(x for x in _remotegrad_containers(docs) if x[0] == ref["name"])
        inflight = _environment(docs, worker)["REMOTEGRAD_MAX_INFLIGHT"]["value"]
        assert float(meta["threshold"]) == float(inflight)
        # The series come from the gateways' metrics Service, which a ServiceMonitor scrapes.
        job = re.search(r'job="([^"]+)"', meta["query"])[1]
        svc = _by_kind(docs, "Service")[job]
        assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
        assert any(_labels_match(m, svc) for m in _by_kind(docs, "ServiceMonitor").values())


def _labels_match(monitor: dict, svc: dict) -> bool:
    wanted = monitor["spec"]["selector"].get("matchLabels", {})
    labels = svc["metadata"].get("labels", {})
    return (svc["metadata"].get("namespace") == monitor["metadata"].get("namespace")
            and all(labels.get(k) == v for k, v in wanted.items()))


@needs_kubectl
def test_servicemonitors_scrape_every_metrics_port(tree):
    docs = rendered(tree, "overlays/autoscaled")
    services = _by_kind(docs, "Service")
    scraped = set()
    for name, monitor in _by_kind(docs, "ServiceMonitor").items():
        hits = [s for s in services.values() if _labels_match(monitor, s)]
        assert len(hits) == 1, f"ServiceMonitor {name} selects {len(hits)} Services"
        svc = hits[0]
        ports = {p["name"]: p for p in svc["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports, (name, endpoint["port"])
            assert ports[endpoint["port"]]["targetPort"] == "metrics"
            assert endpoint.get("path", "/metrics") == "/metrics"
        for workload, w in _workloads(docs).items():
            if _selects(svc["spec"]["selector"], w["spec"]["template"]):
                port = _port(w["spec"]["template"]["spec"]["containers"][0], "metrics")
                assert ports["metrics"]["port"] == port, (name, workload)
                scraped.add(workload)
    assert scraped == {"gateway", "worker"}
