"""Portal visits as activities (issue 28, pure part): one per visit of the journey, the latest ten,
ids that survive a re-assembly, texts in the report's words and bounded."""

from __future__ import annotations

from dci.attribution import STITCHED, VERIFIED
from dci.clock import iso_of
from dci.dataverse.visits import DESCRIPTION_LENGTH, MAX_VISITS, SUBJECT_LENGTH, SUBJECT_PREFIX, activity_id, visits
from dci.steps import steps
from dci.timeline import assemble

M = 60_000
CREATED = 1_796_137_200_000
GAP = 30 * M
CASE = {"case_id": "5A0C1F0E-2D7A-4F51-9A8E-3F1C27D0A927", "ticket": "CAS-1", "title": "VPN", "contact": "a",
        "created_ms": CREATED}
VISITOR = "visitor-0123456789abcdef"


def ev(minutes_before: float, kind: str, how: str = STITCHED, **fields) -> dict:
    return {"id": f"{kind}-{minutes_before}", "type": kind, "ts": CREATED - int(minutes_before * M),
            "visitor": VISITOR, "attribution": how, **fields}


def journey() -> list[dict]:
    return [ev(180, "search", query="vpn error 809", results=0),
            ev(179, "page_view", url="https://p.example/knowledgebase/article/KA-51002/en-us",
               article_number="KA-51002", title="Allow IKEv2 through your home router"),
            ev(20, "search", how=VERIFIED, query="vpn error 809 windows", results=2),
            ev(19, "page_view", how=VERIFIED, url="https://p.example/knowledgebase/article/KA-1/en-us",
               article_number="KA-1", title="VPN setup"),
            ev(18, "page_view", how=VERIFIED, url="https://p.example/knowledgebase/article/KA-2/en-us",
               article_number="KA-2", title="VPN errors"),
            ev(5, "case_form", how=VERIFIED, url="https://p.example/support/create-case/")]


def test_visits_of_a_two_visit_journey() -> None:
    activities, earlier = visits(assemble(CASE, journey(), GAP), "https://app.example/api/cases/x/report")
    assert earlier == 0 and len(activities) == 2
    first, second = activities
    assert first["subject"] == f'{SUBJECT_PREFIX}searched "vpn error 809", read 1 article'
    assert second["subject"] == (f'{SUBJECT_PREFIX}searched "vpn error 809 windows", read 2 articles, '
                                 "opened the case form")
    assert (first["actualstart"], first["actualend"]) == (iso_of(CREATED - 180 * M), iso_of(CREATED - 179 * M))
    assert (second["actualstart"], second["actualend"]) == (iso_of(CREATED - 20 * M), iso_of(CREATED - 5 * M))
    assert (first["dci_searches"], first["dci_articles"], first["dci_zeroresults"]) == (1, 1, 1)
    assert (second["dci_searches"], second["dci_articles"], second["dci_zeroresults"]) == (1, 2, 0)
    assert (first["dci_signedin"], second["dci_signedin"]) == (False, True)  # stitched, then signed in
    assert second["dci_reporturl"] == "https://app.example/api/cases/x/report"
    assert first["activityid"] == activity_id(CASE["case_id"], VISITOR, "search-180")
    assert first["activityid"] != second["activityid"]


def test_visits_describe_each_step_in_the_reports_words_and_name_no_visitor() -> None:
    timeline = assemble(CASE, journey(), GAP)
    (first, second), _ = visits(timeline)
    second_items = timeline["items"][timeline["sessions"][1]["first"]:]
    assert second["description"].splitlines() == [step["text"] for step in steps(second_items, GAP)]
    for activity in (first, second):
        assert VISITOR not in activity["subject"] + activity["description"]


def test_visits_keep_their_ids_when_late_events_join_the_last_visit() -> None:
    before, _ = visits(assemble(CASE, journey(), GAP))
    after, _ = visits(assemble(CASE, [*journey(), ev(4, "page_view", url="https://p.example/support/")], GAP))
    assert [a["activityid"] for a in after] == [b["activityid"] for b in before]
    assert after[1]["actualend"] == iso_of(CREATED - 4 * M)


def test_visits_are_the_latest_ten_and_say_how_many_earlier() -> None:
    events = [ev(60 * n + 1, "search", query=f"term {n}", results=1) for n in range(14)]
    activities, earlier = visits(assemble(CASE, events, GAP))
    assert (len(activities), earlier) == (MAX_VISITS, 14 - MAX_VISITS)
    assert activities[-1]["subject"].endswith('"term 0"') and activities[0]["subject"].endswith('"term 9"')


def test_visits_subject_is_one_line_and_fits_its_column() -> None:
    long_query = "vpn\nForged line " + "x" * 400
    (activity,), _ = visits(assemble(CASE, [ev(10, "search", query=long_query, results=0)], GAP))
    assert len(activity["subject"]) <= SUBJECT_LENGTH and "\n" not in activity["subject"]
    assert activity["subject"].startswith(f'{SUBJECT_PREFIX}searched "vpn Forged line x')


def test_visits_of_a_journey_without_activity_are_none() -> None:
    assert visits(assemble(CASE, [], GAP)) == ([], 0)


def units16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_visits_texts_fit_their_columns_as_dataverse_counts_them_emoji_included() -> None:
    # Found from outside: a search of 256 emoji (collect takes 256 characters) made a subject of 200
    # characters but 398 UTF-16 code units, and twelve such searches a 3,728-unit description.
    (one,), _ = visits(assemble(CASE, [ev(10, "search", query="\U0001F600" * 256, results=0)], GAP))
    assert units16(one["subject"]) <= SUBJECT_LENGTH and one["subject"].endswith("\u2026")
    many = [ev(10 + n / 10, "search", query=f"{n} " + "\U0001F600" * 250, results=0) for n in range(12)]
    (visit,), _ = visits(assemble(CASE, many, GAP))
    assert units16(visit["description"]) <= DESCRIPTION_LENGTH
    assert visit["description"].splitlines()[-1].startswith("… and ")  # whole lines, then how many more
    assert "\ud83d" not in visit["subject"] + visit["description"]  # (never half a character)


def test_visits_of_two_browsers_that_send_the_same_event_id_are_two_activities() -> None:
    # Found from outside: event ids come from browsers; two of one contact's browsers sending the same
    # first event id made their two visits one activity, rewritten by each in turn.
    events = [{**ev(300, "search", query="first", results=0), "id": "forged", "visitor": "laptop"},
              {**ev(30, "search", query="second", results=0), "id": "forged", "visitor": "phone"}]
    activities, _ = visits(assemble(CASE, events, GAP))
    assert len({a["activityid"] for a in activities}) == 2
