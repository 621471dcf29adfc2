"""Configuration: one settings object read from the environment.

Secrets are ``SecretStr`` so they never show up in a repr, a log line or an error.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from mission_server.defaults import DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT
from mission_server.secrets import SCRUBBER

__all__ = ["DEFAULT_HTTP_HOST", "DEFAULT_HTTP_PORT", "Settings", "load_settings"]

PACKAGED_WORLD = Path(__file__).with_name("data") / "world.yaml"
#: A new Telnyx account's limit of concurrent calls (more after verification).
TELNYX_DEFAULT_CONCURRENT_CALLS = 2


class Settings(BaseSettings):
    """Every knob of the service. Environment variable names are in the field aliases."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    db_url: str | None = Field(default=None, alias="MISSION_DB_URL")
    telnyx_api_key: SecretStr | None = Field(default=None, alias="TELNYX_API_KEY")
    telnyx_base_url: str = Field(default="https://api.telnyx.com/v2", alias="TELNYX_BASE_URL")
    #: The messaging profile SMS are sent with on Telnyx (set on the sending number).
    telnyx_messaging_profile_id: str | None = Field(
        default=None, alias="TELNYX_MESSAGING_PROFILE_ID"
    )
    http_token: SecretStr | None = Field(default=None, alias="MISSION_HTTP_TOKEN")
    llm_base_url: str | None = Field(default=None, alias="MISSION_LLM_BASE_URL")
    llm_api_key: SecretStr | None = Field(default=None, alias="MISSION_LLM_API_KEY")
    llm_model: str | None = Field(default=None, alias="MISSION_LLM_MODEL")
    #: Key of the HMAC-SHA256 signature on insight webhooks; without it none are sent.
    webhook_secret: SecretStr | None = Field(default=None, alias="MISSION_WEBHOOK_SECRET")
    #: Let insight webhooks go to loopback, private and link-local addresses (local testing).
    webhook_allow_private: bool = Field(default=False, alias="MISSION_WEBHOOK_ALLOW_PRIVATE")
    sim_world: Path | None = Field(default=None, alias="MISSION_SIM_WORLD")
    sim_speed: float = Field(default=60.0, gt=0, alias="MISSION_SIM_SPEED")
    worker_id: str | None = Field(default=None, alias="MISSION_WORKER_ID")
    lease_secs: float = Field(default=60.0, gt=0, alias="MISSION_LEASE_SECS")
    #: Calls in progress at once across every worker on the database (the account's channel
    #: limit). Unset: ``TELNYX_DEFAULT_CONCURRENT_CALLS`` on Telnyx, no limit in simulation.
    max_concurrent_calls: int | None = Field(
        default=None, ge=1, alias="MISSION_MAX_CONCURRENT_CALLS"
    )
    #: Calls started per second across every worker on the database. Unset: no pace.
    calls_per_second: float | None = Field(default=None, gt=0, alias="MISSION_CALLS_PER_SECOND")
    #: ``serve --http`` closes a connection with no request in progress for this long.
    http_idle_secs: float = Field(default=15.0, gt=0, alias="MISSION_HTTP_IDLE_SECS")
    #: What reads finished conversations: simulated (the rehearsal's ground truth), offline
    #: (the transcript text reader) or llm. Default: see ``app.make_extractor``.
    extractor: str | None = Field(default=None, alias="MISSION_EXTRACTOR")
    #: Mirror missions, runs, plans and events to the Telnyx Missions API (the Portal) whenever
    #: Telnyx places the calls; ``MISSION_TELNYX_SYNC=off`` opts out.
    telnyx_sync: bool = Field(default=True, alias="MISSION_TELNYX_SYNC")
    #: The base64 Ed25519 public key Telnyx signs its webhooks with (``/telnyx/webhooks``).
    telnyx_public_key: str | None = Field(default=None, alias="TELNYX_PUBLIC_KEY")

    def model_post_init(self, context: object, /) -> None:
        # Every configured secret is known to the one scrubber (mission_server.secrets).
        SCRUBBER.add(*(s.get_secret_value() for s in self.secret_values()))

    def secret_values(self) -> list[SecretStr]:
        """The secrets that are set."""
        found = (self.telnyx_api_key, self.http_token, self.llm_api_key, self.webhook_secret)
        return [s for s in found if s is not None]

    @cached_property
    def world_path(self) -> Path:
        return self.sim_world or PACKAGED_WORLD

    def concurrent_calls_limit(self, provider: str) -> int | None:
        """How many calls may be in progress at once with ``provider`` (its ``name``): the
        setting, else 2 on Telnyx; None is no limit."""
        if self.max_concurrent_calls is not None:
            return self.max_concurrent_calls
        return TELNYX_DEFAULT_CONCURRENT_CALLS if provider == "telnyx" else None

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)


def load_settings(**overrides: object) -> Settings:
    """Read the environment, then apply explicit overrides (CLI flags)."""
    settings = Settings()
    if overrides:
        settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
        settings.model_post_init(None)
    return settings
