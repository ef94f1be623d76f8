"""Settings, read once: environment (ARCTERN_*) > config file (arctern.toml in the home) > defaults.

This is the only module that reads ``os.environ``; everything else receives a ``Settings``.
"""

from __future__ import annotations

import secrets
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".arctern"


class Settings(BaseSettings):
    """Everything configurable about one Arctern process."""

    model_config = SettingsConfigDict(env_prefix="ARCTERN_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="State directory")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite in the home"
    )
    host: str = "127.0.0.1"
    port: int = 8765
    public_url: str | None = Field(
        default=None, description="URL clients use to reach this server (default http://HOST:PORT)"
    )
    tls_certificate: Path | None = Field(
        default=None,
        description="PEM certificate (chain) to serve HTTPS with; the GCS Manager API that "
        "globus-cli's 'globus collection'/'globus gcs' commands use answers only over HTTPS",
    )
    tls_private_key: Path | None = Field(default=None, description="PEM key of tls_certificate")

    # Embedded worker pool inside `arctern serve`.
    embedded_worker: bool = True
    worker_concurrency: int = 4
    worker_name: str | None = None
    lease_seconds: float = 30.0
    progress_flush_seconds: float = 1.0
    worker_idle_seconds: float = Field(
        default=15.0,
        gt=0,
        description=(
            "Longest pause between an idle worker's looks for work nobody announced (crash "
            "retries, expired leases, deadlines, agents gone). Submissions, cancels and new "
            "batches wake it at once: in its own process, and on PostgreSQL in every process "
            "(a stand-alone worker on SQLite hears no other process and looks every 2 s)"
        ),
    )
    worker_batch_files: int = Field(
        default=1000,
        ge=1,
        # worker.batch_files.MAX_BATCH_FILES: a file's row id numbers it within its batch.
        le=1 << 20,
        description="Files per batch: the unit one worker leases and copies",
    )
    worker_copy_processes: int = Field(
        default=2,
        description=(
            "Helper processes per worker that copy small files between local collections in "
            "groups (0 = threads of the worker process itself)"
        ),
    )
    # Fair share across the deployment (0 = unlimited): batches running at once per task
    # owner, and per collection (as source or destination).
    max_active_batches_per_user: int = 0
    max_active_batches_per_collection: int = 0
    max_task_deadline_days: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Latest task deadline a submission may ask for, in days from now (later ones are "
            "refused with 400): a task keeps its leases and access re-checks until then"
        ),
    )

    # Arctern Connect: file operations relayed to agents over their outbound long poll.
    connect_self_service: bool = Field(
        default=True,
        description="Let any user register their own Connect endpoint through `arctern "
        "connect setup`'s login link (else only administrators create endpoints)",
    )
    https_max_upload_bytes: int = Field(
        default=100 << 30,
        gt=0,
        description="Largest file one HTTPS upload (PUT, or Upload in the file manager) may be",
    )
    connect_data_streams: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Parallel TCP connections of a transfer between two Connect agents",
    )
    data_listen: str | None = Field(
        default=None,
        description=(
            "host:port on which this deployment's workers accept data connections, so that "
            "Connect agents run with --no-listen can exchange data with central POSIX "
            "storage (unset: they cannot; port 0 picks a free port)"
        ),
    )
    data_address: str | None = Field(
        default=None,
        description="host:port agents connect to, when not the one bound (NAT, a proxy)",
    )
    connect_poll_hold_seconds: float = Field(
        default=20.0, gt=0, description="How long the agent API holds an agent's long poll"
    )
    connect_pickup_seconds: float = Field(
        default=5.0,
        gt=0,
        description=(
            "How long a relayed file operation waits for its agent to take it before the "
            "endpoint is reported as not connected"
        ),
    )
    connect_answer_seconds: float = Field(
        default=30.0, gt=0, description="How long an agent may take to answer a relayed operation"
    )

    # Auth.
    secret_key: str | None = Field(default=None, description="Signs sessions; kept in the home")
    access_token_lifetime: int = 48 * 3600
    token_cache_seconds: float = Field(
        default=5.0,
        description=(
            "How long an API process trusts an access token it verified without asking the "
            "database again (0 = always ask). Revocations made through this process apply at "
            "once; those made through another API host or the admin CLI within this time."
        ),
    )
    refresh_token_lifetime: int = 180 * 24 * 3600
    authorization_code_lifetime: int = 600
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536
    login_attempts_per_minute: int = Field(
        default=10, description="Failed password logins per minute for one user from one address"
    )
    login_attempts_per_address_per_minute: int = Field(
        default=30, description="Failed password logins per minute from one address, any user"
    )
    login_attempts_global_per_minute: int = Field(
        default=300,
        description="Failed password logins per minute across the deployment (all hosts)",
    )
    password_hash_concurrency: int = Field(
        default=2,
        description=(
            "Password checks (argon2, argon2_memory_cost KiB each) running at once in one "
            "process; more wait, which bounds the memory a login flood can take"
        ),
    )
    web_session_idle_seconds: int = Field(
        default=2 * 3600, description="A browser login ends after this long without a request"
    )
    web_session_lifetime_seconds: int = Field(
        default=12 * 3600, description="A browser login ends this long after the password"
    )
    metrics_token: str | None = Field(
        default=None,
        description=(
            "Bearer token that /metrics requires; without one /metrics is off (404), since "
            "it tells anyone the request volume and the software's versions"
        ),
    )
    http_head_timeout: float = Field(
        default=10.0,
        description=(
            "Seconds a connection may take to send a complete request head (also the idle "
            "limit between keep-alive requests) before it is closed"
        ),
    )
    http_max_connections: int = Field(
        default=1000,
        description="Open connections per process; one more is answered 503 and closed",
    )
    template_clients_per_address_per_hour: int = Field(
        default=20,
        description=(
            "Clients an address may create anonymously from the globus-cli template per hour, "
            "counted per API process (0 = unlimited)"
        ),
    )
    identity_provisions_per_hour: int = Field(
        default=100,
        description=(
            "Unused identities one user may create per hour through identities?provision=true, "
            "counted per API process (0 = unlimited)"
        ),
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Host names a request's Host header may carry when no public_url is set; others "
            "get URLs built from HOST:PORT (default: the bind host and loopback names)"
        ),
    )
    # Timers (``arctern.timers``).
    timer_min_interval_seconds: int = Field(
        default=300,
        description="Shortest interval a recurring timer may have (Globus allows 5 minutes)",
    )
    scheduler_interval: float = Field(
        default=2.0,
        description="Shortest time between a worker's looks for due timers and mail to send "
        "(it otherwise sleeps until the next is due, or something new is scheduled)",
    )

    # Mail (``arctern.notify``): task notifications and sharing invitations. No SMTP host:
    # nothing is queued or sent.
    smtp_host: str | None = Field(default=None, description="SMTP server for outgoing mail")
    smtp_port: int = Field(default=587, description="SMTP port (587 STARTTLS, 465 TLS, 25)")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls, tls (implicit, port 465) or none"
    )
    smtp_username: str | None = Field(default=None, description="SMTP login, if it needs one")
    smtp_password: str | None = Field(default=None, description="SMTP password")
    mail_retry_seconds: float = Field(
        default=30.0,
        description="First wait before a message the SMTP server did not take is tried again "
        "(doubling each time, at most an hour)",
    )
    webhook_allow_http: bool = Field(
        default=False,
        description="Let users point webhooks at http:// URLs (tests, closed networks)",
    )
    mail_from: str = Field(
        default="Arctern <arctern@localhost>", description="From: of every message sent"
    )
    clock_offset_file: Path | None = Field(
        default=None, description="Test-only: a file holding seconds added to the clock"
    )

    # Demo data for the tutorial.
    demo: bool = False
    demo_password: str | None = None

    # Test-only fault injection (never enable in production).
    fault_injection: str | None = None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.home / 'arctern.db'}"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_certificate else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def trusted_hosts(self) -> frozenset[str]:
        """Host names (no port, lower case) that may name this server in URLs it hands out."""
        if self.allowed_hosts:
            return frozenset(h.strip().lower() for h in self.allowed_hosts if h.strip())
        return frozenset({self.host.lower(), "localhost", "127.0.0.1", "::1", "[::1]"})

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/auth/"

    @property
    def transfer_url(self) -> str:
        return f"{self.base_url}/transfer/"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFileSource(settings_cls))


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads ``$ARCTERN_CONFIG`` or ``<home>/arctern.toml`` when present."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        import os

        path_text = os.environ.get("ARCTERN_CONFIG")
        if path_text:
            path = Path(path_text)
        else:
            home = os.environ.get("ARCTERN_HOME")
            path = (Path(home) if home else _default_home()) / "arctern.toml"
        if not path.is_file():
            return {}
        with path.open("rb") as f:
            data = tomllib.load(f)
        return dict(data.get("arctern", data))


def load_settings(**overrides: Any) -> Settings:
    """Build settings from env + file, with explicit overrides (e.g. CLI flags) winning."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)


def ensure_home(settings: Settings) -> Settings:
    """Create the home directory and a persistent secret key; return settings with the key set.

    The home is private (0700, also when it existed before): it holds the database with
    password hashes and every file name, the secret key and the demo collections.
    """
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.home.chmod(0o700)
    if settings.secret_key:
        return settings
    key_file = settings.home / "secret.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return settings.model_copy(update={"secret_key": key_file.read_text().strip()})
