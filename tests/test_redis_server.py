"""The embedded server the CLI starts, and the private servers tests use."""

from __future__ import annotations

from pathlib import Path

import redis

from worker.redis_server import RedisServerProcess, embedded_binary, redis_for_cli


def test_embedded_server_persists_with_aof_across_a_crash(tmp_path: Path):
    server = RedisServerProcess(embedded_binary(), tmp_path)
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        client.rpush("datapost:test:queue", "job-1", "job-2")
        client.close()
        server.kill()  # SIGKILL: only the AOF can bring the data back
        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.lrange("datapost:test:queue", 0, -1) == [b"job-1", b"job-2"]
        assert client.config_get("appendonly")["appendonly"] == "yes"
        client.close()
    finally:
        server.stop()
    assert (tmp_path / "appendonlydir").is_dir()


def test_cli_helper_starts_tells_reuses_and_stops(tmp_path: Path):
    said: list[str] = []
    with redis_for_cli(None, tmp_path, said.append) as url:
        assert redis.Redis.from_url(url).ping()
        with redis_for_cli(None, tmp_path, said.append) as again:
            assert again == url  # a second command shares the running server
    assert "started an embedded" in said[0] and "already running" in said[1]
    assert said[-1] == "Stopped the embedded Redis server"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
        raise AssertionError("the embedded server should have stopped")
    except redis.ConnectionError:
        pass


def test_configured_url_is_used_as_is(tmp_path: Path):
    said: list[str] = []
    with redis_for_cli("redis://127.0.0.1:1/0", tmp_path, said.append) as url:
        assert url == "redis://127.0.0.1:1/0"
    assert said == [] and not (tmp_path / "redis").exists()


def test_private_session_server_is_not_the_shared_one(redis_server, redis_client):
    assert redis_server.port != 6379
    redis_client.set("datapost:test:k", "v")
    assert redis_client.get("datapost:test:k") == b"v"
