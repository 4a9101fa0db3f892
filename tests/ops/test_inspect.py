"""Reading commands against real jobs in every state: `jobs list`, `jobs show`, `stats`,
`credentials list`, human and --json, with no secret in any output."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from .conftest import cli, cli_json, no_traceback

STATES = ["queued", "running", "retrying", "succeeded", "parked", "failed", "dead", "cancelled"]
EXPECTED = {"succeeded": 3, "failed": 2, "dead": 1, "parked": 1, "retrying": 1, "queued": 1,
            "cancelled": 1, "running": 1}


def all_ids(world) -> set[str]:
    return {i for ids in world.ids.values() for i in ids}


def test_the_world_has_a_job_in_every_state(world):
    assert {s: len(world.ids[s]) for s in STATES} == EXPECTED


def test_list_shows_every_job_newest_first(world):
    got = cli_json(world.env, "jobs", "list")
    assert got["count"] == 11 and {j["id"] for j in got["jobs"]} == all_ids(world)
    by_id = {j["id"]: j for j in got["jobs"]}
    for state, ids in world.ids.items():
        assert all(by_id[i]["state"] == state for i in ids), state
    times = [j["updated_at"] for j in got["jobs"]]
    assert times == sorted(times, reverse=True)
    row = by_id[world.ids["failed"][0]]
    assert row["provider"] == "digime" and row["op"] == "postbox"
    assert row["user"] == world.users["fail"]["user"]
    assert row["error"]["status"] == 400
    assert set(row) >= {"id", "state", "provider", "op", "user", "created_at", "updated_at",
                        "attempts", "runs", "run_at", "error"}


def test_list_human_output_is_an_aligned_table(world):
    done = cli(world.env, "jobs", "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.rstrip("\n").splitlines()
    header = lines[0]
    assert header.split() == ["ID", "STATE", "PROVIDER", "OP", "USER", "ATTEMPTS", "CREATED",
                              "UPDATED", "ERROR"]
    rows = lines[1:-1]
    assert len(rows) == 11 and lines[-1] == "11 job(s), newest first"
    for column in ("STATE", "PROVIDER", "USER", "ATTEMPTS", "UPDATED", "ERROR"):
        start = header.index(column)
        assert all(r[start - 2:start] == "  " and r[start] != " " for r in rows), column
    failed = next(r for r in rows if r.startswith(world.ids["failed"][0]))
    assert "400 ValidationErrors: The file is not allowed" in failed


@pytest.mark.parametrize("state", STATES)
def test_list_by_state(world, state):
    got = cli_json(world.env, "jobs", "list", "--state", state)
    assert sorted(j["id"] for j in got["jobs"]) == sorted(world.ids[state])
    assert got["filters"]["state"] == state


def test_list_filters_provider_user_time_and_limit(world):
    env = world.env
    pda = cli_json(env, "jobs", "list", "--provider", "dataswyft")["jobs"]
    assert {j["user"] for j in pda} == {u["user"] for u in world.pda_users.values()}
    assert len(pda) == 2
    digime = cli_json(env, "jobs", "list", "--provider", "digime")["jobs"]
    assert len(digime) == 9 and {j["provider"] for j in digime} == {"digime"}

    ok_user = world.users["ok"]["user"]
    mine = cli_json(env, "jobs", "list", "--user", ok_user)["jobs"]
    assert {j["id"] for j in mine} == {*world.ids["succeeded"][:2], *world.ids["queued"],
                                       *world.ids["cancelled"]}
    both = cli_json(env, "jobs", "list", "--user", ok_user, "--state", "succeeded")["jobs"]
    assert sorted(j["id"] for j in both) == sorted(world.ids["succeeded"][:2])
    assert cli_json(env, "jobs", "list", "--provider", "dataswyft", "--state", "dead")["count"] == 0

    assert cli_json(env, "jobs", "list", "--since", "-1h")["count"] == 11
    assert cli_json(env, "jobs", "list", "--since=-1h")["count"] == 11
    assert cli_json(env, "jobs", "list", "--since", "1d")["count"] == 11
    later = datetime.fromtimestamp(world.created_at + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cli_json(env, "jobs", "list", "--since", later)["count"] == 0
    assert cli_json(env, "jobs", "list", "--until", "-2h")["count"] == 0
    assert cli_json(env, "jobs", "list", "--until", later)["count"] == 11

    every = cli_json(env, "jobs", "list")["jobs"]
    two = cli_json(env, "jobs", "list", "--limit", "2")
    assert [j["id"] for j in two["jobs"]] == [j["id"] for j in every[:2]]
    # the newest entry into its state: the running job (it was claimed last)
    assert every[0]["id"] == world.ids["running"][0]


def test_show_a_dead_job_has_its_attempts_and_events(world):
    [job_id] = world.ids["dead"]
    got = cli_json(world.env, "jobs", "show", job_id)
    assert got["job"]["id"] == job_id and got["job"]["state"] == "dead"
    assert got["job"]["attempts"] == 2
    attempts = got["attempts"]
    assert [a["status"] for a in attempts] == [500, 500]
    assert attempts[0]["decision"].startswith("retry 1 in") and attempts[1]["decision"] == "dead"
    assert all(a["error_class"] == "transient" and a["duration_ms"] >= 0 for a in attempts)
    assert [(e["from"], e["to"]) for e in got["events"]] == [
        (None, "queued"), ("queued", "running"), ("running", "retrying"),
        ("retrying", "running"), ("running", "dead")]
    assert got["events_complete"] is True
    assert "spec" not in got["job"]

    done = cli(world.env, "jobs", "show", job_id)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"Job {job_id}\n")
    assert re.search(r"^  state\s+dead$", out, re.M)
    assert "Attempts (2)" in out and "Events (5)" in out
    header = next(line for line in out.splitlines() if line.strip().startswith("# "))
    assert header.split() == ["#", "STARTED", "DURATION", "STATUS", "CODE", "CLASS", "DECISION",
                              "MESSAGE"]
    table = out.split("Attempts (2)\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert "500" in table[1] and "transient" in table[1] and "retry 1 in" in table[1]
    assert "dead" in table[2]
    status_col = header.index("STATUS")
    assert table[1][status_col:status_col + 3] == "500" == table[2][status_col:status_col + 3]


def test_show_failed_parked_and_running_jobs(world):
    failed = cli_json(world.env, "jobs", "show", world.ids["failed"][0])
    assert failed["job"]["error"]["message"] == "ValidationErrors: The file is not allowed"
    [attempt] = failed["attempts"]
    assert attempt["status"] == 400 and attempt["decision"] == "failed"
    assert attempt["code"] == "ValidationErrors" and attempt["error_class"] == "permanent"

    pda_failed = cli_json(world.env, "jobs", "show", world.ids["failed"][1])
    assert pda_failed["job"]["provider"] == "dataswyft"
    assert pda_failed["attempts"][0]["status"] == 403

    parked = cli_json(world.env, "jobs", "show", world.ids["parked"][0])
    assert parked["job"]["state"] == "parked"
    assert "refresh token rejected" in parked["job"]["error"]["message"]

    running = cli_json(world.env, "jobs", "show", world.ids["running"][0])
    assert running["job"]["state"] == "running" and running["attempts"] == []
    assert running["events"][-1]["to"] == "running" and running["events"][-1]["worker"]
    human = cli(world.env, "jobs", "show", world.ids["running"][0]).stdout
    assert "Attempts (0)\n  none yet" in human

    retrying = cli_json(world.env, "jobs", "show", world.ids["retrying"][0])
    assert retrying["job"]["throttles"] == 1 and retrying["job"]["attempts"] == 0
    assert retrying["job"]["run_at"] > world.created_at + 3000
    assert retrying["attempts"][0]["decision"].startswith("throttled")


def test_stats_match_what_was_created(world):
    stats = cli_json(world.env, "stats")
    assert stats["jobs"] == EXPECTED
    assert stats["in_flight"] == 1
    q = stats["queue"]
    assert q["broker"] == "redis" and q["name"] == "datapost"
    assert q["workers"] >= 1 and q["ready"] == 0 and q["dead_letter"] == 0
    # messages still around: the delayed queued job, the throttled retry and the cancelled
    # job (dropped when its time comes), plus the running job's own message
    assert q["ready"] + q["delayed"] + q["unacked"] == 4
    assert stats["scheduled_later"] == 2  # the delayed job and the retry, an hour away
    assert stats["oldest_queued_age"] is not None
    windows = {w["label"]: w["providers"] for w in stats["success"]}
    assert list(windows) == ["5m", "1h", "1d"]
    for providers in windows.values():
        assert providers["digime"] == {"succeeded": 2, "failed": 1, "dead": 1, "finished": 4,
                                       "rate": 0.5}
        assert providers["dataswyft"] == {"succeeded": 1, "failed": 1, "dead": 0, "finished": 2,
                                          "rate": 0.5}

    short = cli_json(world.env, "stats", "--window", "10m")
    assert [w["window_seconds"] for w in short["success"]] == [600]

    done = cli(world.env, "stats")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("Queue datapost (redis broker)")
    assert "In flight: 1 running" in out
    state_lines = out.split("Jobs by state\n", 1)[1].splitlines()[:2]
    assert state_lines[0].split() == [s.upper() for s in STATES]
    assert state_lines[1].split() == ["1", "1", "1", "3", "1", "2", "1", "1"]
    assert re.search(r"^  5m\s+digime\s+2\s+1\s+1\s+50\.0%$", out, re.M)
    assert re.search(r"^  1d\s+dataswyft\s+1\s+1\s+0\s+50\.0%$", out, re.M)


def test_credentials_list_is_metadata_only(world):
    got = cli_json(world.env, "credentials", "list")
    by_user = {c["user"]: c for c in got["credentials"]}
    for minted in world.users.values():
        assert by_user[minted["user"]]["provider"] == "digime"
        assert by_user[minted["user"]]["has_postbox"] is True
    assert by_user[world.users["parked"]["user"]]["status"] == "needs_signin"
    assert by_user[world.users["ok"]["user"]]["status"] == "active"
    for pda_user in world.pda_users.values():
        c = by_user[pda_user["user"]]
        assert c["provider"] == "dataswyft" and c["pda_domain"] == pda_user["pda"]["domain"]
    assert set(got["credentials"][0]) == {"provider", "user", "status", "version", "kid",
                                          "updated_at", "expires_at", "pda_domain", "has_postbox"}
    pda_only = cli_json(world.env, "credentials", "list", "--provider", "dataswyft")
    assert {c["provider"] for c in pda_only["credentials"]} == {"dataswyft"}
    assert pda_only["count"] == 2

    done = cli(world.env, "credentials", "list")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["PROVIDER", "USER", "STATUS", "VERSION", "EXPIRES", "UPDATED",
                                "KEY", "ID", "DETAIL"]
    assert lines[-1] == "8 credential(s)"
    start = lines[0].index("STATUS")
    assert all(line[start - 2:start] == "  " for line in lines[1:-1])


def test_no_secret_in_any_output(world):
    outputs = []
    for flag in ([], ["--json"]):
        for args in (["jobs", "list"], ["stats"], ["credentials", "list"],
                     *[["jobs", "show", i] for i in sorted(all_ids(world))]):
            done = cli(world.env, *args, *flag)
            assert done.returncode == 0, (args, done.stderr)
            outputs.append(done.stdout + done.stderr)
    text = "\n".join(outputs)
    assert len(world.secrets) > 20
    for secret in world.secrets + world.names:
        assert secret not in text, f"{secret[:12]}… appears in CLI output"


def test_refusals_against_real_jobs_change_nothing(world):
    env = world.env
    running, succeeded = world.ids["running"][0], world.ids["succeeded"][0]
    for args, message in (
            (["jobs", "cancel", running], f"job {running} is running: only parked, queued, "
                                          "retrying jobs can be cancelled"),
            (["jobs", "cancel", world.ids["queued"][0], succeeded], "is succeeded"),
            (["jobs", "replay", succeeded], "only dead, failed, parked jobs can be replayed"),
            (["jobs", "replay", world.ids["dead"][0], running], "is running"),
    ):
        done = cli(env, *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        no_traceback(done)
    assert cli_json(env, "stats")["jobs"] == EXPECTED
