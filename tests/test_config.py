"""Configuration: the contract's variables, validated with one-line errors naming the variable."""

import pytest

from app.config import ConfigError, load_settings

DEV = {"BRIDGE_ENV": "development"}


def load(**overrides):
    return load_settings({**DEV, **overrides}, env_file=None)


def test_defaults_match_the_contract(monkeypatch):
    for name in ("DATABASE_URL", "MI_API_URL", "BRIDGE_POLL_INTERVAL", "BRIDGE_RETRY_SCHEDULE"):
        monkeypatch.delenv(name, raising=False)
    settings = load()
    assert settings.mi_api_url == "https://mi.apigw.ntruss.com"
    assert settings.mi_default_api == "video-assets"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.bridge_poll_interval == 10
    assert settings.bridge_poll_max_interval == 120
    assert settings.bridge_watch_timeout == 259200
    assert settings.bridge_retry_schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert settings.bridge_lease_seconds == 60
    assert settings.mi_max_rps == 100
    assert settings.port == 5000
    assert settings.bridge_embedded_worker is False
    assert settings.bridge_allow_private_urls is False
    assert settings.bridge_retention_days == 30
    assert settings.bridge_housekeeping_interval == 600
    assert settings.sqlalchemy_url.startswith("sqlite:///")
    assert settings.sqlalchemy_url.endswith("/instance/mi-bridge.db")


def test_environment_is_read_and_overrides_win(monkeypatch):
    monkeypatch.setenv("BRIDGE_POLL_INTERVAL", "2.5")
    monkeypatch.setenv("BRIDGE_LEASE_SECONDS", "30")
    settings = load(BRIDGE_LEASE_SECONDS="0.5")
    assert settings.bridge_poll_interval == 2.5
    assert settings.bridge_lease_seconds == 0.5


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db:5432/x", "postgresql+psycopg://u:p@db:5432/x"),
        ("postgresql://u:p@db/x", "postgresql+psycopg://u:p@db/x"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_url_forms(url, expected):
    assert load(DATABASE_URL=url).sqlalchemy_url == expected


def test_lists_are_comma_separated():
    settings = load(BRIDGE_API_TOKENS=" a , b,,c ", BRIDGE_RETRY_SCHEDULE="0.1,2,3.5")
    assert settings.api_tokens() == ("a", "b", "c")
    assert settings.bridge_retry_schedule == (0.1, 2, 3.5)


def test_retention_takes_decimal_days_and_zero_keeps_everything():
    assert load(BRIDGE_RETENTION_DAYS="0.5").bridge_retention_days == 0.5
    assert load(BRIDGE_RETENTION_DAYS="0").bridge_retention_days == 0
    assert load(BRIDGE_HOUSEKEEPING_INTERVAL="0.5").bridge_housekeeping_interval == 0.5


def test_default_targets_are_json():
    settings = load(BRIDGE_DEFAULT_TARGETS='[{"type": "slack", "channel": "C1"}]')
    assert settings.bridge_default_targets == ({"type": "slack", "channel": "C1"},)


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"BRIDGE_POLL_INTERVAL": "0.05"}, "BRIDGE_POLL_INTERVAL"),
        ({"BRIDGE_POLL_INTERVAL": "soon"}, "BRIDGE_POLL_INTERVAL"),
        ({"BRIDGE_POLL_MAX_INTERVAL": "1"}, "BRIDGE_POLL_MAX_INTERVAL"),
        ({"BRIDGE_RETRY_SCHEDULE": "5,,30"}, "BRIDGE_RETRY_SCHEDULE"),
        ({"BRIDGE_RETRY_SCHEDULE": "5,x"}, "BRIDGE_RETRY_SCHEDULE"),
        ({"BRIDGE_DEFAULT_TARGETS": "[{"}, "BRIDGE_DEFAULT_TARGETS"),
        ({"BRIDGE_DEFAULT_TARGETS": '{"type": "slack"}'}, "BRIDGE_DEFAULT_TARGETS"),
        ({"BRIDGE_EMBEDDED_WORKER": "maybe"}, "BRIDGE_EMBEDDED_WORKER"),
        ({"MI_DEFAULT_API": "v3"}, "MI_DEFAULT_API"),
        ({"MI_API_URL": "ftp://x"}, "MI_API_URL"),
        ({"MI_MAX_RPS": "0"}, "MI_MAX_RPS"),
        ({"BRIDGE_POLL_CONCURRENCY": "0"}, "BRIDGE_POLL_CONCURRENCY"),
        ({"BRIDGE_POLL_CONCURRENCY": "257"}, "BRIDGE_POLL_CONCURRENCY"),
        ({"BRIDGE_RETENTION_DAYS": "-1"}, "BRIDGE_RETENTION_DAYS"),
        ({"BRIDGE_RETENTION_DAYS": "a month"}, "BRIDGE_RETENTION_DAYS"),
        ({"BRIDGE_RETENTION_DAYS": "inf"}, "BRIDGE_RETENTION_DAYS"),
        ({"BRIDGE_HOUSEKEEPING_INTERVAL": "0"}, "BRIDGE_HOUSEKEEPING_INTERVAL"),
        ({"BRIDGE_HOUSEKEEPING_INTERVAL": "-600"}, "BRIDGE_HOUSEKEEPING_INTERVAL"),
        ({"PORT": "70000"}, "PORT"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"BRIDGE_ENV": "staging"}, "BRIDGE_ENV"),
    ],
)
def test_bad_values_name_their_variable_on_one_line(overrides, variable):
    with pytest.raises(ConfigError) as caught:
        load(**overrides)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"configuration error: {variable}: ")
    assert "\n" not in str(caught.value)


LONG_KEY = "k" * 32
LONG_TOKEN = "t" * 24


def test_production_requires_secret_key_and_tokens():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings({"BRIDGE_ENV": "production", "BRIDGE_API_TOKENS": LONG_TOKEN}, env_file=None)
    with pytest.raises(ConfigError, match="BRIDGE_API_TOKENS"):
        load_settings({"BRIDGE_ENV": "production", "SECRET_KEY": LONG_KEY}, env_file=None)
    settings = load_settings(
        {"BRIDGE_ENV": "production", "SECRET_KEY": LONG_KEY, "BRIDGE_API_TOKENS": LONG_TOKEN},
        env_file=None,
    )
    assert not settings.development


@pytest.mark.parametrize(
    ("values", "variable", "minimum"),
    [
        ({"SECRET_KEY": "k" * 31, "BRIDGE_API_TOKENS": LONG_TOKEN}, "SECRET_KEY", "32"),
        ({"SECRET_KEY": LONG_KEY, "BRIDGE_API_TOKENS": "t" * 23}, "BRIDGE_API_TOKENS", "24"),
        ({"SECRET_KEY": LONG_KEY, "BRIDGE_API_TOKENS": f"{LONG_TOKEN},short"}, "BRIDGE_API_TOKENS",
         "24"),
    ],
)  # fmt: skip
def test_production_secrets_have_minimum_lengths(values, variable, minimum):
    with pytest.raises(ConfigError) as caught:
        load_settings({"BRIDGE_ENV": "production", **values}, env_file=None)
    assert caught.value.variable == variable
    assert f"at least {minimum} characters" in str(caught.value)
    assert "k" * 31 not in str(caught.value)  # the value itself is never echoed
    # Development keeps working with short ones.
    assert load_settings({"BRIDGE_ENV": "development", **values}, env_file=None).development


def test_secret_values_never_appear_in_errors():
    with pytest.raises(ConfigError) as caught:
        load(BRIDGE_POLL_INTERVAL="hunter2-secret")
    assert "hunter2" not in str(caught.value)


def test_dotenv_file_is_read_below_the_environment(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("BRIDGE_POLL_INTERVAL=3\nBRIDGE_LEASE_SECONDS=9\n")
    monkeypatch.setenv("BRIDGE_LEASE_SECONDS", "4")
    settings = load_settings(DEV, env_file=str(env_file))
    assert (settings.bridge_poll_interval, settings.bridge_lease_seconds) == (3, 4)
