"""Redaction on real log output: structlog and stdlib loggers, in a separate process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PRIVATE_PEM = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
).decode()
A_JWT = jwt.encode({"sub": "user-1", "access_token": "x"}, "k" * 32, algorithm="HS256")
OPAQUE = "opaque-token-3f9a8c7e1d2b"

SCRIPT = textwrap.dedent("""
    import logging, sys, json
    from worker.config import LogSettings
    from worker.logging import configure_logging, get_logger
    secrets = json.loads(sys.argv[1])
    redactor = configure_logging(LogSettings(format=sys.argv[2]))
    redactor.remember(secrets["opaque"])
    log = get_logger("datapost.test")
    log.info("token refreshed", access_token=secrets["opaque"], refresh_token="r" * 40,
             credential={"nested": {"password": "pw-1234567"}}, status_code=200)
    log.info("a value that only looks like a secret", note="auth " + secrets["jwt"],
             detail="key: " + secrets["pem"], header="Bearer " + secrets["opaque"])
    logging.getLogger("dramatiq.worker").info("GET https://pda.example/cb?token=%s&state=ok", secrets["jwt"])
    logging.getLogger("uvicorn.error").warning("client sent %s", secrets["opaque"])
    try:
        raise RuntimeError("upload failed for " + secrets["jwt"])
    except RuntimeError:
        log.exception("delivery crashed", job_id="job-1")
""")


def run(fmt: str) -> str:
    secrets = {"opaque": OPAQUE, "jwt": A_JWT, "pem": PRIVATE_PEM}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(secrets), fmt],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stderr


def assert_clean(output: str) -> None:
    assert OPAQUE not in output
    assert A_JWT not in output and A_JWT.split(".")[1] not in output
    assert "BEGIN " + "PRIVATE KEY" not in output and PRIVATE_PEM.splitlines()[1] not in output
    assert "r" * 40 not in output and "pw-1234567" not in output


def test_json_lines_are_redacted_and_parse():
    out = run("json")
    assert_clean(out)
    lines = [json.loads(line) for line in out.strip().splitlines()]
    by_event = {line["event"]: line for line in lines}
    first = by_event["token refreshed"]
    assert first["access_token"] == "[REDACTED]"
    assert first["credential"] == "[REDACTED]"
    assert first["status_code"] == 200  # harmless fields survive
    assert "[REDACTED JWT]" in by_event["a value that only looks like a secret"]["note"]
    assert "[REDACTED PEM]" in by_event["a value that only looks like a secret"]["detail"]
    crashed = by_event["delivery crashed"]
    assert crashed["job_id"] == "job-1" and "RuntimeError" in crashed["exception"]
    assert "state=ok" in json.dumps(lines)  # the rest of a URL is kept


def test_console_output_is_redacted_too():
    out = run("console")
    assert_clean(out)
    assert "token refreshed" in out and "delivery crashed" in out
