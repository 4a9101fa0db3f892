"""Prometheus config, alert rules and the Grafana dashboard: structure, and every metric they
use is one worker/metrics.py exports."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from worker.metrics import METRIC_NAMES

from .util import (
    DEPLOY,
    alert_rules,
    all_exprs,
    code_metric_types,
    dashboard,
    dashboard_exprs,
    dashboard_panels,
    exported_series_names,
    load_yaml,
    metric_names_in,
    to_exported,
)

PROM = DEPLOY / "prometheus"


# -- metric names ------------------------------------------------------------------------------

def test_metric_names_match_the_metrics_the_code_registers():
    """METRIC_NAMES (what deploy/ may use) agrees with the Metrics class: counters end in _total."""
    for name, kind in code_metric_types().items():
        exposed = name + "_total" if kind == "counter" else name
        assert exposed in METRIC_NAMES, f"{kind} {name} is missing from METRIC_NAMES"


@pytest.mark.parametrize("where,expr", all_exprs(), ids=[w for w, _ in all_exprs()])
def test_every_query_uses_only_exported_metrics(where, expr):
    names = metric_names_in(expr)
    assert names, f"{where} references no datapost metric: {expr}"
    unknown = sorted(n for n in names if n not in exported_series_names())
    assert not unknown, f"{where} uses metrics the code does not export: {unknown}"
    assert {to_exported(n) for n in names} <= set(METRIC_NAMES)


def test_name_extraction():
    expr = ('histogram_quantile(0.9, sum by (le) (rate(datapost_attempt_duration_seconds_bucket'
            '{job="datapost_x"}[5m]))) / datapost_jobs')
    assert metric_names_in(expr) == {"datapost_attempt_duration_seconds_bucket", "datapost_jobs"}
    assert to_exported("datapost_attempt_duration_seconds_bucket") == "datapost_attempt_duration_seconds"
    assert "datapost_deliveries" not in exported_series_names()  # counters only with _total
    assert "datapost_jobs_bucket" not in exported_series_names()  # a gauge has no buckets


def test_the_dashboard_shows_every_exported_metric():
    used = {to_exported(n) for _, expr in dashboard_exprs() for n in metric_names_in(expr)}
    assert set(METRIC_NAMES) <= used, f"not on the dashboard: {set(METRIC_NAMES) - used}"


# -- Prometheus --------------------------------------------------------------------------------

def test_prometheus_scrapes_workers_and_callback_and_loads_the_rules():
    config = load_yaml(PROM / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    targets = set()
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for static in job.get("static_configs", []):
            targets.update(static["targets"])
        for sd in job.get("dns_sd_configs", []):
            targets.update(f"{name}:{sd['port']}" for name in sd["names"])
    assert {"worker:9191", "callback:8787"} <= targets


REQUIRED_ALERTS = {
    "dead jobs": lambda e: 'state="dead"' in e or 'outcome="dead"' in e,
    "success rate": lambda e: "succeeded" in e and "/" in e and "datapost_deliveries_total" in e,
    "queue age": lambda e: "datapost_queue_oldest_age_seconds" in e,
    "token refresh failures": lambda e: "datapost_token_refreshes_total" in e and 'result="failed"' in e,
    "no workers": lambda e: re.search(r"datapost_workers\)?\s*==\s*0", e) is not None,
    "parked jobs": lambda e: 'state="parked"' in e or 'outcome="parked"' in e,
}


@pytest.mark.parametrize("topic", REQUIRED_ALERTS)
def test_an_alert_covers(topic):
    assert any(REQUIRED_ALERTS[topic](rule["expr"]) for rule in alert_rules())


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_rule_shape(rule):
    assert re.fullmatch(r"Datapost[A-Za-z]+", rule["alert"])
    assert re.fullmatch(r"\d+[smh]", rule["for"])
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()


def test_alert_names_are_unique():
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))


def test_redis_gauges_are_combined_with_max_not_sum():
    """Every scrape target reports the same Redis-derived gauge: summing would multiply it."""
    gauges = ("datapost_jobs", "datapost_jobs_delayed", "datapost_queue_depth",
              "datapost_queue_oldest_age_seconds", "datapost_workers")
    for where, expr in all_exprs():
        for gauge in gauges:
            assert not re.search(rf"\bsum\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(\s*{gauge}\b",
                                 expr), where


# -- promtool (when installed: Debian's `prometheus` package) ----------------------------------

promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")


def run_promtool(*args: str, cwd=PROM) -> None:
    result = subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@promtool
def test_promtool_checks_config_and_rules():
    run_promtool("check", "config", "prometheus.yml")
    run_promtool("check", "rules", "alerts.yml")


@promtool
def test_promtool_alert_unit_tests():
    run_promtool("test", "rules", "alerts_test.yml")


@promtool
def test_dashboard_queries_are_valid_promql(tmp_path):
    rules = []
    for i, (_, expr) in enumerate(dashboard_exprs()):
        if expr.startswith("label_values("):
            continue
        promql = expr.replace("$__rate_interval", "5m").replace("$provider", ".*")
        rules.append({"record": f"dashboard:query_{i}", "expr": promql})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run_promtool("check", "rules", str(path), cwd=tmp_path)


# -- Grafana -----------------------------------------------------------------------------------

def provisioned_datasource() -> dict:
    doc = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yaml")
    assert doc["apiVersion"] == 1
    (source,) = doc["datasources"]
    return source


def test_datasource_points_at_the_compose_prometheus():
    source = provisioned_datasource()
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"


def test_dashboard_provider():
    doc = load_yaml(DEPLOY / "grafana/provisioning/dashboards/datapost.yaml")
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_dashboard_shape():
    board = dashboard()
    assert board["uid"] == "datapost" and board["title"]
    assert isinstance(board["schemaVersion"], int)
    panels = list(dashboard_panels())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    uid = provisioned_datasource()["uid"]
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["targets"], panel.get("title")
        assert panel["datasource"]["uid"] == uid
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid and target["expr"].strip()


@pytest.mark.parametrize("title", [
    "Deliveries by outcome", "Deliveries by provider and outcome", "Success rate by provider",
    "Attempt duration p50 / p95 / p99", "Queue depth", "Jobs by state", "Delayed", "In flight",
    "Parked", "Dead", "Oldest queued job", "Bytes uploaded", "Token refreshes and failures",
    "Rate-limited attempts", "Live workers", "Sign-ins",
])
def test_dashboard_has_panel(title):
    assert title in {p["title"] for p in dashboard_panels()}


def test_attempt_duration_quantiles_come_from_the_histogram():
    (panel,) = [p for p in dashboard_panels() if p["title"].startswith("Attempt duration")]
    exprs = " ".join(t["expr"] for t in panel["targets"])
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}," in exprs
    assert "datapost_attempt_duration_seconds_bucket" in exprs and "by (le)" in exprs
