"""Configuration: the contract's environment variables, read once and validated.

``load_settings`` is the only entry point. It reads, in increasing priority: defaults, a ``.env`` file in
the working directory (development convenience), the process environment, and an override mapping keyed
by variable name (what tests and ``create_app(config)`` pass). Any bad value raises ``ConfigError`` whose
text is one line naming the variable; callers print it and exit instead of showing a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.vocabulary import ApiGeneration, Language

Duration = Annotated[float, Field(ge=0.1, allow_inf_nan=False)]

#: Production secrets shorter than these are refused (a guessable key forges sessions; a short
#: token falls to guessing even at the throttled rate).
MIN_SECRET_KEY = 32
MIN_API_TOKEN = 24

DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)


#: A workspace name as the upstream URL takes it (the API's rule), or "*" for every other workspace.
_CREDENTIAL_WORKSPACE = re.compile(r"(?:\*|(?!\.{1,2}\Z)[A-Za-z0-9._-]{1,128})\Z")
#: An access or secret key: printable ASCII without spaces (it goes into a header and an HMAC).
_KEY_TEXT = re.compile(r"[\x21-\x7e]{1,256}\Z")


class NcpKeyPair(BaseModel):
    """One NCP account's API Gateway key pair (an entry of ``NCP_CREDENTIALS``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    access_key: str
    secret_key: SecretStr


class ConfigError(Exception):
    """A configuration value is missing or malformed. ``str()`` is one line naming the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"configuration error: {variable}: {problem}")
        self.variable = variable


class Settings(BaseSettings):
    """Every setting of the contract's table; field names are the variable names in lower case."""

    model_config = SettingsConfigDict(
        env_file=".env",
        case_sensitive=False,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,  # values may be secrets: never echo them
    )

    database_url: str | None = None
    secret_key: SecretStr | None = None
    mi_api_url: str = "https://mi.apigw.ntruss.com"
    ncp_access_key: str | None = None
    ncp_secret_key: SecretStr | None = None
    #: More NCP accounts: workspace name (or "*") -> key pair; the pair above serves the rest.
    ncp_credentials: Annotated[dict[str, NcpKeyPair], NoDecode] = Field(default_factory=dict)
    mi_default_api: ApiGeneration = ApiGeneration.VIDEO_ASSETS
    slack_bot_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    bridge_api_tokens: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    bridge_default_targets: Annotated[tuple[dict[str, Any], ...], NoDecode] = ()
    bridge_allow_private_urls: bool = False
    bridge_poll_interval: Duration = 10.0
    bridge_poll_max_interval: Duration = 120.0
    bridge_watch_timeout: Duration = 259200.0
    bridge_retry_schedule: Annotated[tuple[Duration, ...], NoDecode] = DEFAULT_RETRY_SCHEDULE
    bridge_embedded_worker: bool = False
    bridge_lease_seconds: Duration = 60.0
    bridge_public_url: str | None = None
    #: The language of default messages for targets that name none.
    bridge_language: Language = Language.EN
    bridge_env: Literal["production", "development"] = "production"
    bridge_instance_path: Path = Path("instance")
    mi_max_rps: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 100.0
    bridge_poll_concurrency: Annotated[int, Field(ge=1, le=256)] = 16
    #: Where a worker's status requests run: its own process, or a child process of their own
    #: (``app.worker.poll_transport``).
    bridge_poll_transport: Literal["thread", "process"] = "thread"
    #: Days an ended watch is kept; 0 keeps every watch.
    bridge_retention_days: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 30.0
    bridge_housekeeping_interval: Duration = 600.0
    #: ``analysis.stalled`` after this many seconds of an unchanged status, for watches that
    #: subscribe to it and give no ``stalled_after_seconds``; unset: never.
    bridge_stalled_after: (
        Annotated[float, Field(ge=1, le=30 * 86400, allow_inf_nan=False)] | None
    ) = None
    #: Where ``bridge.alert`` events go (targets like BRIDGE_DEFAULT_TARGETS'); none: no alerts sent.
    bridge_alert_targets: Annotated[tuple[dict[str, Any], ...], NoDecode] = ()
    #: A reminder of a condition that lasts, every this many seconds.
    bridge_alert_repeat: Duration = 21600.0
    #: An endpoint whose every attempt failed for this long is disabled (Svix's 5 days).
    bridge_endpoint_disable_after: Duration = 432000.0
    #: How long a rotated-out endpoint secret still signs (a second signature), by default.
    bridge_secret_overlap: Annotated[float, Field(ge=0, le=30 * 86400, allow_inf_nan=False)] = (
        86400.0
    )
    #: How often conditions are looked at (the contract: firing within 30 s of the start).
    bridge_alert_interval: Duration = 10.0
    #: The contract's thresholds; settable so tests take seconds.
    bridge_alert_unreachable_after: Duration = 300.0
    bridge_alert_rate_limited_after: Duration = 300.0
    bridge_alert_workers_after: Duration = 60.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    port: Annotated[int, Field(ge=1, le=65535)] = 5000

    @field_validator("bridge_api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(token.strip() for token in value.split(",") if token.strip())
        return value

    @field_validator("bridge_retry_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",")]
            if not all(parts):
                raise ValueError("expected comma-separated seconds, e.g. 5,300,1800")
            return tuple(parts)
        return value

    @field_validator("bridge_default_targets", "bridge_alert_targets", mode="before")
    @classmethod
    def _parse_targets(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return ()
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg})") from None
            except ValueError as exc:  # e.g. an integer of more digits than int() converts
                raise ValueError(f"not valid JSON ({exc})") from None
        if not isinstance(value, list | tuple):
            raise ValueError("expected a JSON list of target objects")
        return tuple(value)

    @field_validator("ncp_credentials", mode="before")
    @classmethod
    def _parse_credentials(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                value = json.loads(value)
            except ValueError:  # JSONDecodeError included; its text may quote a secret: not shown
                raise ValueError("not valid JSON") from None
        if not isinstance(value, dict):
            raise ValueError(
                'expected a JSON object {"<workspace or *>": {"access_key": ..., "secret_key": ...}}'
            )
        return {str(name): _key_pair(name, entry) for name, entry in value.items()}

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("mi_api_url", "slack_api_url", "bridge_public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        if self.bridge_poll_max_interval < self.bridge_poll_interval:
            raise ValueError("BRIDGE_POLL_MAX_INTERVAL: must not be below BRIDGE_POLL_INTERVAL")
        if not self.bridge_retry_schedule:
            raise ValueError("BRIDGE_RETRY_SCHEDULE: needs at least one delay")
        self._check_one_secret_per_access_key()
        if self.bridge_env == "production":
            if self.secret_key is None or not self.secret_key.get_secret_value():
                raise ValueError("SECRET_KEY: required when BRIDGE_ENV=production")
            if len(self.secret_key.get_secret_value()) < MIN_SECRET_KEY:
                raise ValueError(
                    f"SECRET_KEY: at least {MIN_SECRET_KEY} characters when BRIDGE_ENV=production"
                    " (e.g. python3 -c 'import secrets; print(secrets.token_hex(32))')"
                )
            if not self.bridge_api_tokens:
                raise ValueError("BRIDGE_API_TOKENS: required when BRIDGE_ENV=production")
            if any(len(t.get_secret_value()) < MIN_API_TOKEN for t in self.bridge_api_tokens):
                raise ValueError(
                    f"BRIDGE_API_TOKENS: each token needs at least {MIN_API_TOKEN} characters when"
                    " BRIDGE_ENV=production (e.g. python3 -c 'import secrets;"
                    " print(secrets.token_urlsafe(24))')"
                )
        return self

    def _check_one_secret_per_access_key(self) -> None:
        """An access key names one account: two different secret keys for it are a mistake."""
        seen: dict[str, tuple[str, str]] = {}
        pairs = [(f'"{name}"', pair.access_key, pair.secret_key.get_secret_value())
                 for name, pair in self.ncp_credentials.items()]  # fmt: skip
        if self.ncp_access_key and self.ncp_secret_key is not None:
            pairs.append(
                ("NCP_ACCESS_KEY", self.ncp_access_key, self.ncp_secret_key.get_secret_value())
            )
        for where, access_key, secret_key in pairs:
            first = seen.setdefault(access_key, (where, secret_key))
            if first[1] != secret_key:
                raise ValueError(
                    f"NCP_CREDENTIALS: {where} uses the access key of {first[0]} with another"
                    " secret key (one access key, one secret key)"
                )

    @property
    def development(self) -> bool:
        return self.bridge_env == "development"

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL for SQLAlchemy, with Heroku's ``postgres://`` form normalised."""
        if not self.database_url:
            path = self.bridge_instance_path.resolve() / "mi-bridge.db"
            return f"sqlite:///{path}"
        url = self.database_url
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    def api_tokens(self) -> tuple[str, ...]:
        """The accepted bearer tokens, in clear (for constant-time comparison only)."""
        return tuple(token.get_secret_value() for token in self.bridge_api_tokens)


def _key_pair(name: Any, entry: Any) -> dict[str, str]:
    """One validated ``NCP_CREDENTIALS`` entry; errors name the workspace, never a key's value."""
    if not isinstance(name, str) or not _CREDENTIAL_WORKSPACE.match(name):
        raise ValueError(
            f"{str(name)[:40]!r} is not a workspace name (1 to 128 letters, digits, '.', '_' or"
            " '-') nor \"*\""
        )
    if not isinstance(entry, dict) or set(entry) != {"access_key", "secret_key"}:
        raise ValueError(f'"{name}": expected {{"access_key": "...", "secret_key": "..."}} only')
    for field in ("access_key", "secret_key"):
        if not isinstance(entry[field], str) or not _KEY_TEXT.match(entry[field]):
            raise ValueError(
                f'"{name}": {field} must be a non-empty string of printable characters, no spaces'
            )
    return {"access_key": entry["access_key"], "secret_key": entry["secret_key"]}


def load_settings(
    overrides: Mapping[str, Any] | None = None, *, env_file: str | None = ".env"
) -> Settings:
    """Read and validate the configuration; raise ``ConfigError`` naming the first bad variable."""
    values = {key.lower(): value for key, value in (overrides or {}).items()}
    try:
        return Settings(_env_file=env_file, **values)
    except ValidationError as exc:
        raise _config_error(exc) from None


def _config_error(exc: ValidationError) -> ConfigError:
    error = exc.errors(include_url=False, include_input=False)[0]
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error["loc"]:
        return ConfigError(str(error["loc"][0]).upper(), message)
    variable, _, problem = message.partition(": ")
    return ConfigError(variable, problem or message)
