"""Configuration: environment over TOML, validated with messages that name the key."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from worker.config import DEFAULT_PDA_SUFFIXES, load_settings
from worker.errors import ConfigError

KEY = base64.b64encode(bytes(range(32))).decode()


def test_defaults_need_nothing():
    s = load_settings({})
    assert s.redis_url is None
    assert s.digime.api_url == "https://api.digi.me/v1.7/"
    assert s.digime.onboard_url == "https://api.digi.me/apps/saas/"
    assert s.dataswyft.scheme == "https"
    assert s.dataswyft.allowed_domains == DEFAULT_PDA_SUFFIXES


def test_environment_values_are_parsed():
    s = load_settings({
        "DATAPOST_REDIS_URL": "redis://127.0.0.1:7000/2",
        "DATAPOST_MASTER_KEY": KEY,
        "DATAPOST_DIGIME_API_URL": "http://127.0.0.1:8780/v1.7",
        "DATAPOST_DATASWYFT_SCHEME": "HTTP",
        "DATAPOST_DATASWYFT_ALLOWED_DOMAINS": " hubat.net, .Localhost ",
        "DATAPOST_SANDBOX": "yes",
    })
    assert s.redis_url == "redis://127.0.0.1:7000/2"
    assert s.master_key.reveal() == bytes(range(32))
    assert s.digime.api_url == "http://127.0.0.1:8780/v1.7/"  # trailing slash added
    assert s.dataswyft.scheme == "http"
    assert s.dataswyft.allowed_domains == ("hubat.net", "localhost")
    assert s.sandbox_mode is True


def test_environment_wins_over_toml(tmp_path: Path):
    cfg = tmp_path / "datapost.toml"
    cfg.write_text('redis_url = "redis://toml:1/0"\n[digime]\napplication_id = "from-toml"\n'
                   'contract_id = "c1"\n[dataswyft]\nallowed_domains = ["hubat.net"]\n')
    s = load_settings({"DATAPOST_CONFIG": str(cfg), "DATAPOST_REDIS_URL": "redis://env:2/0"})
    assert s.redis_url == "redis://env:2/0"
    assert s.digime.application_id == "from-toml"
    assert s.dataswyft.allowed_domains == ("hubat.net",)


@pytest.mark.parametrize(("env", "expected"), [
    ({"DATAPOST_MASTER_KEY": "not base64!"}, "DATAPOST_MASTER_KEY (environment): must be base64"),
    ({"DATAPOST_MASTER_KEY": base64.b64encode(b"short").decode()},
     "DATAPOST_MASTER_KEY (environment): must decode to 32 bytes, got 5"),
    ({"DATAPOST_REDIS_URL": "http://x"}, "DATAPOST_REDIS_URL (environment): must be a redis"),
    ({"DATAPOST_DIGIME_API_URL": "ftp://x/"}, "DATAPOST_DIGIME_API_URL (environment): must be a"),
    ({"DATAPOST_DATASWYFT_SCHEME": "gopher"}, "DATAPOST_DATASWYFT_SCHEME (environment): must be one"),
    ({"DATAPOST_DATASWYFT_ALLOWED_DOMAINS": "a_b.com"}, "'a_b.com' is not a domain suffix"),
    ({"DATAPOST_SANDBOX": "maybe"}, "DATAPOST_SANDBOX (environment): must be true or false"),
    ({"DATAPOST_REDIS_ULR": "redis://x"}, "DATAPOST_REDIS_ULR (environment): unknown setting"),
    ({"DATAPOST_CONFIG": "/nonexistent/datapost.toml"}, "does not exist"),
])
def test_bad_environment_names_the_key(env, expected):
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert expected in str(info.value)


def test_bad_toml_names_the_file_and_key(tmp_path: Path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[digime]\napi_url = 5\n")
    with pytest.raises(ConfigError, match=r"digime.api_url \(.*bad.toml\): must be a non-empty"):
        load_settings({"DATAPOST_CONFIG": str(cfg)})
    cfg.write_text("[digime]\napi_ulr = 'http://x/'\n")
    with pytest.raises(ConfigError, match=r"digime.api_ulr .*unknown key"):
        load_settings({"DATAPOST_CONFIG": str(cfg)})
    cfg.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings({"DATAPOST_CONFIG": str(cfg)})


def test_secrets_never_show_in_errors_or_reprs():
    s = load_settings({"DATAPOST_MASTER_KEY": KEY,
                       "DATAPOST_DIGIME_PRIVATE_KEY": "-----BEGIN " + "PRIVATE KEY-----\nAAAA\n"
                                                      "-----END PRIVATE KEY-----\n"})
    text = repr(s)
    assert KEY not in text and "AAAA" not in text
    with pytest.raises(ConfigError) as info:
        load_settings({"DATAPOST_REDIS_URL": "http://user:hunter22@host/"})
    assert "hunter22" not in str(info.value)


def test_key_file_and_inline_key_are_exclusive():
    with pytest.raises(ConfigError, match="set one, not both"):
        load_settings({"DATAPOST_DIGIME_PRIVATE_KEY_FILE": "/k.pem",
                       "DATAPOST_DIGIME_PRIVATE_KEY": "-----BEGIN RSA " + "PRIVATE KEY-----\nx\n"})
