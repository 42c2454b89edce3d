"""Every app setting the product reads, validated once at start-up."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, HttpUrl, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dci.clock import HOUR_MS, MINUTE_MS
from dci.storage.clients import StorageTarget

if TYPE_CHECKING:
    from dci.lake.target import LakeLocation

logger = logging.getLogger(__name__)

DEFAULT_CASE_SCHEDULE = "0 */5 * * * *"
DEFAULT_INSIGHTS_SCHEDULE = "30 */5 * * * *"  # 30 s after each case poll
DEFAULT_LAKE_SCHEDULE = "15 */5 * * * *"  # between the case poll and the rollups


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

    # The host's storage connection: identity-based (AzureWebJobsStorage__*), or a connection string.
    # The connection string comes last: its check sees the identity-based values.
    storage_account: str | None = Field(None, alias="AzureWebJobsStorage__accountName")
    storage_queue_uri: str | None = Field(None, alias="AzureWebJobsStorage__queueServiceUri")
    storage_table_uri: str | None = Field(None, alias="AzureWebJobsStorage__tableServiceUri")
    storage_blob_uri: str | None = Field(None, alias="AzureWebJobsStorage__blobServiceUri")
    storage_client_id: str | None = Field(None, alias="AzureWebJobsStorage__clientId")
    storage_connection: str | None = Field(None, alias="AzureWebJobsStorage", validate_default=True)
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field((), alias="ALLOWED_ORIGINS")
    portal_issuers: Annotated[tuple[str, ...], NoDecode] = Field(alias="PORTAL_ISSUERS", min_length=1)
    portal_public_key: str | None = Field(None, alias="PORTAL_PUBLIC_KEY")
    portal_client_id: str | None = Field(None, alias="PORTAL_CLIENT_ID")
    dataverse_url: HttpUrl | None = Field(None, alias="DATAVERSE_URL")
    dataverse_token: SecretStr | None = Field(None, alias="DATAVERSE_TOKEN")
    dataverse_client_id: str | None = Field(None, alias="DATAVERSE_CLIENT_ID")
    case_schedule: str = Field(DEFAULT_CASE_SCHEDULE, alias="CASE_SCHEDULE")
    case_settle_seconds: int = Field(60, alias="CASE_SETTLE_SECONDS", ge=0, le=86_400)
    timeline_lookback_hours: int = Field(72, alias="TIMELINE_LOOKBACK_HOURS", ge=1, le=24 * 30)
    stitch_window_hours: int = Field(24, alias="STITCH_WINDOW_HOURS", ge=0, le=24 * 30)
    session_gap_minutes: int = Field(30, alias="SESSION_GAP_MINUTES", ge=1, le=24 * 60)
    write_case_notes: bool | None = Field(None, alias="WRITE_CASE_NOTES")
    timeline_activities: Literal["journeys", "off"] = Field("journeys", alias="TIMELINE_ACTIVITIES")
    retention_days: int = Field(90, alias="RETENTION_DAYS", ge=1, le=3650)
    insights_follow_days: int = Field(7, alias="INSIGHTS_FOLLOW_DAYS", ge=1, le=90)
    reports_auth: Literal["function-key", "app-service"] = Field("function-key", alias="REPORTS_AUTH")
    # Set by App Service itself (not by us) when its authentication is on; see dci/access.py.
    website_auth_enabled: bool = Field(False, alias="WEBSITE_AUTH_ENABLED")
    report_base_url: HttpUrl | None = Field(None, alias="REPORT_BASE_URL")
    insights_schedule: str = Field(DEFAULT_INSIGHTS_SCHEDULE, alias="INSIGHTS_SCHEDULE")
    lake_url: str | None = Field(None, alias="LAKE_URL")
    lake_schedule: str = Field(DEFAULT_LAKE_SCHEDULE, alias="LAKE_SCHEDULE")
    lake_vacuum_hours: int = Field(168, alias="LAKE_VACUUM_HOURS", ge=0, le=24 * 30)

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

    @field_validator("timeline_activities", mode="before")
    @classmethod
    def _parse_activities(cls, value: object) -> object:
        return timeline_activities(value) if isinstance(value, str) else value

    @field_validator("lake_url")
    @classmethod
    def _check_lake_url(cls, url: str | None, info: ValidationInfo) -> str | None:
        from dci.lake.target import location

        if url is None:
            return None
        storage = _storage_target(info.data)
        return location(url.strip(), storage).root if storage else url.strip()  # no storage: that error says so

    @field_validator("case_schedule", "insights_schedule", "lake_schedule")
    @classmethod
    def _check_schedule(cls, schedule: str) -> str:
        if len(schedule.split()) != 6:
            raise ValueError(
                f"{schedule!r} is not a six-field NCRONTAB expression "
                "({second} {minute} {hour} {day} {month} {day-of-week}), e.g. '0 */5 * * * *'"
            )
        return schedule

    @field_validator("storage_connection")
    @classmethod
    def _check_storage(cls, connection: str | None, info: ValidationInfo) -> str | None:
        values = info.data
        uris = values.get("storage_queue_uri") and values.get("storage_table_uri")
        identity = values.get("storage_account") or uris
        if not (connection or identity):
            raise ValueError(
                "set a connection string (UseDevelopmentStorage=true for Azurite), or "
                "AzureWebJobsStorage__accountName (or __queueServiceUri and __tableServiceUri) for an "
                "identity-based connection")
        return connection

    @functools.cached_property  # read on every report request (web.answer → stores): worked out once
    def storage(self) -> StorageTarget:
        """Where the app's queues and tables are."""
        target = _storage_target({name: getattr(self, name) for name in type(self).model_fields})
        assert target is not None  # the validator refused settings without one
        return target

    @functools.cached_property
    def lake(self) -> LakeLocation | None:
        """Where the Delta tables go (LAKE_URL), None when the export is off."""
        from dci.lake.target import location

        return location(self.lake_url, self.storage) if self.lake_url else None

    # Durations in the unit the code uses (epoch milliseconds).
    @property
    def settle_ms(self) -> int:
        """CASE_SETTLE_SECONDS in ms."""
        return self.case_settle_seconds * 1000

    @property
    def lookback_ms(self) -> int:
        """TIMELINE_LOOKBACK_HOURS in ms."""
        return self.timeline_lookback_hours * HOUR_MS

    @property
    def stitch_window_ms(self) -> int:
        """STITCH_WINDOW_HOURS in ms."""
        return self.stitch_window_hours * HOUR_MS

    @property
    def session_gap_ms(self) -> int:
        """SESSION_GAP_MINUTES in ms."""
        return self.session_gap_minutes * MINUTE_MS

    @property
    def portal_cases(self) -> bool:
        """True when a signed-in `case_submitted` event is the case: no Dataverse to ask."""
        return not self.dataverse_configured

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

    @property
    def visits_enabled(self) -> bool:
        """Write each visit of a case's journey to its Dynamics timeline (dci/dataverse/wall.py): on by default
        whenever Dataverse is configured (TIMELINE_ACTIVITIES=journeys), off with `off`."""
        return self.dataverse_configured and self.timeline_activities == "journeys"


def _storage_target(values: Mapping[str, Any]) -> StorageTarget | None:
    """The storage target of the settings' `storage_*` values (by field name), by the host's rule."""
    fields = Settings.model_fields
    aliased = {fields[name].alias: value for name, value in values.items() if name.startswith("storage_") and value}
    return StorageTarget.from_setting("AzureWebJobsStorage", aliased)  # type: ignore[arg-type]


def timeline_activities(value: str) -> str:
    """TIMELINE_ACTIVITIES as the app reads it ("" is the default, `journeys`); ValueError when it is
    neither `journeys` nor `off` (the set-up command reads it too, and must agree)."""
    choice = value.strip().lower() or "journeys"
    if choice not in ("journeys", "off"):
        raise ValueError(f"TIMELINE_ACTIVITIES is {value!r}: use journeys or off")
    return choice


def load_settings() -> Settings:
    """Read the settings from the environment, or raise SettingsError naming each bad one."""
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as error:
        names, lines = [], []
        for problem in error.errors(include_url=False):
            name = str(problem["loc"][0]) if problem["loc"] else "settings"
            field = Settings.model_fields.get(name)  # a checked default is located by field name
            name = field.alias if field is not None and field.alias else name
            names.append(name)
            lines.append(f"{name}: {problem['msg'].removeprefix('Value error, ')}")
        raise SettingsError("Invalid app settings: " + "; ".join(lines), names) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use (raises SettingsError while they are bad)."""
    return load_settings()


def case_schedule() -> str:
    """The case poller's NCRONTAB schedule, read when function_app is indexed (the default if unset)."""
    return _schedule("CASE_SCHEDULE", DEFAULT_CASE_SCHEDULE)


def reports_auth() -> str:
    """REPORTS_AUTH, read when function_app is indexed: it sets the report routes' auth level."""
    import os

    return "app-service" if (os.environ.get("REPORTS_AUTH") or "").strip() == "app-service" else "function-key"


def insights_schedule() -> str:
    """When dirty insight days are recomputed, read when function_app is indexed."""
    return _schedule("INSIGHTS_SCHEDULE", DEFAULT_INSIGHTS_SCHEDULE)


def lake_schedule() -> str:
    """When the lake export runs, read when function_app is indexed."""
    return _schedule("LAKE_SCHEDULE", DEFAULT_LAKE_SCHEDULE)


def _schedule(name: str, default: str) -> str:
    """The setting as it is (the default when empty), never a silent substitute: a bad value makes
    the settings invalid (every function 503, health names it) and the host, or the runner, refuse
    the timer with it — one value, seen the same by both."""
    import os

    return (os.environ.get(name) or "").strip() or default


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
