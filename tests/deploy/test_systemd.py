"""deploy/systemd/: the units parse and carry the options a graceful, hardened service needs."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from collections import defaultdict

import pytest

from worker.config import load_settings

from .util import SYSTEMD, parse_env_file, sample_master_key, worker_shutdown_seconds

UNITS = {"worker": SYSTEMD / "datapost-worker.service",
         "callback": SYSTEMD / "datapost-callback.service"}


def parse(path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    assert parser.read(path) == [str(path)]
    return parser


def all_values(path) -> dict[tuple[str, str], list[str]]:
    """Repeated keys (Environment=, SystemCallFilter=) keep every value, as systemd does."""
    values: dict[tuple[str, str], list[str]] = defaultdict(list)
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values[(section, key.strip())].append(value.strip())
    return values


@pytest.mark.parametrize("kind", UNITS)
def test_unit_parses_with_the_expected_options(kind):
    unit = parse(UNITS[kind])
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    assert service["ExecStart"].split()[0].endswith("/datapost")
    assert service["ExecStart"].split()[1] == kind
    assert service["User"] not in ("root", "0")
    assert service["EnvironmentFile"].startswith("/etc/datapost/")
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    assert "/var/lib/datapost" in service["ReadWritePaths"].split()
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_worker_stop_timeout_fits_the_graceful_shutdown():
    service = parse(UNITS["worker"])["Service"]
    assert int(service["TimeoutStopSec"]) > worker_shutdown_seconds()
    assert service["KillMode"] == "mixed"  # SIGTERM to `datapost worker`, which passes it on


@pytest.mark.parametrize("kind", UNITS)
def test_data_dir_is_the_writable_path(kind):
    values = all_values(UNITS[kind])
    env = dict(item.split("=", 1) for item in values[("Service", "Environment")])
    writable = values[("Service", "ReadWritePaths")][0].split()
    assert env["DATAPOST_DATA_DIR"] in writable
    example = parse_env_file(SYSTEMD / "datapost.env.example")
    assert any(example["DATAPOST_PAYLOAD_DIR"].startswith(path) for path in writable)


@pytest.mark.parametrize("kind", UNITS)
def test_environment_loads_as_settings(kind):
    values = all_values(UNITS[kind])
    env = parse_env_file(SYSTEMD / "datapost.env.example")
    assert env["DATAPOST_MASTER_KEY"] == "REPLACE_ME"
    env["DATAPOST_MASTER_KEY"] = sample_master_key()
    env.update(item.split("=", 1) for item in values[("Service", "Environment")])
    env = {k: v.replace("%d", "/run/credentials/x") for k, v in env.items()}
    settings = load_settings(env)
    assert str(settings.digime.private_key_file).endswith("/digime-contract.pem")
    credential = values[("Service", "LoadCredential")][0].split(":")[0]
    assert env["DATAPOST_DIGIME_PRIVATE_KEY_FILE"].endswith("/" + credential)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path):
    """`systemd-analyze verify` reports unknown or malformed options (ExecStart points at a
    binary that exists here, since the real one is installed on the target host only)."""
    for path in UNITS.values():
        text = path.read_text().replace("/opt/datapost/bin/datapost", shutil.which("true"))
        (tmp_path / path.name).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no",
                             *(str(tmp_path / p.name) for p in UNITS.values())],
                            capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if str(tmp_path) in line]
    assert not complaints, "\n".join(complaints)
