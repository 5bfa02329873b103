"""The chart runs: every workload's command and environment come from the rendered chart (the
real Helm engine), and those processes carry a permit to the chart's sandbox and answer a
pass-through call. Nothing is set by hand but chart values, so the chart cannot drift from
the code.

The test plays Kubernetes, and only where a process meets it:

- a container's environment is its ``envFrom`` (the render's own ConfigMap and Secret), then
  its ``env``: literal values with ``$(VAR)`` expanded, ``secretKeyRef`` / ``configMapKeyRef``
  read from the same render, ``fieldRef`` ``status.podIP`` as 127.0.0.1; anything else fails;
- a Service name and port in a value (``name``, ``name.ns``, ``name.ns.svc``,
  ``name.ns.svc.cluster.local``) is routed as kube-proxy would: to 127.0.0.1 and the
  ``containerPort`` its ``targetPort`` names in the one workload (Deployment, StatefulSet) its
  selector picks;
- ``worker.dataDir`` is a directory of the test: in a pod it is the mount of the pod's own
  volume (its PersistentVolumeClaim, or an emptyDir without ``worker.persistence``).

Values set: the tests' broker, a fresh topic prefix (``stack_env``), free container ports
(the gateway's vendor and operations ports among them),
partitions 3, ``kafka.producerBatchMessages`` 1 (Tansu), the tests' tokens and client, the
sandbox switched on, one grant (hotspot: profiles/types/list), and one replica in sync of
every topic (one broker).
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import httpx
import pytest
import yaml

from tests.conftest import CLIENT, VENDOR, VENDOR_TOKEN
from tests.e2e.conftest import wait_until
from tests.support.examples import PERMIT_PUSH_EXAMPLE

CHART = Path(__file__).resolve().parents[2] / "helm" / "parkstream"
RELEASE = "ps"
NAMESPACE = "parking"
POD_IP = "127.0.0.1"
REFERENCE_SECRET = "chart-e2e-reference-secret-0001"
BANNER_TOKEN = "banner-test-token-0002"  # tests/conftest.py's second vendor
BIN = Path(sys.executable).parent  # where the image would have `parkstream` on its PATH


def chart_values(stack_env: dict[str, str], data_dir: Path) -> dict[str, Any]:
    """The chart's values for the tests' broker, topics, ports and tokens."""
    values = {
        "kafka": {
            "bootstrapServers": stack_env["PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS"],
            "producerBatchMessages": int(stack_env["PARKSTREAM_PRODUCER_BATCH_MESSAGES"]),
        },
        "topics": {
            "prefix": stack_env["PARKSTREAM_TOPIC_PREFIX"],
            "partitions": int(stack_env["PARKSTREAM_TOPIC_PARTITIONS"]),
        },
        "controller": {"client": stack_env["PARKSTREAM_CONTROLLER_CLIENT"]},
        "secrets": {
            "controllerApiToken": stack_env["PARKSTREAM_CONTROLLER_API_TOKEN"],
            "vendorTokens": stack_env["PARKSTREAM_VENDOR_TOKENS"],
            "referenceSecret": REFERENCE_SECRET,
        },
        "gateway": {
            "port": int(stack_env["PARKSTREAM_GATEWAY_PORT"]),
            "opsPort": int(stack_env["PARKSTREAM_GATEWAY_OPS_PORT"]),
            "vendorGrants": {VENDOR: ["profiles/types/list"]},
        },
        "worker": {"port": int(stack_env["PARKSTREAM_WORKER_WEB_PORT"]), "dataDir": str(data_dir)},
        "sandbox": {"enabled": True, "port": int(stack_env["PARKSTREAM_SANDBOX_PORT"])},
    }
    # One broker: one replica of every topic and changelog, one in sync.
    values["topics"].update(replicationFactor=1, minInsyncReplicas=1)
    return values


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    helm.disable_logging()
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if not path.endswith("NOTES.txt"):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


# ------------------------------------------------------------------ Kubernetes, as far as needed


@dataclass
class Workload:
    """One workload's container as the kubelet would start it."""

    component: str
    command: list[str]
    env: dict[str, str]
    ports: dict[str, int]  # container port name -> number
    probes: dict[str, tuple[str, int]]  # livenessProbe/readinessProbe/startupProbe -> path, port


class Cluster:
    """The ConfigMaps, Secrets, Services and workloads of one render: the gateway and the
    sandbox are Deployments, the worker a StatefulSet."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs
        self.config_maps = {
            d["metadata"]["name"]: d.get("data", {}) for d in self._kind("ConfigMap")
        }
        self.secrets = {d["metadata"]["name"]: _secret_data(d) for d in self._kind("Secret")}
        self.workload_docs = self._kind("Deployment") + self._kind("StatefulSet")
        self.routes = self._service_routes()

    def _kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def _workload_for(self, selector: dict[str, str]) -> dict[str, Any]:
        [picked] = [
            w
            for w in self.workload_docs
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        return picked

    def _service_routes(self) -> dict[tuple[str, int], int]:
        """(Service host, Service port) -> the containerPort behind it, for every DNS form."""
        routes = {}
        for service in self._kind("Service"):
            pod = self._workload_for(service["spec"]["selector"])["spec"]["template"]["spec"]
            ports = {p["name"]: p["containerPort"] for c in pod["containers"] for p in c["ports"]}
            name = service["metadata"]["name"]
            svc = f"{name}.{NAMESPACE}.svc"
            hosts = (name, f"{name}.{NAMESPACE}", svc, f"{svc}.cluster.local")
            for port in service["spec"]["ports"]:
                target = port["targetPort"]
                container_port = ports[target] if isinstance(target, str) else target
                for host in hosts:
                    routes[(host, port["port"])] = container_port
        return routes

    def route(self, value: str) -> str:
        """``value`` with every Service address in it replaced by where kube-proxy sends it."""

        def replace(match: re.Match[str]) -> str:
            key = (match.group(1), int(match.group(2)))
            return f"{POD_IP}:{self.routes[key]}" if key in self.routes else match.group(0)

        return re.sub(r"(?<![\w.-])([a-z0-9][a-z0-9.-]*):(\d+)\b", replace, value)

    def _ref(self, source: dict[str, dict[str, str]], ref: dict[str, Any]) -> str | None:
        found = source.get(ref["name"], {}).get(ref["key"])
        if found is None and not ref.get("optional"):
            pytest.fail(f"{ref['name']}/{ref['key']} is not in the render")
        return found

    def environment(self, container: dict[str, Any]) -> dict[str, str]:
        """The container's environment: envFrom, then env (later entries win)."""
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                data = self.config_maps[source["configMapRef"]["name"]]
            else:
                data = self.secrets[source["secretRef"]["name"]]
            env.update({prefix + k: v for k, v in data.items()})
        for entry in container.get("env", []):
            if "value" in entry:
                value: str | None = _expand(entry["value"], env)
            else:
                value = self._value_from(entry["valueFrom"])
            if value is not None:
                env[entry["name"]] = value
        return {name: self.route(value) for name, value in env.items()}

    def _value_from(self, source: dict[str, Any]) -> str | None:
        if "secretKeyRef" in source:
            return self._ref(self.secrets, source["secretKeyRef"])
        if "configMapKeyRef" in source:
            return self._ref(self.config_maps, source["configMapKeyRef"])
        if source.get("fieldRef", {}).get("fieldPath") == "status.podIP":
            return POD_IP
        pytest.fail(f"valueFrom {source} is not played by this test")

    def workloads(self) -> dict[str, Workload]:
        out = {}
        for workload in self.workload_docs:
            pod = workload["spec"]["template"]["spec"]
            # Service links would add <SERVICE>_PORT=tcp://... variables; this test adds none.
            assert pod.get("enableServiceLinks") is False
            [container] = pod["containers"]
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            probes = {
                kind: (
                    container[kind]["httpGet"]["path"],
                    ports[container[kind]["httpGet"]["port"]],
                )
                for kind in ("startupProbe", "livenessProbe", "readinessProbe")
                if kind in container
            }
            component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
            out[component] = Workload(
                component,
                container["command"] + container.get("args", []),
                self.environment(container),
                ports,
                probes,
            )
        return out


def _secret_data(secret: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    return {**data, **secret.get("stringData", {})}


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names are replaced, ``$$`` is a ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", replace, value)


# ------------------------------------------------------------------------------ processes


@dataclass
class Running:
    workload: Workload
    log_path: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def url(self, port_name: str = "http") -> str:
        return f"http://{POD_IP}:{self.workload.ports[port_name]}"


def _probe_ok(path: str, port: int) -> bool:
    try:
        return httpx.get(f"http://{POD_IP}:{port}{path}", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def run_workload(tmp_path: Path) -> Iterator[Callable[[Workload], Running]]:
    """Start a workload exactly as its container would run, ready once its readiness probe is."""
    started: list[Running] = []

    def run(workload: Workload) -> Running:
        executable, *args = workload.command
        command = [str(BIN / executable), *args]
        # The image's PATH and nothing else from this machine: no PARKSTREAM_* leaks in.
        env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **workload.env}
        log_path = tmp_path / f"{workload.component}.log"
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        running = Running(workload, log_path, proc)
        started.append(running)
        path, port = workload.probes["readinessProbe"]
        deadline = time.monotonic() + 90
        while not _probe_ok(path, port):
            if proc.poll() is not None:
                pytest.fail(f"{workload.component} exited {proc.returncode}:\n{running.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{workload.component} not ready on {port}{path}:\n{running.log()}")
            time.sleep(0.25)
        return running

    yield run
    for running in reversed(started):
        if running.proc.poll() is None:
            running.proc.send_signal(signal.SIGTERM)
            try:
                running.proc.wait(30)
            except subprocess.TimeoutExpired:
                running.proc.kill()
                running.proc.wait()


# ---------------------------------------------------------------------------------- the test


async def test_the_rendered_chart_carries_a_push_to_its_sandbox_and_passes_a_call_through(
    stack_env, tmp_path, run_workload
):
    data_dir = tmp_path / "worker-data"
    data_dir.mkdir()
    cluster = Cluster(render(chart_values(stack_env, data_dir)))
    workloads = cluster.workloads()
    assert set(workloads) == {"sandbox", "worker", "gateway"}
    sandbox = run_workload(workloads["sandbox"])
    worker = run_workload(workloads["worker"])
    gateway = run_workload(workloads["gateway"])
    for running in (sandbox, worker, gateway):
        for kind, (path, port) in running.workload.probes.items():
            assert _probe_ok(path, port), f"{running.workload.component} {kind} {path} on {port}"

    api = f"{gateway.url()}/api/{CLIENT}/v1"
    async with httpx.AsyncClient(timeout=15) as http:

        async def journal(endpoint: str) -> list[dict[str, Any]]:
            answer = await http.get(
                f"{sandbox.url()}/_sandbox/journal", params={"endpoint": endpoint}
            )
            return [e for e in answer.json()["entries"] if e["status"] == 200]

        pushed = await http.post(
            f"{api}/permits/push", json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE}
        )
        assert pushed.status_code == 200, pushed.text
        reference = pushed.json()["reference_id"]
        [entry] = await wait_until(lambda: journal("permits/push"), timeout=90)
        assert entry["body"]["LicencePlate"] == PERMIT_PUSH_EXAMPLE["LicencePlate"]

        # The gateway finds the worker through the worker Service the chart names.
        async def delivered() -> bool:
            answer = await http.get(
                f"{api}/permits/{reference}", headers={"Authorization": f"Bearer {VENDOR_TOKEN}"}
            )
            return answer.status_code == 200 and answer.json()["state"] == "delivered"

        await wait_until(delivered, timeout=60)

        types = await http.post(f"{api}/profiles/types/list", json={"apiToken": VENDOR_TOKEN})
        assert types.status_code == 200, types.text
        assert "data" in types.json() or "status" in types.json(), types.text
        assert len(await journal("profiles/types/list")) == 1
        # banner was granted nothing: the Controller's 9002, and the sandbox sees no call.
        refused = await http.post(
            f"{api}/violations/send_overdue_to_collections", json={"apiToken": BANNER_TOKEN}
        )
        assert (refused.status_code, refused.json()["ErrorCode"]) == (403, 9002)
        assert await journal("violations/send_overdue_to_collections") == []
        # Metrics where the chart's ServiceMonitor scrapes them, never on the vendors' port.
        scraped = await http.get(f"{gateway.url('ops')}/metrics")
        assert 'parkstream_gateway_requests_total{endpoint="permits/push"' in scraped.text
        assert (await http.get(f"{gateway.url()}/metrics")).status_code == 404
    assert VENDOR_TOKEN not in gateway.log() + worker.log()
