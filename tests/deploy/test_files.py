"""Every YAML and JSON file under deploy/ parses; deploy/ names only known DATAPOST_* variables
and commits no secrets."""

from __future__ import annotations

import json
import re

import pytest

from .util import ALLOWED_ENV, DEPLOY, ENV_RE, deploy_files, load_yaml_docs

YAML_FILES = deploy_files(".yaml", ".yml")
JSON_FILES = deploy_files(".json")


def test_the_expected_files_exist():
    expected = [
        "Dockerfile", "compose.yaml", "README.md",
        "prometheus/prometheus.yml", "prometheus/alerts.yml",
        "grafana/dashboards/datapost.json",
        "grafana/provisioning/datasources/prometheus.yaml",
        "grafana/provisioning/dashboards/datapost.yaml",
        "k8s/namespace.yaml", "k8s/secret.example.yaml", "k8s/configmap.yaml",
        "k8s/worker.yaml", "k8s/callback.yaml", "k8s/keda.yaml", "k8s/payloads-pvc.yaml",
        "systemd/datapost-worker.service", "systemd/datapost-callback.service",
    ]
    missing = [name for name in expected if not (DEPLOY / name).is_file()]
    assert not missing


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path):
    docs = load_yaml_docs(path)
    assert docs, f"{path} holds no YAML document"
    assert all(isinstance(doc, dict) for doc in docs)


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_json_parses(path):
    assert isinstance(json.loads(path.read_text()), dict)


def test_there_is_something_to_parse():
    assert len(YAML_FILES) >= 10 and JSON_FILES


def test_readme_is_no_longer_a_placeholder():
    text = (DEPLOY / "README.md").read_text()
    assert "Nothing here yet" not in text
    for name in ("Dockerfile", "compose.yaml", "alerts.yml", "datapost.json", "k8s/",
                 "systemd/", "ScaledObject"):
        assert name in text


def test_every_datapost_variable_named_in_deploy_is_known():
    unknown = {}
    for path in deploy_files(""):
        for name in set(ENV_RE.findall(path.read_text(errors="replace"))):
            if name not in ALLOWED_ENV:
                unknown.setdefault(name, []).append(str(path.relative_to(DEPLOY)))
    assert not unknown, f"unknown DATAPOST_* variables in deploy/: {unknown}"


PEM_RE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
# 32 bytes in base64 (a master key) or a long JWT-shaped value
KEYISH_RE = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=(?![A-Za-z0-9+/=])|eyJ[\w-]{10,}\.[\w-]{10,}\.")


@pytest.mark.parametrize("path", deploy_files(""), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_no_secret_values_are_committed(path):
    text = path.read_text(errors="replace")
    assert not PEM_RE.search(text), "a private key block"
    assert not KEYISH_RE.search(text), "a key- or token-shaped value"


def test_operator_files_are_git_ignored():
    ignored = (DEPLOY / ".gitignore").read_text().split()
    for pattern in (".env", "secrets/", "*.pem", "k8s/secret.yaml"):
        assert pattern in ignored
