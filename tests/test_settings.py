"""Settings: defaults, parsing, and start-up failures that name the bad setting."""

from __future__ import annotations

import pytest

from dci.settings import Settings, SettingsError, load_settings

REQUIRED = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "PORTAL_ISSUERS": "contoso.powerappsportals.com"}
ALL_NAMES = [field.alias for field in Settings.model_fields.values()]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    for name in ALL_NAMES:
        monkeypatch.delenv(name, raising=False)

    def set_env(**values: str) -> None:
        for name, value in {**REQUIRED, **values}.items():
            monkeypatch.setenv(name, value)

    return set_env


def test_settings_defaults(env) -> None:
    env()
    s = load_settings()
    assert (s.case_schedule, s.case_settle_seconds, s.timeline_lookback_hours) == ("0 */5 * * * *", 600, 72)
    assert (s.stitch_window_hours, s.session_gap_minutes, s.retention_days) == (24, 30, 90)
    assert s.allowed_origins == () and s.portal_issuers == ("contoso.powerappsportals.com",)
    assert s.notes_enabled is False


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"PORTAL_ISSUERS": ""}, "PORTAL_ISSUERS"),
        ({"AzureWebJobsStorage": ""}, "AzureWebJobsStorage"),
        ({"CASE_SETTLE_SECONDS": "-5"}, "CASE_SETTLE_SECONDS"),
        ({"CASE_SETTLE_SECONDS": "ten"}, "CASE_SETTLE_SECONDS"),
        ({"RETENTION_DAYS": "0"}, "RETENTION_DAYS"),
        ({"SESSION_GAP_MINUTES": "0"}, "SESSION_GAP_MINUTES"),
        ({"ALLOWED_ORIGINS": "contoso.powerappsportals.com"}, "ALLOWED_ORIGINS"),
        ({"ALLOWED_ORIGINS": "https://contoso.powerappsportals.com/path"}, "ALLOWED_ORIGINS"),
        ({"PORTAL_ISSUERS": "contoso.powerappsportals.com/en-us"}, "PORTAL_ISSUERS"),
        ({"DATAVERSE_URL": "not a url"}, "DATAVERSE_URL"),
        ({"CASE_SCHEDULE": "*/5 * * * *"}, "CASE_SCHEDULE"),
        ({"WRITE_CASE_NOTES": "perhaps"}, "WRITE_CASE_NOTES"),
    ],
)
def test_settings_bad_value_fails_naming_the_setting(env, values: dict[str, str], named: str) -> None:
    env(**values)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert f"{named}:" in str(caught.value)


def test_settings_lists_are_comma_separated_and_normalised(env) -> None:
    env(ALLOWED_ORIGINS=" https://Contoso.PowerAppsPortals.com/ , http://localhost:7071",
        PORTAL_ISSUERS="https://contoso.powerappsportals.com/,fabrikam.powerappsportals.com")
    s = load_settings()
    assert s.allowed_origins == ("https://contoso.powerappsportals.com", "http://localhost:7071")
    assert s.portal_issuers == ("contoso.powerappsportals.com", "fabrikam.powerappsportals.com")


@pytest.mark.parametrize(
    ("dataverse", "write", "expected"),
    [(None, None, False), ("https://org.crm.dynamics.com", None, True),
     ("https://org.crm.dynamics.com", "false", False), (None, "true", False)],
)
def test_settings_case_notes_default_on_only_with_dataverse(env, dataverse, write, expected) -> None:
    values = {}
    if dataverse:
        values["DATAVERSE_URL"] = dataverse
    if write:
        values["WRITE_CASE_NOTES"] = write
    env(**values)
    assert load_settings().notes_enabled is expected


def test_settings_secret_token_is_not_printed(env) -> None:
    env(DATAVERSE_TOKEN="eyJsecret")
    assert "eyJsecret" not in repr(load_settings())
