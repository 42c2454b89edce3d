"""Every app setting the product reads, validated once at start-up."""

from __future__ import annotations

import functools
import logging
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, HttpUrl, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

logger = logging.getLogger(__name__)

DEFAULT_CASE_SCHEDULE = "0 */5 * * * *"


class SettingsError(RuntimeError):
    """The app settings are missing or wrong; the message names each bad setting."""

    def __init__(self, message: str, names: list[str]) -> None:
        super().__init__(message)
        self.names = names


def _split(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """App settings (Azure app settings, or `Values` of local.settings.json; environment wins)."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", env_ignore_empty=True, populate_by_name=True, frozen=True
    )

    storage: str = Field(alias="AzureWebJobsStorage", min_length=1)
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field((), alias="ALLOWED_ORIGINS")
    portal_issuers: Annotated[tuple[str, ...], NoDecode] = Field(alias="PORTAL_ISSUERS", min_length=1)
    portal_public_key: str | None = Field(None, alias="PORTAL_PUBLIC_KEY")
    portal_client_id: str | None = Field(None, alias="PORTAL_CLIENT_ID")
    dataverse_url: HttpUrl | None = Field(None, alias="DATAVERSE_URL")
    dataverse_token: SecretStr | None = Field(None, alias="DATAVERSE_TOKEN")
    dataverse_client_id: str | None = Field(None, alias="DATAVERSE_CLIENT_ID")
    case_schedule: str = Field(DEFAULT_CASE_SCHEDULE, alias="CASE_SCHEDULE")
    case_settle_seconds: int = Field(600, alias="CASE_SETTLE_SECONDS", ge=0, le=86_400)
    timeline_lookback_hours: int = Field(72, alias="TIMELINE_LOOKBACK_HOURS", ge=1, le=24 * 30)
    stitch_window_hours: int = Field(24, alias="STITCH_WINDOW_HOURS", ge=0, le=24 * 30)
    session_gap_minutes: int = Field(30, alias="SESSION_GAP_MINUTES", ge=1, le=24 * 60)
    write_case_notes: bool | None = Field(None, alias="WRITE_CASE_NOTES")
    retention_days: int = Field(90, alias="RETENTION_DAYS", ge=1, le=3650)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        return _split(value)

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        checked = []
        for origin in origins:
            parts = urlsplit(origin.rstrip("/").lower())
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
                raise ValueError(f"{origin!r} is not an origin like https://contoso.powerappsportals.com")
            checked.append(f"{parts.scheme}://{parts.netloc}")
        return tuple(checked)

    @field_validator("portal_issuers", mode="before")
    @classmethod
    def _parse_issuers(cls, value: object) -> object:
        return _split(value)

    @field_validator("portal_issuers")
    @classmethod
    def _check_issuers(cls, issuers: tuple[str, ...]) -> tuple[str, ...]:
        checked = []
        for issuer in issuers:
            host = issuer.lower().removeprefix("https://").removeprefix("http://").rstrip("/")
            if not host or "/" in host or " " in host:
                raise ValueError(f"{issuer!r} is not a portal host name like contoso.powerappsportals.com")
            checked.append(host)
        return tuple(checked)

    @field_validator("case_schedule")
    @classmethod
    def _check_schedule(cls, schedule: str) -> str:
        if len(schedule.split()) != 6:
            raise ValueError(
                f"{schedule!r} is not a six-field NCRONTAB expression "
                "({second} {minute} {hour} {day} {month} {day-of-week}), e.g. '0 */5 * * * *'"
            )
        return schedule

    @property
    def dataverse_configured(self) -> bool:
        """True when cases come from Dataverse rather than from portal events."""
        return self.dataverse_url is not None

    @property
    def notes_enabled(self) -> bool:
        """Write timeline notes back to cases: on by default whenever Dataverse is configured."""
        if self.write_case_notes is None:
            return self.dataverse_configured
        return self.write_case_notes and self.dataverse_configured


def load_settings() -> Settings:
    """Read the settings from the environment, or raise SettingsError naming each bad one."""
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as error:
        names, lines = [], []
        for problem in error.errors(include_url=False):
            name = str(problem["loc"][0]) if problem["loc"] else "settings"
            names.append(name)
            lines.append(f"{name}: {problem['msg'].removeprefix('Value error, ')}")
        raise SettingsError("Invalid app settings: " + "; ".join(lines), names) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use (raises SettingsError while they are bad)."""
    return load_settings()


def case_schedule() -> str:
    """The case poller's NCRONTAB schedule, read when function_app is indexed (the default if unset)."""
    import os

    value = (os.environ.get("CASE_SCHEDULE") or "").strip()
    return value if len(value.split()) == 6 else DEFAULT_CASE_SCHEDULE


def settings_or_none() -> Settings | None:
    """The settings, or None after logging what is wrong with them, naming each bad setting.

    Function adapters use this: a misconfigured app still indexes every function (so the portal
    and the logs show them), and each answers 503 until the settings are fixed.
    """
    try:
        return get_settings()
    except SettingsError as error:
        logger.critical("%s", error, extra={"bad_settings": error.names})
        return None
