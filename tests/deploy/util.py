"""Shared helpers for the deploy/ tests: file discovery, loaders, PromQL name extraction."""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from worker.config import KNOWN_ENV
from worker.metrics import METRIC_NAMES, Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"

# Variables the CLI reads itself besides load_settings (worker/entrypoint.py falls back to it).
CLI_ENV = frozenset({"DATAPOST_REDIS_URL"})
ALLOWED_ENV = frozenset(KNOWN_ENV) | CLI_ENV

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
METRIC_RE = re.compile(r"\bdatapost_[a-z0-9_]*[a-z0-9]\b")
ENV_RE = re.compile(r"\bDATAPOST_[A-Z0-9_]*[A-Z0-9]\b")
SECRET_NAME_RE = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL)", re.I)


def deploy_files(*suffixes: str) -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.name.endswith(suffixes))


def load_yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def load_yaml(path: Path) -> Any:
    docs = load_yaml_docs(path)
    assert len(docs) == 1, f"{path}: expected one YAML document, got {len(docs)}"
    return docs[0]


def k8s_objects() -> list[dict[str, Any]]:
    objects = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml_docs(path):
            doc["__file__"] = path.name
            objects.append(doc)
    return objects


def dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana" / "dashboards" / "datapost.json").read_text())


def dashboard_panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    out = []
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} {target.get('refId')}", target["expr"]))
    for var in dashboard().get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            out.append((f"variable {var['name']!r}", query))
    return out


def alert_rules() -> list[dict[str, Any]]:
    doc = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    return [rule for group in doc["groups"] for rule in group["rules"]]


def all_exprs() -> list[tuple[str, str]]:
    return dashboard_exprs() + [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]


def metric_names_in(expr: str) -> set[str]:
    """datapost_* identifiers in a PromQL expression (quoted label values removed first)."""
    return set(METRIC_RE.findall(re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)))


def code_metric_types() -> dict[str, str]:
    """Family name -> type, as the Metrics class registers them (counters without _total)."""
    registry = CollectorRegistry()
    Metrics(registry)
    return {family.name: family.type for family in registry.collect()}


def exported_series_names() -> set[str]:
    """Every series name a scrape can return, built from METRIC_NAMES: counters are listed
    with `_total`, histograms by their base name (exposed as _bucket/_sum/_count)."""
    histograms = {name for name, kind in code_metric_types().items() if kind == "histogram"}
    names = set(METRIC_NAMES)
    for name in histograms & names:
        names.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
    return names


def to_exported(name: str) -> str:
    """Map a referenced series name to its METRIC_NAMES entry (histogram suffixes stripped)."""
    histograms = {n for n, kind in code_metric_types().items() if kind == "histogram"}
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in histograms:
            return name[: -len(suffix)]
    return name


def sample_master_key() -> str:
    return base64.b64encode(bytes(range(32))).decode()


def parse_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not VARIABLE=value: {line!r}"
        env[key.strip()] = value.strip()
    return env


_INTERP = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose-style ${VAR}, ${VAR:-default}, ${VAR:?message} interpolation."""

    def sub(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        current = env.get(name)
        if op in (":-", "-"):
            if current is None or (op == ":-" and current == ""):
                return arg
            return current
        if op in (":?", "?"):
            assert current not in (None, "") or op == "?", f"${{{name}}} is required: {arg}"
            return current or ""
        return current or ""

    return _INTERP.sub(sub, value)


class Dockerfile:
    """Instructions of a Dockerfile: continuation lines joined, comments dropped."""

    def __init__(self, path: Path) -> None:
        self.text = path.read_text()
        self.instructions: list[tuple[str, str]] = []
        buf = ""
        for raw in self.text.splitlines():
            line = raw.strip()
            if not buf and (not line or line.startswith("#")):
                continue
            if buf and line.startswith("#"):
                continue
            if line.endswith("\\"):
                buf += line[:-1] + " "
                continue
            buf += line
            word, _, rest = buf.partition(" ")
            self.instructions.append((word.upper(), rest.strip()))
            buf = ""
        assert not buf, "dangling line continuation"

    def all(self, name: str) -> list[str]:
        return [rest for word, rest in self.instructions if word == name]

    def final_stage(self) -> list[tuple[str, str]]:
        starts = [i for i, (word, _) in enumerate(self.instructions) if word == "FROM"]
        return self.instructions[starts[-1]:]

    def env(self) -> dict[str, str]:
        out = {}
        for rest in self.all("ENV") + self.all("ARG"):
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                out[key] = value
        return out


def worker_shutdown_seconds() -> float:
    """How long dramatiq waits for in-flight jobs, from the command `datapost worker` runs."""
    from producers.cli.main import build_parser
    from producers.cli.worker import worker_command

    command = worker_command(build_parser().parse_args(["worker"]))
    return int(command[command.index("--worker-shutdown-timeout") + 1]) / 1000


def duration_seconds(text: str | int) -> float:
    """Compose/Go-style durations: 90, "90s", "11m", "1m30s", "1h"."""
    if isinstance(text, int | float):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    return sum(float(n) * scale[u] for n, u in parts)
