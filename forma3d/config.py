"""Settings from environment variables, validated once at start-up.

A bad value stops start-up with a message naming the variable, never a stack trace.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    ray_address: str | None = Field(default=None, alias="RAY_ADDRESS")
    data_dir: Path = Field(default=Path(".forma3d"), alias="FORMA3D_DATA_DIR")
    http_host: str = Field(default="127.0.0.1", alias="FORMA3D_HTTP_HOST")
    http_port: int = Field(default=8000, ge=1, le=65535, alias="FORMA3D_HTTP_PORT")
    entity_hosts: int = Field(default=0, ge=0, le=1024, alias="FORMA3D_ENTITY_HOSTS")
    entity_idle_seconds: float = Field(default=600.0, gt=0, alias="FORMA3D_ENTITY_IDLE_SECONDS")
    ask_timeout_seconds: float = Field(default=30.0, gt=0, alias="FORMA3D_ASK_TIMEOUT_SECONDS")
    outbox_batch_size: int = Field(default=200, ge=1, le=10_000, alias="FORMA3D_OUTBOX_BATCH")
    reconcile_seconds: float = Field(default=30.0, gt=0, alias="FORMA3D_RECONCILE_SECONDS")
    backfill_seconds: float = Field(default=300.0, gt=0, alias="FORMA3D_BACKFILL_SECONDS")
    webhook_commit_ms: float = Field(default=2.0, ge=0, le=100, alias="FORMA3D_WEBHOOK_COMMIT_MS")
    serve_replicas: int = Field(default=1, ge=1, le=64, alias="FORMA3D_SERVE_REPLICAS")
    # Serve's access log line per request (off: one log call less per webhook; see
    # BENCHMARKS.md, "Webhook ingest").
    serve_access_log: bool = Field(default=True, alias="FORMA3D_SERVE_ACCESS_LOG")
    secret_key: str | None = Field(default=None, alias="FORMA3D_SECRET_KEY")
    # The platform administrator's key (creates tenants and their first owner; acts in any
    # tenant named by X-Forma3d-Tenant, every such write recorded). Unset: no platform access.
    platform_key: str | None = Field(default=None, alias="FORMA3D_PLATFORM_KEY")
    sandbox: bool = Field(default=True, alias="FORMA3D_SANDBOX")
    # Outgoing webhooks: the disable rule, the retry backoff, the timeout of one attempt, and
    # loopback targets (development only; a tenant may also allow its private addresses).
    webhook_max_failures: int = Field(default=10, ge=1, alias="FORMA3D_WEBHOOK_MAX_FAILURES")
    webhook_max_failing_hours: float = Field(default=24.0, gt=0,
                                             alias="FORMA3D_WEBHOOK_MAX_FAILING_HOURS")
    webhook_retry_base_seconds: float = Field(default=1.0, gt=0,
                                              alias="FORMA3D_WEBHOOK_RETRY_BASE_SECONDS")
    webhook_retry_cap_seconds: float = Field(default=3600.0, gt=0,
                                             alias="FORMA3D_WEBHOOK_RETRY_CAP_SECONDS")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0,
                                           alias="FORMA3D_WEBHOOK_TIMEOUT_SECONDS")
    webhook_allow_loopback: bool = Field(default=False, alias="FORMA3D_WEBHOOK_ALLOW_LOOPBACK")
    # Where Shopify, SimplyPrint and Sendcloud reach this deployment: connecting an integration
    # registers <public_url>/webhooks/<tenant>/<service> there. Unset: nothing is registered.
    public_url: str | None = Field(default=None, alias="FORMA3D_PUBLIC_URL")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", alias="FORMA3D_LOG_LEVEL"
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// or postgres://")
        return value or None

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// for a local service)")
        return value.rstrip("/") if value else None

    @field_validator("ray_address", mode="before")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    def resolved_entity_hosts(self, cluster_cpus: float) -> int:
        """Default: one entity host per cluster CPU, at least one."""
        return self.entity_hosts or max(1, int(cluster_cpus))


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        name = str(item["loc"][0]) if item["loc"] else "?"
        field = Settings.model_fields.get(name)
        variable = field.alias if field and field.alias else name.upper()
        lines.append(f"{variable}: {item['msg']} (got {item.get('input')!r})")
    return "invalid configuration: " + "; ".join(lines)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read and validate the environment; raise ConfigError naming each bad variable."""
    source = dict(os.environ if environ is None else environ)
    known = {f.alias for f in Settings.model_fields.values() if f.alias}
    values = {k: v for k, v in source.items() if k in known}
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()
