"""deploy/compose.yaml: Redis with AOF, workers, callback, Prometheus, Grafana, and settings
that load_settings accepts."""

from __future__ import annotations

import re

import pytest

from worker.config import load_settings

from .util import (
    DEPLOY,
    SECRET_NAME_RE,
    duration_seconds,
    interpolate,
    load_yaml,
    parse_env_file,
    sample_master_key,
    worker_shutdown_seconds,
)

COMPOSE = load_yaml(DEPLOY / "compose.yaml")
SERVICES = COMPOSE["services"]


def mounts(service: str) -> dict[str, str]:
    """target -> source for a service's short-syntax volumes."""
    out = {}
    for spec in SERVICES[service].get("volumes", []):
        source, target = spec.split(":")[:2]
        out[target] = source
    return out


def operator_env() -> dict[str, str]:
    env = parse_env_file(DEPLOY / ".env.example")
    env["DATAPOST_MASTER_KEY"] = sample_master_key()
    env["GRAFANA_ADMIN_PASSWORD"] = "not-a-real-password"
    return env


def test_services():
    assert {"redis", "worker", "callback", "prometheus", "grafana"} <= set(SERVICES)


def test_redis_7_with_aof_on_a_volume():
    redis = SERVICES["redis"]
    assert redis["image"].split(":")[1].startswith("7")
    command = redis["command"]
    command = command if isinstance(command, list) else command.split()
    joined = " ".join(command)
    assert "--appendonly yes" in joined and "--appendfsync everysec" in joined
    assert "--maxmemory-policy noeviction" in joined
    assert mounts("redis")["/data"] in COMPOSE["volumes"]


def test_every_named_volume_is_declared():
    for name in SERVICES:
        for target, source in mounts(name).items():
            if source.startswith((".", "/")):
                continue
            assert source in COMPOSE["volumes"], f"{name}: {source} -> {target}"


def test_bind_mounted_files_exist():
    for name in SERVICES:
        for source in mounts(name).values():
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source


def test_worker_replicas_and_graceful_stop():
    worker = SERVICES["worker"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["command"][0] == "worker"
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert duration_seconds(worker["stop_grace_period"]) > worker_shutdown_seconds()


def test_workers_share_the_payload_volume_at_the_payload_dir():
    env = SERVICES["worker"]["environment"]
    source = mounts("worker")[env["DATAPOST_PAYLOAD_DIR"]]
    assert source in COMPOSE["volumes"]


def test_redis_url_points_at_the_redis_service():
    for name in ("worker", "callback"):
        assert SERVICES[name]["environment"]["DATAPOST_REDIS_URL"].startswith("redis://redis:6379")


def test_secrets_are_referenced_not_committed():
    for name in ("worker", "callback"):
        env = SERVICES[name]["environment"]
        assert re.fullmatch(r"\$\{DATAPOST_MASTER_KEY:\?.+\}", env["DATAPOST_MASTER_KEY"])
        for key, value in env.items():
            if SECRET_NAME_RE.search(key) and key != "DATAPOST_DIGIME_PRIVATE_KEY_FILE":
                assert str(value).startswith("${"), f"{name}: {key} has a literal value"
        secret = SERVICES[name]["secrets"][0]
        assert secret in COMPOSE["secrets"]
        assert env["DATAPOST_DIGIME_PRIVATE_KEY_FILE"] == f"/run/secrets/{secret}"
    grafana_password = SERVICES["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert grafana_password.startswith("${")
    assert "${" in COMPOSE["secrets"]["digime_contract_key"]["file"]


def test_example_env_file_has_no_values_for_secrets():
    env = parse_env_file(DEPLOY / ".env.example")
    assert env["DATAPOST_MASTER_KEY"] == ""
    assert env["GRAFANA_ADMIN_PASSWORD"] == ""


@pytest.mark.parametrize("service", ["worker", "callback"])
def test_service_settings_load(service):
    env = {k: interpolate(str(v), operator_env())
           for k, v in SERVICES[service]["environment"].items()}
    datapost_env = {k: v for k, v in env.items() if k.startswith("DATAPOST_")}
    settings = load_settings(datapost_env)
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.master_key is not None
    assert str(settings.delivery.payload_dir) == "/var/lib/datapost/payloads"


def test_required_values_stop_compose():
    with pytest.raises(AssertionError, match="DATAPOST_MASTER_KEY"):
        interpolate(SERVICES["worker"]["environment"]["DATAPOST_MASTER_KEY"], {})


def test_callback_port_and_health_check():
    callback = SERVICES["callback"]
    assert callback["command"] == ["callback"]
    assert any(str(p).endswith("8787:8787") for p in callback["ports"])
    env = callback["environment"]
    assert env["DATAPOST_CALLBACK_HOST"] == "0.0.0.0"
    assert env["HEALTHCHECK_URL"].endswith(":8787/healthz")


def test_prometheus_gets_its_config_and_rules():
    targets = mounts("prometheus")
    assert targets["/etc/prometheus/prometheus.yml"] == "./prometheus/prometheus.yml"
    assert targets["/etc/prometheus/alerts.yml"] == "./prometheus/alerts.yml"
    assert any("--config.file=/etc/prometheus/prometheus.yml" in c
               for c in SERVICES["prometheus"]["command"])
    assert SERVICES["prometheus"]["image"].startswith("prom/prometheus")


def test_grafana_gets_provisioning_and_dashboards():
    grafana = SERVICES["grafana"]
    assert grafana["image"].startswith("grafana/grafana")
    targets = mounts("grafana")
    assert targets["/etc/grafana/provisioning"] == "./grafana/provisioning"
    provider = load_yaml(DEPLOY / "grafana/provisioning/dashboards/datapost.yaml")
    path = provider["providers"][0]["options"]["path"]
    assert targets[path] == "./grafana/dashboards"
