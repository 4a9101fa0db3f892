"""deploy/Dockerfile: base image, non-root user, entrypoint, health check, stop signal, and
no secret baked in."""

from __future__ import annotations

import json

import pytest

from .util import DEPLOY, SECRET_NAME_RE, Dockerfile

DOCKERFILE = Dockerfile(DEPLOY / "Dockerfile")


def test_based_on_python_3_11_slim():
    froms = DOCKERFILE.all("FROM")
    assert froms
    assert all(f.split()[0] == "python:3.11-slim" for f in froms)


def test_installs_the_package():
    assert any("pip install ." in run for run in DOCKERFILE.all("RUN"))
    for needed in ("pyproject.toml", "worker", "producers", "sandbox"):
        assert any(needed in copy for copy in DOCKERFILE.all("COPY")), needed


def test_runs_as_a_non_root_user():
    users = [rest for word, rest in DOCKERFILE.final_stage() if word == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_entrypoint_and_default_command():
    assert json.loads(DOCKERFILE.all("ENTRYPOINT")[-1]) == ["datapost"]
    assert json.loads(DOCKERFILE.all("CMD")[-1]) == ["worker"]


def test_exposes_the_metrics_and_callback_ports():
    ports = {p.split("/")[0] for rest in DOCKERFILE.all("EXPOSE") for p in rest.split()}
    assert {"9191", "8787"} <= ports


def test_healthcheck_hits_healthz_with_python():
    (check,) = DOCKERFILE.all("HEALTHCHECK")
    assert "CMD" in check and "/healthz" in check
    assert "python" in check and "curl" not in check
    assert DOCKERFILE.env()["HEALTHCHECK_URL"].endswith(":9191/healthz")


def test_stop_signal_is_sigterm():
    assert DOCKERFILE.all("STOPSIGNAL") == ["SIGTERM"]


def test_no_secret_is_baked_in():
    env = DOCKERFILE.env()
    secretish = sorted(k for k in env if SECRET_NAME_RE.search(k))
    assert not secretish, f"secret-looking ENV/ARG in the image: {secretish}"
    for rest in DOCKERFILE.all("COPY") + DOCKERFILE.all("ADD"):
        for bad in (".env", ".pem", "secret", ".datapost"):
            assert bad not in rest, rest
    assert "--secret" not in DOCKERFILE.text or "mount=type=secret" in DOCKERFILE.text


@pytest.mark.parametrize("pattern", [".venv", ".git", ".env", "*.pem", ".datapost"])
def test_dockerignore_keeps_local_state_out_of_the_context(pattern):
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert any(line.endswith(pattern) for line in lines)
