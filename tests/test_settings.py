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
    assert (s.case_schedule, s.case_settle_seconds, s.timeline_lookback_hours) == ("0 */5 * * * *", 60, 72)
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
        ({"TIMELINE_ACTIVITIES": "notes"}, "TIMELINE_ACTIVITIES"),
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


@pytest.mark.parametrize(
    ("dataverse", "activities", "expected"),
    [(None, None, False), ("https://org.crm.dynamics.com", None, True), ("https://org.crm.dynamics.com", "", True),
     ("https://org.crm.dynamics.com", " Off ", False), ("https://org.crm.dynamics.com", "JOURNEYS", True),
     (None, "journeys", False)],
)
def test_settings_timeline_activities_default_on_only_with_dataverse(env, dataverse, activities, expected) -> None:
    values = {}
    if dataverse:
        values["DATAVERSE_URL"] = dataverse
    if activities is not None:
        values["TIMELINE_ACTIVITIES"] = activities
    env(**values)
    assert load_settings().visits_enabled is expected


def test_settings_secret_token_is_not_printed(env) -> None:
    env(DATAVERSE_TOKEN="eyJsecret")
    assert "eyJsecret" not in repr(load_settings())


# --- a misconfigured app still indexes, says what is wrong, and answers 503 ----------------------

@pytest.fixture
def misconfigured(monkeypatch: pytest.MonkeyPatch):
    from dci.settings import get_settings

    monkeypatch.delenv("PORTAL_ISSUERS")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_app_indexes_every_function_without_any_settings() -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {k: v for k, v in __import__("os").environ.items() if k not in ALL_NAMES}
    code = "import function_app; print(len(function_app.app.get_functions()))"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) >= 3
    assert "PORTAL_ISSUERS" in run.stderr and "AzureWebJobsStorage" in run.stderr  # logged at start-up


def test_misconfigured_collect_answers_503_and_health_names_the_setting(misconfigured, caplog) -> None:
    import json

    import azure.functions as func

    import function_app
    from dci.runner.invoke import Out

    request = func.HttpRequest("POST", "http://localhost/api/collect", body=b"{}",
                               headers={"content-type": "application/json"})
    out: Out[str] = Out()
    response = function_app.collect(request, out)
    assert response.status_code == 503 and out.get() is None
    assert "PORTAL_ISSUERS" not in response.get_body().decode()  # the public endpoint says nothing specific
    assert "PORTAL_ISSUERS" in caplog.text  # the log does

    health = function_app.health(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    assert health.status_code == 503 and "PORTAL_ISSUERS" not in health.get_body().decode()  # anonymous: no names
    details = function_app.health_details(func.HttpRequest("GET", "http://localhost/api/health/details", body=b""))
    assert details.status_code == 503
    assert json.loads(details.get_body())["checks"] == {"settings": "invalid: PORTAL_ISSUERS"}


def test_settings_identity_based_storage_connection(env, monkeypatch: pytest.MonkeyPatch) -> None:
    from dci.storage.clients import StorageTarget

    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    env(AzureWebJobsStorage="")
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "stcontoso")
    monkeypatch.setenv("AzureWebJobsStorage__clientId", "11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("AzureWebJobsStorage__credential", "managedidentity")
    assert load_settings().storage == StorageTarget(
        queue_uri="https://stcontoso.queue.core.windows.net", table_uri="https://stcontoso.table.core.windows.net",
        blob_uri="https://stcontoso.blob.core.windows.net", client_id="11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("AzureWebJobsStorage__queueServiceUri", "https://q.example/")
    monkeypatch.setenv("AzureWebJobsStorage__tableServiceUri", "https://t.example/")
    target = load_settings().storage
    assert (target.queue_uri, target.table_uri) == ("https://q.example/", "https://t.example/")


def test_settings_without_any_storage_connection_names_the_setting(env, monkeypatch: pytest.MonkeyPatch) -> None:
    env(AzureWebJobsStorage="")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.names == ["AzureWebJobsStorage"]
    assert "AzureWebJobsStorage__accountName" in str(caught.value)


def test_identity_based_clients_use_the_service_uris_and_a_managed_identity() -> None:
    from azure.identity import ManagedIdentityCredential

    from dci.storage.clients import StorageTarget, queue_client, queue_service, table_service

    target = StorageTarget(queue_uri="https://stcontoso.queue.core.windows.net",
                           table_uri="https://stcontoso.table.core.windows.net", client_id="abc")
    queues, tables = queue_service(target), table_service(target)
    assert queues.url.startswith("https://stcontoso.queue.core.windows.net")
    assert tables.url.startswith("https://stcontoso.table.core.windows.net")
    assert isinstance(queues.credential, ManagedIdentityCredential)
    assert queue_client(target, "cases").queue_name == "cases"


@pytest.mark.parametrize("name", ["CASE_SCHEDULE", "INSIGHTS_SCHEDULE"])
def test_settings_a_bad_schedule_is_refused_by_the_settings_and_given_as_is_to_the_timer(
        env, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # It used to make the settings invalid while the timer silently kept the default schedule. (The
    # runner refuses a timer with it as the host does: test_runner's six-field test.)
    from dci.settings import case_schedule, insights_schedule

    monkeypatch.setenv(name, "*/5 * * * *")  # five fields
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert name in refused.value.names
    assert {"CASE_SCHEDULE": case_schedule, "INSIGHTS_SCHEDULE": insights_schedule}[name]() == "*/5 * * * *"
    monkeypatch.setenv(name, "")
    assert case_schedule() == "0 */5 * * * *" and insights_schedule() == "30 */5 * * * *"


LAKE_URLS = [  # (LAKE_URL, accepted as)
    ("az://lake/portal", "az://lake/portal"),
    ("az://lake/portal/", "az://lake/portal"),
    ("az://lake", "az://lake"),
    ("az://lake/a/b_c=1", "az://lake/a/b_c=1"),
    ("abfss://lake@contosolake.dfs.core.windows.net/portal", "abfss://lake@contosolake.dfs.core.windows.net/portal"),
    ("az://Lake/portal", None),  # container names are lower case
    ("az://la/portal", None),  # … and 3 to 63 characters
    ("az://lake--x/portal", None),  # … without double hyphens
    ("s3://lake/portal", None),
    ("abfss://lake@contosolake.blob.core.windows.net/portal", None),  # the dfs endpoint
    ("abfss://lake@contoso.dfs.core.windows.net.evil.example/portal", None),
    ("az://lake/../x", None),
    ("az://lake/a b", None),
]


@pytest.mark.parametrize(("url", "accepted"), LAKE_URLS)
def test_settings_lake_url_forms(env, url: str, accepted: str | None) -> None:
    env(LAKE_URL=url)
    if accepted is None:
        with pytest.raises(SettingsError) as caught:
            load_settings()
        assert caught.value.names == ["LAKE_URL"] and "az://lake/portal" in str(caught.value)
    else:
        assert load_settings().lake_url == accepted


def test_settings_lake_location_from_the_storage_connection(env, monkeypatch: pytest.MonkeyPatch) -> None:
    from dci.lake.target import DEV_BLOB, DEV_KEY

    env(LAKE_URL="az://lake/portal", AzureWebJobsStorage="UseDevelopmentStorage=true")
    where = load_settings().lake
    assert (where.container, where.account_url, where.table_uri("cases")) == ("lake", DEV_BLOB, "az://lake/portal/cases")
    assert where.storage_options()["azure_storage_account_key"] == DEV_KEY and DEV_KEY not in repr(where)
    env(AzureWebJobsStorage="DefaultEndpointsProtocol=https;AccountName=stx;AccountKey=a2V5;EndpointSuffix=core.windows.net")
    assert load_settings().lake.storage_options() == {
        "azure_storage_account_name": "stx", "azure_storage_endpoint": "https://stx.blob.core.windows.net",
        "azure_storage_account_key": "a2V5"}
    env(AzureWebJobsStorage="DefaultEndpointsProtocol=https;AccountName=stx;EndpointSuffix=core.windows.net")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.names == ["LAKE_URL"] and "AccountKey" in str(caught.value)
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    env(AzureWebJobsStorage="")
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "stcontoso")
    where = load_settings().lake
    assert where.options == {"azure_storage_account_name": "stcontoso",
                             "azure_storage_endpoint": "https://stcontoso.blob.core.windows.net"}
    env(LAKE_URL="abfss://lake@contosolake.dfs.core.windows.net/portal")
    where = load_settings().lake
    assert (where.account_url, where.options) == ("https://contosolake.blob.core.windows.net",
                                                  {"azure_storage_account_name": "contosolake"})
