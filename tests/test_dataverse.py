"""The Dataverse client against the local Web API server: paging, annotations, throttling, tokens."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from urllib.parse import unquote

import pytest

from dci.dataverse.client import Dataverse, DataverseError, TokenSource, note_id, session
from dci.runner.dataverse import LocalDataverse

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
T0_MS = int(T0.timestamp() * 1000)


def client(fake: LocalDataverse, page_size: int = 2, token: str = "test-token", **retry) -> Dataverse:
    return Dataverse(fake.url, TokenSource(fake.url, fixed=token), session(**({"backoff": 0.05} | retry)),
                     page_size=page_size)


def all_incidents(dv: Dataverse, since_ms: int = T0_MS - 1) -> list:
    return [incident for page in dv.incidents_since(since_ms) for incident in page]


def test_dataverse_pages_follow_next_link_verbatim(fake: LocalDataverse) -> None:
    contact = str(uuid.uuid4())
    ids = [fake.add_incident(T0 + timedelta(minutes=i), contact=contact) for i in range(5)]
    dv = client(fake, page_size=2)
    pages = list(dv.incidents_since(T0_MS))
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i.case_id for p in pages for i in p] == ids
    assert all("$skiptoken=" in path for _, path in fake.requests[1:])


def test_dataverse_filters_on_createdon_and_asks_for_lookup_annotations(fake: LocalDataverse) -> None:
    contact = str(uuid.uuid4())
    fake.add_incident(T0 - timedelta(hours=1), contact=contact)
    newer = fake.add_incident(T0 + timedelta(minutes=1), contact=contact)
    (incident,) = all_incidents(client(fake), T0_MS)
    assert (incident.case_id, incident.contact, incident.skipped) == (newer, contact, "")
    path = unquote(fake.requests[0][1])
    assert "$select=incidentid" in path and "$filter=createdon ge 2026-11-28T09:00:00Z" in path


def test_dataverse_account_customer_falls_back_to_its_primary_contact(fake: LocalDataverse) -> None:
    primary = str(uuid.uuid4())
    fake.add_incident(T0, account=str(uuid.uuid4()), primary_contact=primary)
    fake.add_incident(T0 + timedelta(seconds=1), account=str(uuid.uuid4()))
    fake.add_incident(T0 + timedelta(seconds=2))
    with_primary, without, nobody = all_incidents(client(fake))
    assert (with_primary.contact, with_primary.skipped) == (primary, "")
    assert without.contact is None and "account" in without.skipped
    assert nobody.contact is None and nobody.skipped == "no customer contact"


def test_dataverse_429_with_retry_after_is_waited_out(fake: LocalDataverse) -> None:
    fake.add_incident(T0, contact=str(uuid.uuid4()))
    fake.fail(429, times=2, retry_after=1)
    started = time.monotonic()
    assert len(all_incidents(client(fake))) == 1
    assert time.monotonic() - started >= 2  # urllib3 slept Retry-After each time
    assert len(fake.requests) == 3


def test_dataverse_503_is_retried(fake: LocalDataverse) -> None:
    fake.add_incident(T0, contact=str(uuid.uuid4()))
    fake.fail(503, times=2)
    assert len(all_incidents(client(fake))) == 1


def test_dataverse_throttling_beyond_the_retries_is_an_error_naming_the_call(fake: LocalDataverse) -> None:
    fake.fail(429, times=10, retry_after=0)
    with pytest.raises(DataverseError, match=r"list incidents: HTTP 429 0x80072322") as caught:
        all_incidents(client(fake, retries=2))
    assert caught.value.status == 429


def test_dataverse_500_is_not_retried_and_says_what_failed(fake: LocalDataverse) -> None:
    fake.fail(500)
    with pytest.raises(DataverseError, match="HTTP 500"):
        all_incidents(client(fake))
    assert len(fake.requests) == 1


def test_dataverse_wrong_token_is_401_after_one_renewal(fake: LocalDataverse) -> None:
    with pytest.raises(DataverseError, match="HTTP 401"):
        all_incidents(client(fake, token="wrong"))
    assert len(fake.requests) == 2  # the first answer, then once more with a renewed token


class Credential:
    """azure-identity's credential protocol: get_token(scope) -> AccessToken-like."""

    def __init__(self, fake: LocalDataverse) -> None:
        self.fake, self.calls, self.scopes = fake, 0, []

    def get_token(self, scope: str):
        self.calls += 1
        self.scopes.append(scope)
        token = f"issued-{self.calls}"
        self.fake.tokens = {token}  # only the newest token is accepted, as after an expiry
        return SimpleNamespace(token=token, expires_on=int(time.time()) + 3600)


def test_dataverse_tokens_are_cached_and_renewed_when_refused(fake: LocalDataverse) -> None:
    credential = Credential(fake)
    tokens = TokenSource(fake.url, credential=credential)
    dv = Dataverse(fake.url, tokens, session(backoff=0.05))
    fake.add_incident(T0, contact=str(uuid.uuid4()))
    all_incidents(dv)
    all_incidents(dv)
    assert credential.calls == 1 and credential.scopes == [f"{fake.url}/.default"]
    fake.tokens = {"revoked-meanwhile"}  # the cached token is refused now (expired early, revoked)
    assert len(all_incidents(dv)) == 1  # 401 -> one renewal -> the call goes through
    assert credential.calls == 2


def test_dataverse_token_near_expiry_is_renewed_before_use(fake: LocalDataverse) -> None:
    now = [1000.0]
    credential = Credential(fake)
    tokens = TokenSource(fake.url, credential=credential, clock=lambda: now[0])
    credential_get = credential.get_token
    credential.get_token = lambda scope: SimpleNamespace(token=credential_get(scope).token, expires_on=now[0] + 600)
    tokens.token()
    now[0] += 301  # within five minutes of expiry
    tokens.token()
    assert credential.calls == 2


def test_dataverse_note_is_an_upsert_on_an_id_derived_from_the_case(fake: LocalDataverse) -> None:
    case = fake.add_incident(T0, contact=str(uuid.uuid4()))
    dv = client(fake)
    first = dv.write_note(case, "Portal activity before this case", "v1")
    second = dv.write_note(case, "Portal activity before this case", "v2")
    assert first == second == note_id(case)
    (note,) = fake.notes_for(case)
    assert (note["notetext"], note["updates"], note["isdocument"]) == ("v2", 1, False)
    assert "*WEB*" not in note["notetext"] and "*WEB*" not in note["subject"]


def test_dataverse_note_on_an_unknown_case_is_a_clear_error(fake: LocalDataverse) -> None:
    with pytest.raises(DataverseError, match="write the timeline note: HTTP 400 0x80040203"):
        client(fake).write_note(str(uuid.uuid4()), "s", "t")


def test_dataverse_slow_answers_are_waited_for_within_the_timeout(fake: LocalDataverse) -> None:
    fake.add_incident(T0, contact=str(uuid.uuid4()))
    with fake.slow(0.5):
        assert len(all_incidents(client(fake))) == 1


def test_dataverse_attachments_since_page_in_order_and_articles_read_by_version(fake: LocalDataverse) -> None:
    # Issue 29: the articles agents attached to cases, newer than a watermark, and those versions' columns.
    case_a, case_b = str(uuid.uuid4()), str(uuid.uuid4())
    old = fake.add_article("KA-51002", "Allow IKEv2", modified=T0 - timedelta(days=9), keywords="vpn")
    new = fake.add_article("KA-51002", "Allow IKEv2 through your home router", modified=T0, keywords="vpn; ikev2")
    other = fake.add_article("KA-00001", "Draft", published=False, modified=T0)
    fake.knowledge.attach(case_a, old, T0 - timedelta(days=1))  # before the watermark: not read
    made = [fake.knowledge.attach(case, article, T0 + timedelta(minutes=n))
            for n, (case, article) in enumerate([(case_a, new), (case_b, new), (case_b, other)])]
    dv = client(fake, page_size=2)
    pages = list(dv.attachments_since(T0_MS))
    assert [len(page) for page in pages] == [2, 1]
    got = [a for page in pages for a in page]
    assert [a.attachment_id for a in got] == made and [a.case_id for a in got] == [case_a, case_b, case_b]
    assert got[0].attached_ms == T0_MS and got[2].article_id == other
    versions = dv.articles([new, old, other, str(uuid.uuid4())])
    assert {a.number for a in versions.values()} == {"KA-51002", "KA-00001"} and len(versions) == 3
    assert (versions[new].title, versions[new].keywords, versions[new].modified_ms) == (
        "Allow IKEv2 through your home router", "vpn; ikev2", T0_MS)
    assert versions[new].published and not versions[other].published
    assert all("knowledgearticleid eq" in unquote(path) for method, path in fake.requests[-1:])
