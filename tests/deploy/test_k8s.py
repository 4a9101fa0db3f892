"""deploy/k8s/: kinds, cross-references, probes, shutdown grace, autoscaling, and a ConfigMap
that load_settings accepts."""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

import pytest

from worker.config import DeliverySettings, load_settings
from worker.queue import NAMESPACE as DRAMATIQ_NAMESPACE

from .util import K8S, k8s_objects, load_yaml, sample_master_key, worker_shutdown_seconds

OBJECTS = k8s_objects()


def one(kind: str, name: str) -> dict:
    found = [o for o in OBJECTS if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_spec(name: str) -> dict:
    return one("Deployment", name)["spec"]["template"]["spec"]


def container(name: str) -> dict:
    (c,) = pod_spec(name)["containers"]
    return c


def port_number(c: dict, port) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in c["ports"] if p["name"] == port]
    return number


def test_kinds_present():
    kinds = Counter(o["kind"] for o in OBJECTS)
    assert kinds["Deployment"] == 2
    for kind in ("Namespace", "Service", "Secret", "ConfigMap", "ScaledObject",
                 "PersistentVolumeClaim"):
        assert kinds[kind] >= 1, kind


def test_every_object_has_api_version_and_namespace():
    for o in OBJECTS:
        assert o["apiVersion"] and o["metadata"]["name"]
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == "datapost", o["metadata"]["name"]


def test_kustomization_lists_existing_files_but_not_the_secret_template():
    kustomization = load_yaml(K8S / "kustomization.yaml")
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    assert "secret.example.yaml" not in kustomization["resources"]
    assert {"worker.yaml", "callback.yaml", "keda.yaml", "configmap.yaml",
            "payloads-pvc.yaml"} <= set(kustomization["resources"])


def test_secret_templates_are_placeholders():
    secrets = [o for o in OBJECTS if o["kind"] == "Secret"]
    keys = {k for s in secrets for k in s.get("stringData", {})}
    assert {"DATAPOST_MASTER_KEY", "digime-contract.pem"} <= keys
    for secret in secrets:
        assert "data" not in secret, "templates use stringData placeholders"
        for key, value in secret["stringData"].items():
            assert value == "" or "REPLACE_ME" in value, f"{key} is not a marked placeholder"


def test_worker_shutdown_grace_fits_dramatiq():
    grace = pod_spec("datapost-worker")["terminationGracePeriodSeconds"]
    assert grace >= 600
    assert grace > worker_shutdown_seconds()
    assert "lifecycle" not in container("datapost-worker")


@pytest.mark.parametrize("name,port", [("datapost-worker", 9191), ("datapost-callback", 8787)])
def test_probes(name, port):
    c = container(name)
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert port_number(c, c[probe]["httpGet"]["port"]) == port


@pytest.mark.parametrize("name", ["datapost-worker", "datapost-callback"])
def test_resources_and_non_root(name):
    c = container(name)
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["resources"]["limits"]["memory"]
    spec = pod_spec(name)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_worker_command():
    assert container("datapost-worker")["args"][0] == "worker"
    assert container("datapost-callback")["args"] == ["callback"]


def test_references_resolve():
    names = {(o["kind"], o["metadata"]["name"]): o for o in OBJECTS}
    for deployment in ("datapost-worker", "datapost-callback"):
        spec = pod_spec(deployment)
        c = container(deployment)
        for source in c.get("envFrom", []):
            assert ("ConfigMap", source["configMapRef"]["name"]) in names
        for var in c.get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                secret = names[("Secret", ref["name"])]
                assert ref["key"] in secret["stringData"], ref
        volumes = {v["name"]: v for v in spec["volumes"]}
        for mount in c["volumeMounts"]:
            volume = volumes[mount["name"]]
            if "secret" in volume:
                assert ("Secret", volume["secret"]["secretName"]) in names
            if "persistentVolumeClaim" in volume:
                assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in names


def test_contract_key_file_is_the_mounted_secret():
    config = one("ConfigMap", "datapost-config")["data"]
    path = config["DATAPOST_DIGIME_PRIVATE_KEY_FILE"]
    for deployment in ("datapost-worker", "datapost-callback"):
        c = container(deployment)
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        (mount,) = [m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
        assert mount["readOnly"] is True
        secret = one("Secret", volumes[mount["name"]]["secret"]["secretName"])
        assert path[len(mount["mountPath"]) + 1:] in secret["stringData"]


def test_workers_mount_the_shared_payload_volume_read_write_many():
    config = one("ConfigMap", "datapost-config")["data"]
    c = container("datapost-worker")
    volumes = {v["name"]: v for v in pod_spec("datapost-worker")["volumes"]}
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == config["DATAPOST_PAYLOAD_DIR"]]
    claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
    assert one("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"]


def test_configmap_and_secret_template_load_as_settings():
    config = one("ConfigMap", "datapost-config")["data"]
    secret = one("Secret", "datapost-secrets")["stringData"]
    env = {**config, **{k: v for k, v in secret.items() if k.startswith("DATAPOST_")}}
    env["DATAPOST_MASTER_KEY"] = sample_master_key()
    env["DATAPOST_REDIS_URL"] = env["DATAPOST_REDIS_URL"].replace("REPLACE_ME_redis_password", "pw")
    settings = load_settings(env)
    assert settings.delivery.metrics_port == 9191
    assert settings.callback.port == 8787
    assert settings.callback.host == "0.0.0.0"
    assert all(isinstance(v, str) for v in config.values()), "ConfigMap values must be strings"


def test_callback_service():
    service = one("Service", "datapost-callback")
    pod_labels = one("Deployment", "datapost-callback")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == 8787
    assert port_number(container("datapost-callback"), port["targetPort"]) == 8787


def test_selectors_match_pod_labels():
    for name in ("datapost-worker", "datapost-callback"):
        spec = one("Deployment", name)["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_keda_scales_the_worker_on_the_dramatiq_queue():
    (scaled,) = [o for o in OBJECTS if o["kind"] == "ScaledObject"]
    assert scaled["apiVersion"].startswith("keda.sh/")
    target = scaled["spec"]["scaleTargetRef"]
    assert target["name"] == "datapost-worker" and target.get("kind", "Deployment") == "Deployment"
    assert 1 <= scaled["spec"]["minReplicaCount"] < scaled["spec"]["maxReplicaCount"]
    (trigger,) = scaled["spec"]["triggers"]
    if trigger["type"] == "redis":
        queue = DeliverySettings().queue
        assert trigger["metadata"]["listName"] == f"{DRAMATIQ_NAMESPACE}:{queue}"
        assert int(trigger["metadata"]["listLength"]) > 0
        redis_url = one("Secret", "datapost-secrets")["stringData"]["DATAPOST_REDIS_URL"]
        parts = urlsplit(redis_url)
        assert trigger["metadata"]["address"] == f"{parts.hostname}:{parts.port}"
        auth = trigger.get("authenticationRef")
        if auth:
            ta = one("TriggerAuthentication", auth["name"])
            for ref in ta["spec"]["secretTargetRef"]:
                assert ref["key"] in one("Secret", ref["name"])["stringData"]
    else:
        assert trigger["type"] == "prometheus"
        assert "datapost_queue_depth" in trigger["metadata"]["query"]
