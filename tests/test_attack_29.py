"""Issue 29 from outside: each test replays a defect an outside run found in the suggestions (rates
above 1 that crashed the report, a fix that worked vanishing, a later edit restarting the
comparison, drafts taken for the change, versions never read after a failed page, keyword edits
that overwrote an author's, repeated a term or passed Dataverse's 4,000 characters, a bad --to)."""
from __future__ import annotations

import argparse
import io
import uuid
from datetime import datetime, timedelta, timezone

from dci.clock import ms_of
from dci.insights.answers import TermFigures, compare
from tests.test_answers import KA_VPN, TITLES, _seed_vpn_cases, before_and_after

NOW = datetime(2026, 12, 6, 12, tzinfo=timezone.utc)


# --- pure: rates above 1 reach Wilson ------------------------------------------------------------

def test_a_part_above_its_whole_has_no_interval_and_does_not_crash() -> None:
    # Was: wilson(80, 40) -> sqrt of a negative number -> a 500 on /api/insights.
    judged = compare(TermFigures(40, 40, 30, 0, 8), TermFigures(40, 40, 5, 80, 2), "zero results", 14)
    assert judged["difference"]["click_through_to_article"]["interval"] is None
    assert judged["status"] == "worked"  # (judged by the zero-result rate, whose interval is there)
    few = compare(TermFigures(40, 40, 30, 0, 8), TermFigures(1, 1, 0, 0, 2), "zero results", 14)
    assert few["difference"]["cases_per_100_searches"]["interval"] is None and few["status"] == "too few"


# --- integration helpers -------------------------------------------------------------------------

def _stored(store, after_clicks_per_session=1, after_cases=1):
    return before_and_after(store, after_clicks=40, clicks_per_search=after_clicks_per_session,
                            after_cases=after_cases)


def test_double_clicks_after_the_fix_crash_the_insights_report(store) -> None:
    from dci.dataverse.articles import Article
    from dci.reports.suggestions import range_suggestions

    insights, answers, change = _stored(store, after_clicks_per_session=2)
    range_suggestions(insights, answers, "2026-11-10", "2026-11-19", ms_of(change) - 3_600_000)
    answers.put_versions([Article("ver", KA_VPN, TITLES[KA_VPN], "vpn, vpn error 809", ms_of(change), True)])
    # 40 searches, each clicked through twice to KA-51002 after the change: a search counts once.
    (judged,) = range_suggestions(insights, answers, "2026-11-10", "2026-11-30",
                                  ms_of(change + timedelta(days=10)))["suggestions"]
    assert judged["after"]["click_through_to_article"] == 1.0 and judged["status"] == "worked"


def test_a_suggestion_that_worked_vanishes_from_a_range_after_the_change(store) -> None:
    from dci.dataverse.articles import Article
    from dci.reports.suggestions import range_suggestions

    insights, answers, change = _stored(store, after_cases=0)
    (made,) = range_suggestions(insights, answers, "2026-11-10", "2026-11-19",
                                ms_of(change) - 3_600_000)["suggestions"]
    answers.put_versions([Article("ver", KA_VPN, TITLES[KA_VPN], "vpn, vpn error 809", ms_of(change), True)])
    now = ms_of(change + timedelta(days=10))
    assert made["id"] in answers.suggestion_states()
    # The manager looks at the days since the fix: the term's searches are there, its cases are gone
    # (it worked), and so is the suggestion with its before/after.
    (found,) = range_suggestions(insights, answers, "2026-11-21", "2026-11-30", now)["suggestions"]
    assert (found["id"], found["status"], found["answered"]) == (made["id"], "worked", 0)


def test_a_second_edit_moves_changed_on_and_restarts_the_comparison(store) -> None:
    from dci.dataverse.articles import Article
    from dci.reports.suggestions import range_suggestions

    insights, answers, change = _stored(store)
    range_suggestions(insights, answers, "2026-11-10", "2026-11-19", ms_of(change) - 3_600_000)
    answers.put_versions([Article("ver", KA_VPN, TITLES[KA_VPN], "vpn, vpn error 809", ms_of(change), True)])
    now = ms_of(change + timedelta(days=10))
    (first,) = range_suggestions(insights, answers, "2026-11-10", "2026-11-19", now)["suggestions"]
    assert first["status"] == "worked"
    typo = change + timedelta(days=9)  # a typo fixed in the title 9 days later
    answers.put_versions([Article("ver", KA_VPN, TITLES[KA_VPN] + ".", "vpn, vpn error 809", ms_of(typo), True)])
    (later,) = range_suggestions(insights, answers, "2026-11-10", "2026-11-19", now)["suggestions"]
    assert (later["changed_on"], later["status"]) == (first["changed_on"], "worked")


def test_a_draft_version_counts_as_the_change_and_is_what_apply_edits(store, fake) -> None:
    from dci.dataverse.knowledge import read_attachments
    from dci.reports import suggestions_command
    from dci.reports.suggestions import range_suggestions

    stores, dv, version = _seed_vpn_cases(store, fake, NOW)
    read_attachments(dv, stores.cases, stores.answers, ms_of(NOW))
    (made,) = range_suggestions(stores.insights, stores.answers, "2026-11-07", "2026-12-06",
                                ms_of(NOW))["suggestions"]
    # An author starts a new (unpublished) version of KA-51002: nothing customers see changed.
    draft = fake.add_article("KA-51002", TITLES[KA_VPN], published=False, keywords="vpn", modified=NOW)
    read_attachments(dv, stores.cases, stores.answers, ms_of(NOW) + 60_000)
    (after,) = range_suggestions(stores.insights, stores.answers, "2026-11-07", "2026-12-06",
                                 ms_of(NOW) + 60_000)["suggestions"]
    out = io.StringIO()
    suggestions_command.run(argparse.Namespace(action="apply", id=made["id"], yes=True), stores, dv, out, NOW)
    rows = {r["knowledgearticleid"]: r for r in fake.knowledge.articles}
    assert after["status"] == "open"  # a draft is no change customers see
    assert (rows[version]["keywords"], rows[draft]["keywords"]) == ("vpn, vpn error 809", "vpn")  # the published


# --- read from Dataverse ------------------------------------------------------------------------

def test_versions_of_attachments_kept_before_a_failed_page_are_never_read(store, fake) -> None:
    from dci.cases import incident_case, take
    from dci.dataverse.client import Dataverse, Incident, TokenSource, session
    from dci.dataverse.knowledge import read_attachments_now
    from tests.conftest import stores_of

    stores = stores_of(store)
    ids = []
    for n in range(3):
        contact = str(uuid.uuid4())
        case_id = fake.add_incident(NOW - timedelta(days=3), contact=contact)
        take(stores.cases, incident_case(Incident(case_id, ms_of(NOW) - 3 * 86_400_000, f"CAS-{n}", "x", contact),
                                         "poll"), lambda _: None)
        ids.append(case_id)
    first_article = fake.add_article("KA-1", "One", modified=NOW - timedelta(days=30))
    other = fake.add_article("KA-2", "Two", modified=NOW - timedelta(days=30))
    fake.knowledge.attach(ids[0], first_article, NOW - timedelta(hours=3))
    fake.knowledge.attach(ids[1], other, NOW - timedelta(hours=2))
    fake.knowledge.attach(ids[2], other, NOW - timedelta(hours=1))

    dv = Dataverse(fake.url, TokenSource(fake.url, fixed="test-token"), session(retries=1, backoff=0.05), page_size=1)
    # GETs: page 1, its version, page 2, its version, page 3 -> 429 past the retries.
    fake.fail(429, times=2, retry_after=0, method="GET", after=4)
    assert read_attachments_now(dv, stores, ms_of(NOW)) is None  # pages 1-2 kept with their versions; page 3 not
    read_attachments_now(dv, stores, ms_of(NOW) + 60_000)
    assert {first_article, other} <= stores.answers.versions().keys()
    assert len(stores.answers.attached("2026-12-03", "2026-12-03")) == 3


# --- apply ---------------------------------------------------------------------------------------

def _cli(stores, dv, action, sid=None, yes=False, first=None, last=None):
    from dci.reports import suggestions_command
    out = io.StringIO()
    code = suggestions_command.run(argparse.Namespace(action=action, id=sid, yes=yes, first=first, last=last),
                                   stores, dv, out, NOW)
    return code, out.getvalue()


def _ready(store, fake):
    from dci.dataverse.knowledge import read_attachments
    stores, dv, version = _seed_vpn_cases(store, fake, NOW)
    read_attachments(dv, stores.cases, stores.answers, ms_of(NOW))
    code, listed = _cli(stores, dv, "list")
    return stores, dv, version, listed.splitlines()[2].split()[0]


def test_apply_overwrites_an_edit_made_in_dynamics_since_the_last_poll(store, fake) -> None:
    stores, dv, version, sid = _ready(store, fake)
    fake.knowledge.change_article(version, NOW, keywords="vpn, ikev2, l2tp")  # an author, between two polls
    _cli(stores, dv, "apply", sid, yes=True)
    row = next(r for r in fake.knowledge.articles if r["knowledgearticleid"] == version)
    assert row["keywords"] == "vpn, ikev2, l2tp, vpn error 809"


def test_apply_a_term_with_a_comma_twice_appends_it_twice(store, fake) -> None:
    stores, dv, version, _ = _ready(store, fake)
    term = "vpn, error 809"
    stores.answers.note_suggestion({"id": "c0mma0000000", "term": term, "article": KA_VPN}, None, ms_of(NOW))
    _cli(stores, dv, "apply", "c0mma0000000", yes=True)
    _cli(stores, dv, "apply", "c0mma0000000", yes=True)
    row = next(r for r in fake.knowledge.articles if r["knowledgearticleid"] == version)
    assert row["keywords"] == "vpn, vpn, error 809"


def test_apply_sends_keywords_past_dataverses_4000_characters(store, fake) -> None:
    stores, dv, version, sid = _ready(store, fake)
    long = ", ".join(f"keyword number {n:04d}" for n in range(200))[:3990]
    fake.knowledge.change_article(version, NOW - timedelta(days=1), keywords=long)
    from dci.dataverse.knowledge import read_attachments
    read_attachments(dv, stores.cases, stores.answers, ms_of(NOW) + 60_000)
    code, said = _cli(stores, dv, "apply", sid, yes=True)
    row = next(r for r in fake.knowledge.articles if r["knowledgearticleid"] == version)
    assert code == 1 and "more than the 4000 Dataverse holds" in said and row["keywords"] == long


def test_list_with_a_bad_to_day_is_a_usage_error(store, fake) -> None:
    stores, dv, _, _ = _ready(store, fake)
    assert _cli(stores, dv, "list", first="2026-11-01", last="yesterday")[0] == 2
