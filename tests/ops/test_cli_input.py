"""Help for every operator command, and bad input: one clear line, exit status 2, no
traceback, nothing on stdout (so --json callers never parse an error as a result)."""

from __future__ import annotations

import uuid

import pytest

from .conftest import cli, no_traceback

COMMANDS = [
    ["jobs"], ["jobs", "list"], ["jobs", "show"], ["jobs", "replay"], ["jobs", "cancel"],
    ["credentials"], ["credentials", "list"], ["credentials", "revoke"], ["stats"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help(command):
    done = cli({}, *command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: datapost {' '.join(command)}")
    if command[-1] not in ("jobs", "credentials"):
        assert "--json" in done.stdout


def test_top_level_help_lists_the_operator_commands():
    done = cli({}, "--help")
    assert done.returncode == 0
    for name in ("jobs", "credentials", "stats"):
        assert f"    {name}" in done.stdout


@pytest.mark.parametrize("command", [["jobs"], ["credentials"]])
def test_a_group_without_an_action_shows_its_usage(command):
    done = cli({"DATAPOST_MASTER_KEY": "A" * 43 + "="}, *command)
    assert done.returncode == 2 and done.stderr.startswith(f"usage: datapost {command[0]}")


BAD = [
    (["jobs", "show", "JOB"], "no job 'JOB'"),
    (["jobs", "show", "a/b"], "'a/b' is not a job id"),
    (["jobs", "list", "--state", "lost"], "invalid choice: 'lost'"),
    (["jobs", "list", "--provider", "icloud"], "invalid choice: 'icloud'"),
    (["jobs", "list", "--since", "last tuesday"], "--since 'last tuesday' is neither"),
    (["jobs", "list", "--until", "2026-13-45"], "--until '2026-13-45' is neither"),
    (["jobs", "list", "--limit", "0"], "limit must be from 1 to 10000"),
    (["jobs", "list", "--limit", "many"], "invalid int value"),
    (["jobs", "cancel", "JOB"], "no job 'JOB'"),
    (["credentials", "list", "--provider", "icloud"], "invalid choice: 'icloud'"),
    (["credentials", "revoke", "digime", "nobody"], "no digime credential for user 'nobody'"),
    (["credentials", "revoke", "digime"], "the following arguments are required: USER"),
    (["stats", "--window", "soon"], "--window 'soon' is not a duration"),
    (["stats", "--window", "90d"], "--window '90d' must be from 1 s to 30 days"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_a_clear_error_with_status_2(env, args, message):
    for flag in ([], ["--json"]):
        done = cli(env, *args, *flag)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert message in done.stderr
        assert done.stdout == ""
        no_traceback(done)


def test_unreachable_redis_is_a_clear_error(env):
    done = cli({**env, "DATAPOST_REDIS_URL": "redis://127.0.0.1:1/0"}, "jobs", "list")
    assert done.returncode == 1 and "cannot reach Redis" in done.stderr
    no_traceback(done)


def test_nothing_to_show_on_an_empty_installation(env):
    assert cli(env, "jobs", "list").stdout == "No jobs match.\n"
    assert cli(env, "credentials", "list").stdout == "No credentials stored.\n"
    done = cli(env, "jobs", "replay", "--state", "failed", "--user", uuid.uuid4().hex)
    assert done.returncode == 0 and done.stdout == "No jobs match; nothing replayed.\n"
    stats = cli(env, "stats", "--json")
    assert '"in_flight": 0' in stats.stdout
