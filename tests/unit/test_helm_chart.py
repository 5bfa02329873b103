"""The Helm chart, rendered by the real Helm engine (helm-python-sdk binds Helm's Go SDK, no
cluster and no network) and every manifest checked against Kubernetes' own schemas
(kubernetes-validate, strict: unknown fields fail)."""

from __future__ import annotations

import copy
import json
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from foundation.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "parkstream"
RELEASE = "ps"
NAMESPACE = "parking"
FULLNAME = "ps-parkstream"

# The chart's minimum (Chart.yaml kubeVersion) and the newest schemas kubernetes-validate ships.
KUBE_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}  # CRDs: no schema in kubernetes-validate

CONTROLLER_TOKEN = "controller-token-that-must-stay-secret"
VENDOR_TOKENS = "hotspot=hotspot-token-that-must-stay-secret,banner=banner-token-secret"
REFERENCE_SECRET = "reference-secret-that-must-stay-secret"

# The least an install needs: every value the chart cannot default.
MINIMAL: dict[str, Any] = {
    "kafka": {"bootstrapServers": "kafka-0.kafka:9092,kafka-1.kafka:9092"},
    "controller": {"url": "https://opscom.example.com"},
    "secrets": {
        "controllerApiToken": CONTROLLER_TOKEN,
        "vendorTokens": VENDOR_TOKENS,
        "referenceSecret": REFERENCE_SECRET,
    },
}

# Every optional part switched on.
EVERYTHING: dict[str, Any] = {
    **MINIMAL,
    "sandbox": {
        "enabled": True,
        "extraEnv": [{"name": "PARKSTREAM_SANDBOX_FAULT_FAILURE_RATE", "value": "0.05"}],
    },
    "metrics": {
        "serviceMonitor": {
            "enabled": True,
            "additionalLabels": {"release": "kube-prometheus-stack"},
        },
        "prometheusRule": {
            "enabled": True,
            "additionalLabels": {"release": "kube-prometheus-stack"},
        },
    },
    "dashboards": {"enabled": True, "annotations": {"grafana_folder": "parkstream"}},
    "enrichment": {"zoneAliases": {"Lot 4": ["L4", "Lot-4"], "Red Lot": ["RED"]}},
    "extraEnv": [{"name": "TZ", "value": "UTC"}],
    "worker": {
        "replicas": 3,
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {
                    "matchLabels": {"app.kubernetes.io/instance": "{{ .Release.Name }}"}
                },
            }
        ],
    },
    "gateway": {
        "service": {"type": "NodePort", "nodePort": 30080},
        "vendorTokensFile": {"enabled": True},
        "vendorGrants": {"hotspot": ["validate/plate", "permits/stats"], "banner": []},
        "vendorGrantsFile": {"enabled": True},
    },
    "image": {"digest": "sha256:" + "a" * 64},
}

NETWORK_POLICY: dict[str, Any] = {**EVERYTHING, "networkPolicy": {"enabled": True}}

EXISTING_SECRET: dict[str, Any] = {
    **MINIMAL,
    "secrets": {"existingSecret": "parkstream-tokens"},
}


def merged(base: dict[str, Any], **patch: Any) -> dict[str, Any]:
    """``base`` with the dotted keys of ``patch`` set: ``merged(MINIMAL, worker__replicas=3)``."""
    values = copy.deepcopy(base)
    for dotted, value in patch.items():
        node = values
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return values


@pytest.fixture(scope="module")
def chart():
    helm.disable_logging()
    with helm.Chart.load(CHART) as loaded:
        yield loaded


@cache
def _render_cached(values_json: str) -> tuple[dict[str, Any], ...]:
    with helm.Chart.load(CHART) as loaded:
        rendered = loaded.render(json.loads(values_json), name=RELEASE, namespace=NAMESPACE)
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return tuple(docs)


def render(values: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every object the chart renders with ``values``, NOTES.txt left out."""
    return copy.deepcopy(list(_render_cached(json.dumps(values, sort_keys=True))))


def objects(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    """The ``kind`` object named for ``component`` (``ps-parkstream-<component>``)."""
    [found] = [
        doc for doc in objects(docs, kind) if doc["metadata"]["name"] == f"{FULLNAME}-{component}"
    ]
    return found


def settings_configmap(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The ConfigMap of PARKSTREAM_* settings (the others hold dashboards)."""
    [found] = [c for c in objects(docs, "ConfigMap") if c["metadata"]["name"] == "ps-parkstream"]
    return found


# The kinds that run parkstream's pods: the gateway and the sandbox are Deployments, the worker
# a StatefulSet (its tables' files stay on a volume of each pod's own).
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] in WORKLOAD_KINDS]


def workload(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    """The Deployment or StatefulSet of ``component``."""
    [found] = [w for w in workloads(docs) if w["metadata"]["name"] == f"{FULLNAME}-{component}"]
    return found


def containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Container name -> container, over every workload."""
    return {
        c["name"]: c for w in workloads(docs) for c in w["spec"]["template"]["spec"]["containers"]
    }


VALUE_SETS = {
    "minimal": MINIMAL,
    "everything": EVERYTHING,
    "existing-secret": EXISTING_SECRET,
    "network-policy": NETWORK_POLICY,
}


# --- install requirements --------------------------------------------------------------------


def test_defaults_alone_fail_naming_every_value_to_set(chart):
    with pytest.raises(helm.HelmRenderError) as failure:
        chart.render(None, name=RELEASE, namespace=NAMESPACE)
    message = str(failure.value)
    assert "kafka.bootstrapServers is required" in message
    assert "controller.url is required" in message
    assert "secrets.controllerApiToken (or secrets.existingSecret) is required" in message
    assert "secrets.referenceSecret (or secrets.existingSecret) is required" in message


def test_an_ops_port_equal_to_the_vendor_port_fails_the_install(chart):
    with pytest.raises(helm.HelmRenderError) as failure:
        chart.render(merged(MINIMAL, gateway__opsPort=8080), name=RELEASE, namespace=NAMESPACE)
    assert "gateway.opsPort must differ from gateway.port" in str(failure.value)


def test_sandbox_stands_in_for_a_missing_controller_url():
    values = merged(MINIMAL, controller__url="", sandbox__enabled=True)
    config = settings_configmap(render(values))
    assert config["data"]["PARKSTREAM_CONTROLLER_URL"] == "http://ps-parkstream-sandbox:8081"


def test_helm_lint_finds_no_warning_or_error():
    report = helm.lint(CHART, NETWORK_POLICY, strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


# --- every manifest is valid Kubernetes ------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("case", VALUE_SETS)
def test_every_manifest_validates_strictly_against_kubernetes(case, kube_version):
    docs = render(VALUE_SETS[case])
    assert docs
    for doc in docs:
        if doc["kind"] in OPERATOR_KINDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} at {where}: {exc.message}")


@pytest.mark.parametrize("case", VALUE_SETS)
def test_every_object_is_named_labelled_and_namespaced_by_the_release(case):
    for doc in render(VALUE_SETS[case]):
        meta = doc["metadata"]
        assert meta["name"].startswith("ps-parkstream"), meta["name"]
        assert len(meta["name"]) <= 63
        assert meta["namespace"] == NAMESPACE
        assert meta["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"


# --- processes, ports, probes ----------------------------------------------------------------


def test_default_install_runs_a_gateway_and_a_worker_but_no_sandbox():
    assert set(containers(render(MINIMAL))) == {"gateway", "worker"}


@pytest.mark.parametrize(
    ("component", "port"), [("gateway", 8080), ("worker", 6066), ("sandbox", 8081)]
)
def test_each_process_runs_its_command_on_its_port_behind_its_service(component, port):
    docs = render(EVERYTHING)
    container = containers(docs)[component]
    assert container["command"] == ["parkstream", component]
    assert container["ports"][0] == {"name": "http", "containerPort": port, "protocol": "TCP"}
    service = one(docs, "Service", component)
    pod_labels = workload(docs, component)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


def test_gateway_operations_port_is_a_cluster_only_service_of_its_own():
    docs = render(merged(EVERYTHING, gateway__opsPort=9102))
    gateway = containers(docs)["gateway"]
    assert gateway["ports"][1] == {"name": "ops", "containerPort": 9102, "protocol": "TCP"}
    assert settings_configmap(docs)["data"]["PARKSTREAM_GATEWAY_OPS_PORT"] == "9102"
    ops = one(docs, "Service", "gateway-ops")
    assert ops["spec"]["type"] == "ClusterIP"  # whatever type the vendors' Service has
    assert [p["targetPort"] for p in ops["spec"]["ports"]] == ["ops"]
    pod_labels = workload(docs, "gateway")["spec"]["template"]["metadata"]["labels"]
    assert ops["spec"]["selector"].items() <= pod_labels.items()


@pytest.mark.parametrize(
    ("component", "port"), [("gateway", "ops"), ("worker", "http"), ("sandbox", "http")]
)
def test_liveness_probes_healthz_and_readiness_probes_readyz(component, port):
    container = containers(render(EVERYTHING))[component]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}


def test_worker_gets_five_minutes_to_open_its_web_port_before_liveness_counts():
    # Tables recover after the port opens, while /healthz answers: recovery holds readiness.
    worker = containers(render(MINIMAL))["worker"]
    startup = worker["startupProbe"]
    assert startup["httpGet"] == {"path": "/healthz", "port": "http"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


def test_worker_drains_for_60_seconds_and_a_budget_keeps_the_rest_running():
    docs = render(MINIMAL)
    worker = one(docs, "StatefulSet", "worker")
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60
    budget = one(docs, "PodDisruptionBudget", "worker")
    assert budget["spec"]["maxUnavailable"] == 1
    pod_labels = worker["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_worker_replicas_follow_the_values():
    docs = render(merged(MINIMAL, worker__replicas=4))
    assert one(docs, "StatefulSet", "worker")["spec"]["replicas"] == 4


def _data_volume(values: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the worker's volume named by its mount at worker.dataDir, or {} when the pod has none
    of that name, the StatefulSet's volumeClaimTemplates)."""
    worker = one(render(values), "StatefulSet", "worker")
    pod = worker["spec"]["template"]["spec"]
    [container] = pod["containers"]
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/var/lib/parkstream"]
    volumes = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claims = worker["spec"].get("volumeClaimTemplates", [])
    assert [v["name"] for v in volumes] + [c["metadata"]["name"] for c in claims] == [mount["name"]]
    return (volumes or [{}])[0], claims


def test_each_worker_keeps_its_data_dir_on_a_claim_of_its_own_by_default():
    volume, [claim] = _data_volume(MINIMAL)
    assert volume == {}
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "10Gi"}},
    }  # no storageClassName: the cluster's default class
    _, [chosen] = _data_volume(
        merged(
            MINIMAL,
            worker__persistence={
                "enabled": True,
                "size": "50Gi",
                "storageClassName": "fast-ssd",
                "accessModes": ["ReadWriteOncePod"],
            },
        )
    )
    assert chosen["spec"] == {
        "accessModes": ["ReadWriteOncePod"],
        "storageClassName": "fast-ssd",
        "resources": {"requests": {"storage": "50Gi"}},
    }


def test_without_persistence_the_data_dir_is_an_emptydir_with_its_size_limit():
    volume, claims = _data_volume(merged(MINIMAL, worker__persistence__enabled=False))
    assert claims == []
    assert volume == {"name": "data", "emptyDir": {"sizeLimit": "2Gi"}}
    unlimited = merged(
        MINIMAL, worker__persistence__enabled=False, worker__dataVolume__sizeLimit=""
    )
    assert _data_volume(unlimited)[0] == {"name": "data", "emptyDir": {}}


def test_the_claim_template_does_not_change_with_the_chart_or_image_version():
    # Kubernetes refuses any change of a StatefulSet's volumeClaimTemplates: an upgrade must
    # render the same template (no helm.sh/chart or version label on it).
    _, before = _data_volume(MINIMAL)
    _, after = _data_volume(merged(MINIMAL, image__tag="9.9.9", commonLabels={"team": "parking"}))
    assert before == after


def test_worker_rollout_replaces_one_pod_at_a_time_once_the_last_one_is_ready():
    docs = render(MINIMAL)
    worker = one(docs, "StatefulSet", "worker")
    # A StatefulSet's rolling update replaces the next pod only when the replaced one is Ready.
    assert worker["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    [container] = worker["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # At the install and a scale-up the pods join the consumer group together.
    assert worker["spec"]["podManagementPolicy"] == "Parallel"


def test_the_worker_statefulset_is_governed_by_a_headless_service_prometheus_ignores():
    docs = render(EVERYTHING)
    worker = one(docs, "StatefulSet", "worker")
    [headless] = [
        s
        for s in objects(docs, "Service")
        if s["metadata"]["name"] == worker["spec"]["serviceName"]
    ]
    assert headless["spec"]["clusterIP"] == "None"
    pod_labels = worker["spec"]["template"]["metadata"]["labels"]
    assert headless["spec"]["selector"].items() <= pod_labels.items()
    assert "parkstream.io/metrics" not in headless["metadata"]["labels"]
    # The worker Service the gateway and Prometheus use stays a load-balanced ClusterIP.
    assert "clusterIP" not in one(docs, "Service", "worker")["spec"]


def test_image_tag_defaults_to_the_app_version_and_a_digest_wins():
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert containers(render(MINIMAL))["worker"]["image"] == f"parkstream:{app_version}"
    pinned = containers(render(EVERYTHING))["worker"]["image"]
    assert pinned == "parkstream@sha256:" + "a" * 64


def test_containers_run_unprivileged_on_a_read_only_root():
    docs = render(EVERYTHING)
    for each in workloads(docs):
        pod = each["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


# --- settings and secrets --------------------------------------------------------------------


def _settings_variables() -> tuple[set[str], set[str]]:
    plain, secret = set(), set()
    for f in fields(Settings):
        (secret if f.metadata["secret"] else plain).add(PREFIX + f.metadata["env"])
    return plain, secret


# Set on the gateway only: the files when mounted, the grants from gateway.vendorGrants.
GATEWAY_ONLY = {
    "PARKSTREAM_VENDOR_TOKENS_FILE",
    "PARKSTREAM_VENDOR_GRANTS",
    "PARKSTREAM_VENDOR_GRANTS_FILE",
}


def test_configmap_sets_every_plain_setting_and_nothing_else():
    plain, _ = _settings_variables()
    config = settings_configmap(render(MINIMAL))
    assert set(config["data"]) == plain - GATEWAY_ONLY
    assert config["data"]["PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS"] == (
        "kafka-0.kafka:9092,kafka-1.kafka:9092"
    )
    assert config["data"]["PARKSTREAM_CONTROLLER_URL"] == "https://opscom.example.com"
    assert config["data"]["PARKSTREAM_WORKER_WEB_PORT"] == "6066"
    assert config["data"]["PARKSTREAM_WORKER_URL"] == "http://ps-parkstream-worker:6066"


def test_table_settings_reach_the_workers_environment():
    def worker_env(values: dict[str, Any]) -> dict[str, str]:
        docs = render(values)
        [source] = containers(docs)["worker"]["envFrom"]
        assert source["configMapRef"]["name"] == settings_configmap(docs)["metadata"]["name"]
        return settings_configmap(docs)["data"]

    defaults = worker_env(MINIMAL)
    assert defaults["PARKSTREAM_TABLE_STORE"] == "rocksdb"
    assert defaults["PARKSTREAM_SESSION_RETENTION_DAYS"] == "35"
    chosen = worker_env(
        merged(MINIMAL, worker__tableStore="memory", worker__sessionRetentionDays=7)
    )
    assert chosen["PARKSTREAM_TABLE_STORE"] == "memory"
    assert chosen["PARKSTREAM_SESSION_RETENTION_DAYS"] == "7"


def test_zone_aliases_are_a_mounted_json_file_named_by_the_setting():
    docs = render(EVERYTHING)
    path = settings_configmap(docs)["data"]["PARKSTREAM_ZONE_ALIASES"]
    [zones] = [c for c in objects(docs, "ConfigMap") if "zones.json" in c.get("data", {})]
    assert json.loads(zones["data"]["zones.json"]) == {"Lot 4": ["L4", "Lot-4"], "Red Lot": ["RED"]}
    for component in ("gateway", "worker"):
        mounts = {m["mountPath"] for m in containers(docs)[component]["volumeMounts"]}
        assert path.rsplit("/", 1)[0] in mounts
    assert settings_configmap(render(MINIMAL))["data"]["PARKSTREAM_ZONE_ALIASES"] == ""


def test_vendor_tokens_file_is_mounted_from_the_secret_on_the_gateway_only():
    docs = render(EVERYTHING)
    gateway = one(docs, "Deployment", "gateway")["spec"]["template"]["spec"]
    [container] = gateway["containers"]
    env = {e["name"]: e for e in container["env"]}
    path = env["PARKSTREAM_VENDOR_TOKENS_FILE"]["value"]
    [mount] = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    [volume] = [v for v in gateway["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "ps-parkstream-secrets"
    assert volume["secret"]["items"] == [
        {"key": "vendor-tokens-file", "path": path.rsplit("/", 1)[1]}
    ]
    for other in ("worker", "sandbox"):
        names = {e["name"] for e in containers(docs)[other]["env"]}
        assert "PARKSTREAM_VENDOR_TOKENS_FILE" not in names


def test_vendor_grants_reach_the_gateway_only_in_the_settings_format():
    docs = render(EVERYTHING)
    env = {e["name"]: e for e in containers(docs)["gateway"]["env"]}
    # Vendors sorted, endpoints in the order given: hotspot's grants as listed.
    assert env["PARKSTREAM_VENDOR_GRANTS"]["value"] == (
        "banner=,hotspot=validate/plate+permits/stats"
    )
    for other in ("worker", "sandbox"):
        names = {e["name"] for e in containers(docs)[other]["env"]}
        assert not names & GATEWAY_ONLY
    minimal = {e["name"]: e for e in containers(render(MINIMAL))["gateway"]["env"]}
    assert minimal["PARKSTREAM_VENDOR_GRANTS"]["value"] == ""  # no vendor granted anything


def test_vendor_grants_file_is_mounted_from_the_secret_beside_the_tokens_file():
    docs = render(EVERYTHING)
    gateway = one(docs, "Deployment", "gateway")["spec"]["template"]["spec"]
    [container] = gateway["containers"]
    env = {e["name"]: e for e in container["env"]}
    path = env["PARKSTREAM_VENDOR_GRANTS_FILE"]["value"]
    [mount] = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    assert mount["readOnly"] is True
    [volume] = [v for v in gateway["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "ps-parkstream-secrets"
    assert volume["secret"]["items"] == [
        {"key": "vendor-grants-file", "path": path.rsplit("/", 1)[1]}
    ]
    [secret] = objects(docs, "Secret")
    assert "vendor-grants-file" in secret["stringData"]
    names = {e["name"] for e in containers(render(MINIMAL))["gateway"]["env"]}
    assert "PARKSTREAM_VENDOR_GRANTS_FILE" not in names


def test_the_schema_grants_exactly_the_gateways_pass_through_endpoints():
    from producers.openapi import PASS_THROUGH_ENDPOINTS

    schema = json.loads((CHART / "values.schema.json").read_text())
    grants = schema["properties"]["gateway"]["properties"]["vendorGrants"]
    assert grants["additionalProperties"]["items"]["enum"] == list(PASS_THROUGH_ENDPOINTS)


def test_workers_advertise_their_pod_address_for_table_routing():
    env = {e["name"]: e for e in containers(render(MINIMAL))["worker"]["env"]}
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["NODE_CANONICAL_URL"]["value"] == "http://$(POD_IP):6066"


@pytest.mark.parametrize("case", VALUE_SETS)
def test_tokens_never_appear_in_a_configmap(case):
    _, secret = _settings_variables()
    for config in objects(render(VALUE_SETS[case]), "ConfigMap"):
        assert not secret & set(config["data"])
        text = json.dumps(config)
        vendor_tokens = [pair.split("=")[1] for pair in VENDOR_TOKENS.split(",")]
        for token in (CONTROLLER_TOKEN, REFERENCE_SECRET, *vendor_tokens):
            assert token not in text


EVERYTHING_WITH_EXISTING_SECRET = merged(
    EVERYTHING, secrets={"existingSecret": "parkstream-tokens"}
)


@pytest.mark.parametrize(
    ("values", "secret_name"),
    [
        (EVERYTHING, "ps-parkstream-secrets"),
        (EVERYTHING_WITH_EXISTING_SECRET, "parkstream-tokens"),
    ],
    ids=["chart-secret", "existing-secret"],
)
@pytest.mark.parametrize(
    ("component", "tokens"),
    [
        (
            "gateway",
            {
                # Pass-through calls reach the Controller with parkstream's own token.
                "PARKSTREAM_CONTROLLER_API_TOKEN": "controller-api-token",
                "PARKSTREAM_VENDOR_TOKENS": "vendor-tokens",
                "PARKSTREAM_REFERENCE_SECRET": "reference-secret",
            },
        ),
        ("worker", {"PARKSTREAM_CONTROLLER_API_TOKEN": "controller-api-token"}),
        ("sandbox", {"PARKSTREAM_CONTROLLER_API_TOKEN": "controller-api-token"}),
    ],
)
def test_each_process_reads_only_its_own_tokens_from_the_secret(
    values, secret_name, component, tokens
):
    _, secret = _settings_variables()
    env = containers(render(values))[component]["env"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if e["name"] in secret}
    assert {name: (ref["name"], ref["key"]) for name, ref in refs.items()} == {
        name: (secret_name, key) for name, key in tokens.items()
    }


def test_chart_creates_the_secret_only_without_an_existing_one():
    [created] = objects(render(MINIMAL), "Secret")
    assert created["stringData"] == {
        "controller-api-token": CONTROLLER_TOKEN,
        "vendor-tokens": VENDOR_TOKENS,
        "reference-secret": REFERENCE_SECRET,
    }
    assert objects(render(EXISTING_SECRET), "Secret") == []


def test_pods_roll_when_settings_or_tokens_change():
    def checksums(values):
        pod = one(render(values), "StatefulSet", "worker")["spec"]["template"]["metadata"]
        return pod["annotations"]["checksum/config"], pod["annotations"]["checksum/secret"]

    config, secret = checksums(MINIMAL)
    assert checksums(merged(MINIMAL, controller__concurrency=8))[0] != config
    assert checksums(merged(MINIMAL, secrets__controllerApiToken="rotated"))[1] != secret


# --- monitoring ------------------------------------------------------------------------------


def test_servicemonitor_and_prometheusrule_are_off_by_default():
    kinds = {doc["kind"] for doc in render(MINIMAL)}
    assert not kinds & OPERATOR_KINDS


def scrape_targets(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(Service, port name, path) the Prometheus Operator scrapes for the ServiceMonitor: every
    Service its selector matches, on every endpoint whose port name the Service has."""
    [monitor] = objects(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    targets = set()
    for service in objects(docs, "Service"):
        if not selector.items() <= service["metadata"]["labels"].items():
            continue
        names = {p["name"] for p in service["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            if endpoint["port"] in names:
                targets.add((service["metadata"]["name"], endpoint["port"], endpoint["path"]))
    return targets


def test_servicemonitor_scrapes_metrics_of_every_part_but_never_the_vendor_port():
    docs = render(EVERYTHING)
    [monitor] = objects(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert scrape_targets(docs) == {
        (f"{FULLNAME}-gateway-ops", "ops", "/metrics"),
        (f"{FULLNAME}-worker", "http", "/metrics"),
        (f"{FULLNAME}-sandbox", "http", "/metrics"),
    }


def test_prometheusrule_carries_the_plain_rules_file_when_enabled():
    [rule] = objects(render(EVERYTHING), "PrometheusRule")
    rules_file = yaml.safe_load((CHART / "rules" / "parkstream.rules.yml").read_text())
    assert rule["spec"]["groups"] == rules_file["groups"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


@pytest.mark.parametrize("case", ["minimal", "everything"])
def test_each_dashboard_is_a_configmap_labelled_for_the_grafana_sidecar(case):
    files = {p.name: p for p in (CHART / "dashboards").glob("*.json")}
    assert files
    maps = [
        c
        for c in objects(render(VALUE_SETS[case]), "ConfigMap")
        if "dashboard" in c["metadata"]["name"]
    ]
    assert len(maps) == len(files)
    for config in maps:
        assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
        [(name, text)] = config["data"].items()
        assert json.loads(text) == json.loads(files[name].read_text())


def test_dashboards_can_be_switched_off():
    docs = render(merged(MINIMAL, dashboards__enabled=False))
    assert [c["metadata"]["name"] for c in objects(docs, "ConfigMap")] == ["ps-parkstream"]


# --- values.schema.json ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "complaint"),
    [
        ({"worker__replicas": "two"}, "/worker/replicas"),
        ({"gateway__port": 70000}, "/gateway/port"),
        ({"gateway__readTimeoutSeconds": 0}, "/gateway/readTimeoutSeconds"),
        ({"logging__format": "xml"}, "/logging/format"),
        ({"controller__url": "opscom.example.com"}, "/controller/url"),
        ({"kafka__bootstrapServers": "kafka"}, "/kafka/bootstrapServers"),
        ({"secrets__vendorTokens": "hotspot"}, "/secrets/vendorTokens"),
        ({"secrets__referenceSecret": "too-short"}, "/secrets/referenceSecret"),
        ({"wrker__replicas": 2}, "wrker"),
        ({"enrichment__defaultCurrency": "DOGECOIN-XL"}, "/enrichment/defaultCurrency"),
        (
            {"gateway__vendorGrants": {"hotspot": ["permits/push"]}},
            "/gateway/vendorGrants/hotspot/0",
        ),
        ({"gateway__vendorGrants": {"hotspot": "permits/stats"}}, "/gateway/vendorGrants/hotspot"),
        ({"worker__tableStore": "redis"}, "/worker/tableStore"),
        ({"worker__sessionRetentionDays": 0}, "/worker/sessionRetentionDays"),
        ({"worker__persistence__size": "lots"}, "/worker/persistence/size"),
        (
            {"worker__persistence__accessModes": ["ReadOnlyMany"]},
            "/worker/persistence/accessModes/0",
        ),
    ],
)
def test_schema_rejects_a_bad_value_naming_it(chart, patch, complaint):
    with pytest.raises(helm.HelmValuesError) as failure:
        chart.render(merged(MINIMAL, **patch), name=RELEASE, namespace=NAMESPACE)
    assert complaint in str(failure.value)


def test_the_default_currency_is_any_code_the_controller_takes(chart):
    # No list of codes: the contract's limit of 10 characters (docs/controller-contract.md).
    values = merged(MINIMAL, enrichment__defaultCurrency="EUR")
    assert settings_configmap(render(values))["data"]["PARKSTREAM_DEFAULT_CURRENCY"] == "EUR"


def test_schema_accepts_the_chart_defaults(chart):
    chart.validate_schema(chart.values)


# --- NetworkPolicy ---------------------------------------------------------------------------

PROMETHEUS_POD = (
    {"kubernetes.io/metadata.name": "monitoring"},
    {"app.kubernetes.io/name": "prometheus"},
)
OTHER_POD_HERE = ({"kubernetes.io/metadata.name": NAMESPACE}, {"app": "something-else"})
OTHER_POD_ELSEWHERE = ({"kubernetes.io/metadata.name": "default"}, {"app": "curl"})


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions In/NotIn/Exists)."""
    if selector is None:
        return False
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        present = expr["key"] in labels
        value = labels.get(expr["key"])
        ok = {
            "In": present and value in expr.get("values", []),
            "NotIn": not present or value not in expr.get("values", []),
            "Exists": present,
            "DoesNotExist": not present,
        }[expr["operator"]]
        if not ok:
            return False
    return True


def pod_of(docs: list[dict[str, Any]], component: str) -> tuple[dict[str, str], dict[str, str]]:
    """(namespace labels, pod labels) of one of the release's pods."""
    labels = workload(docs, component)["spec"]["template"]["metadata"]["labels"]
    return {"kubernetes.io/metadata.name": NAMESPACE}, labels


def may_reach(
    docs, source: tuple[dict[str, str], dict[str, str]], component: str, port: str
) -> bool:
    """NetworkPolicy ingress semantics: may ``source`` open ``port`` (a name) of ``component``?

    Unselected pods take anything; a selected pod takes what one of its policies' rules allows
    (a peer's podSelector alone means the policy's namespace)."""
    ns_labels, pod_labels = source
    pod = workload(docs, component)["spec"]["template"]
    target = pod["metadata"]["labels"]
    [container] = pod["spec"]["containers"]
    number = {p["name"]: p["containerPort"] for p in container["ports"]}[port]
    policies = [
        p
        for p in objects(docs, "NetworkPolicy")
        if "Ingress" in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], target)
    ]
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports and not any(p.get("port") in (port, number) for p in ports):
                continue
            peers = rule.get("from")
            if not peers:
                return True
            for peer in peers:
                if "namespaceSelector" in peer:
                    in_namespace = _selects(peer["namespaceSelector"], ns_labels)
                else:
                    in_namespace = ns_labels["kubernetes.io/metadata.name"] == NAMESPACE
                pods = _selects(peer["podSelector"], pod_labels) if "podSelector" in peer else True
                if in_namespace and pods:
                    return True
    return False


def test_network_policies_are_off_by_default():
    assert objects(render(EVERYTHING), "NetworkPolicy") == []


def test_only_the_gateway_prometheus_and_worker_peers_reach_the_workers_web_port():
    docs = render(NETWORK_POLICY)
    assert may_reach(docs, pod_of(docs, "gateway"), "worker", "http")
    assert may_reach(docs, PROMETHEUS_POD, "worker", "http")
    # A /sessions/{ref} request is forwarded to the worker owning the key (NODE_CANONICAL_URL).
    assert may_reach(docs, pod_of(docs, "worker"), "worker", "http")
    for stranger in (pod_of(docs, "sandbox"), OTHER_POD_HERE, OTHER_POD_ELSEWHERE):
        assert not may_reach(docs, stranger, "worker", "http")


def test_only_the_worker_and_the_gateways_pass_through_calls_reach_the_sandbox():
    docs = render(NETWORK_POLICY)
    assert may_reach(docs, pod_of(docs, "worker"), "sandbox", "http")
    # The gateway passes granted read calls to the Controller, which the sandbox stands in for.
    assert may_reach(docs, pod_of(docs, "gateway"), "sandbox", "http")
    assert may_reach(docs, PROMETHEUS_POD, "sandbox", "http")  # its /metrics
    for stranger in (OTHER_POD_HERE, OTHER_POD_ELSEWHERE):
        assert not may_reach(docs, stranger, "sandbox", "http")


def test_vendors_reach_the_gateways_port_and_only_prometheus_its_ops_port():
    docs = render(NETWORK_POLICY)
    for anyone in (OTHER_POD_HERE, OTHER_POD_ELSEWHERE, PROMETHEUS_POD):
        assert may_reach(docs, anyone, "gateway", "http")
    assert may_reach(docs, PROMETHEUS_POD, "gateway", "ops")
    for stranger in (OTHER_POD_HERE, OTHER_POD_ELSEWHERE, pod_of(docs, "worker")):
        assert not may_reach(docs, stranger, "gateway", "ops")


def test_the_gateways_vendor_port_can_be_kept_to_the_ingress_controller():
    ingress = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}
    docs = render(merged(NETWORK_POLICY, networkPolicy__gatewayFrom=[ingress]))
    assert may_reach(docs, ({"kubernetes.io/metadata.name": "ingress"}, {}), "gateway", "http")
    assert not may_reach(docs, OTHER_POD_ELSEWHERE, "gateway", "http")


def test_prometheus_is_whoever_the_values_say():
    docs = render(
        merged(
            NETWORK_POLICY,
            networkPolicy__prometheus={
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "obs"}},
                "podSelector": {"matchLabels": {"app": "vmagent"}},
            },
        )
    )
    scraper = ({"kubernetes.io/metadata.name": "obs"}, {"app": "vmagent"})
    assert may_reach(docs, scraper, "worker", "http")
    assert not may_reach(docs, PROMETHEUS_POD, "worker", "http")
