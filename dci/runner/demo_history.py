"""The demo's made-up portal history (`python -m dci demo seed`, dci/runner/demo.py): who visits the
portals on a given day, what they do there, and the `portal-events` messages collect writes for it.

Pure and deterministic: a day's sessions come from a random generator seeded with the day (each
session from its own), whatever range is asked for; event ids are uuid5s. Realistic enough for the
dashboard to show something worth reading: several hundred sessions on a weekday and far fewer at
the weekend, business hours, about sixty search terms with a long tail (typos and rephrasings among
them, and topics the portal lacks that people search for often), result clicks mostly on the first
three results, knowledge-article reads, anonymous visitors and signed-in customers (some sign in
half-way), cases after searches that found nothing more often than after others, a ten-day VPN
outage in every thirty, and customers who come back days later with a second case. Every visitor
id starts with `demo-` and every contact is a uuid5 under DEMO_NAMESPACE: that is how the demo is
told from everything else.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import uuid
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote_plus

from dci.clock import DAY_MS, HOUR_MS, MINUTE_MS, day_of, iso_of, moment, ms_of
from dci.ingest import collect
from dci.ingest.events import MAX_EVENTS
from dci.runner.portal import ARTICLES as PORTAL_ARTICLES
from dci.runner.portal import article_path as portal_article_path

if TYPE_CHECKING:
    from dci.settings import Settings

DEMO_NAMESPACE = uuid.UUID("d3a0c5e2-6b1f-4c8e-9f27-5e0b7a4d1c63")
VISITOR_PREFIX = "demo-"
CUSTOMERS = 400  # demo contacts: uuid5(DEMO_NAMESPACE, "contact/{n}")
ANONYMOUS_BROWSERS = 2000  # browsers that come back without signing in
WEEKDAY_SESSIONS = 300  # a weekday's sessions on average; weekends far fewer
SUFFIX = " · Contoso Support"
ENGINES = ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/")
AGENTS = (  # (User-Agent, share)
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36 Edg/131.0.0.0", 34),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36", 30),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
     "Safari/605.1.15", 10),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Mobile/15E148 Safari/604.1", 14),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile "
     "Safari/537.36", 7),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", 5),
)
ARTICLES = {  # KA-01001 … (the demo portal's three keep their titles and URL forms)
    1: "Sign in to the customer portal", 2: "Change your email address", 3: "Set up multi-factor authentication",
    4: "Unlock your account", 8: "Update your billing details", 9: "Understand your invoice",
    10: "Request a refund", 12: "Download the desktop app", 13: "Install updates on Windows",
    14: "System requirements", 15: "Connect to Wi-Fi at the office", 16: "Map a network drive",
    17: "Printer shows as offline", 18: "Share files with external users", 19: "Recover a deleted file",
    20: "Sync your Outlook calendar on a phone", 21: "Set an out-of-office reply", 22: "Increase your mailbox size",
    23: "Reset your password", 24: "Set up the VPN client", 25: "Export your invoices",
    26: "Troubleshoot VPN connection errors", 27: "Add users to your subscription", 28: "Change or cancel your plan",
    29: "Book a Teams meeting room", 30: "Request a new laptop", 31: "Report a phishing email",
    32: "Set up email on an iPhone",
}
# Search terms, most searched first (Zipf-like shares): (query, results, articles its results list
# first, what a visitor tries next when it disappoints). Result count 0: a topic the portal lacks.
TERMS: tuple[tuple[str, int, tuple[int, ...], str | None], ...] = (
    ("reset password", 12, (23, 4, 1), None), ("vpn", 6, (24, 26), None), ("invoice", 9, (9, 25, 8), None),
    ("vpn error 809", 0, (), "vpn 809 error"), ("password", 15, (23, 4, 3), None), ("mfa", 4, (3,), None),
    ("mfa new phone", 0, (), "authenticator new phone"), ("printer offline", 3, (17,), None),
    ("export invoices", 5, (25, 9), None), ("teams recording download", 0, (), "teams recording"),
    ("outlook calendar sync", 4, (20,), None), ("refund", 3, (10,), None),
    ("pasword reset", 0, (), "password reset"), ("password reset", 12, (23, 4), None),
    ("change email", 4, (2,), None), ("account locked", 3, (4, 23), None),
    ("invoice vat number", 0, (), "change vat number"), ("download app", 5, (12, 14), None),
    ("wifi", 2, (15,), None), ("network drive", 3, (16,), None), ("out of office", 2, (21,), None),
    ("cancel subscription", 3, (28,), None), ("add user", 4, (27,), None), ("vpn 809 error", 0, (), "vpn"),
    ("sso login loop", 0, (), "sign in"), ("sign in", 8, (1, 23), None), ("billing", 6, (8, 9), None),
    ("deleted file", 2, (19,), None), ("phishing", 2, (31,), None), ("iphone email", 3, (32, 20), None),
    ("mailbox full", 2, (22,), "mailbox size"), ("new laptop", 1, (30,), None),
    ("system requirements", 2, (14,), None), ("windows update", 3, (13,), None),
    ("share file external", 2, (18,), None), ("authenticator new phone", 0, (), "mfa"),
    ("teams recording", 1, (29,), None), ("change vat number", 0, (), "billing"),
    ("printer offline mac", 0, (), "printer offline"), ("outlok calendar", 0, (), "outlook calendar sync"),
    ("upgrade plan", 3, (28, 27), None), ("meeting room", 2, (29,), None),
    ("vpn not connecting", 4, (26, 24), None), ("how do i reset my password", 10, (23, 4), None),
    ("expense report export", 0, (), "export invoices"), ("licence", 3, (27, 28), "license"),
    ("license", 3, (27, 28), None), ("unlock account", 3, (4,), None), ("refund status", 1, (10,), None),
    ("data export gdpr", 0, (), None), ("api access", 0, (), None), ("invoice copy", 5, (25, 9), None),
    ("2fa", 0, (), "mfa"), ("wi-fi password", 2, (15,), None), ("drive mapping", 2, (16,), None),
    ("calendar sharing", 1, (20,), None), ("mailbox size", 2, (22,), None), ("phishing report", 2, (31,), None),
    ("vpn mac", 2, (24,), None), ("desktop app crash", 0, (), "download app"),
    ("error 0x80070005", 0, (), "windows update"),
)
TERM = {query: (results, found, refine) for query, results, found, refine in TERMS}
TERM_WEIGHTS = [1 / (rank + 1) ** 1.07 for rank in range(len(TERMS))]
OUTAGE_TERMS = {"vpn", "vpn error 809", "vpn 809 error", "vpn not connecting"}  # searched twice as often in an outage
# What agents answer the cases after a search that found nothing with (the suggestions, issue 29): the
# article each term wanted. Halfway through the seeded days CHANGED_TERM is added to its answer's keywords,
# and from then on it finds it.
ANSWERS = {"vpn error 809": 26, "vpn 809 error": 26, "mfa new phone": 3, "authenticator new phone": 3, "2fa": 3,
           "pasword reset": 23, "invoice vat number": 8, "change vat number": 8, "sso login loop": 1,
           "printer offline mac": 17, "outlok calendar": 20,
           "expense report export": 25, "desktop app crash": 12, "error 0x80070005": 13}
CHANGED_TERM = "vpn error 809"
NAVIGATION = (("/products/", "Products and services"), ("/downloads/", "Downloads"), ("/contact-us/", "Contact us"),
              ("/forums/", "Community forums"), ("/support/", "Support"), ("/knowledgebase/", "Knowledge base"))
SIGNED_IN_PAGES = (("/support/cases/", "My cases"), ("/profile/", "Your profile"))
HOURS = (1, 1, 1, 1, 2, 3, 6, 10, 14, 16, 16, 15, 13, 14, 15, 14, 12, 9, 7, 6, 5, 4, 2, 1)  # traffic by UTC hour


def number(article: int) -> str:
    """`KA-01023` for article 23."""
    return f"KA-{1000 + article:05d}"


def article_path(article: int) -> str:
    """The article's path: the demo portal's own form for its three, else `/knowledgebase/article/KA-…/en-us`."""
    code = number(article)
    return portal_article_path(code) if code in PORTAL_ARTICLES else f"/knowledgebase/article/{code}/en-us"


def contact_of(n: int) -> str:
    """Demo contact n: a uuid5 under DEMO_NAMESPACE."""
    return str(uuid.uuid5(DEMO_NAMESPACE, f"contact/{n}"))


DEMO_CONTACTS = frozenset(contact_of(n) for n in range(CUSTOMERS))


class Page(NamedTuple):
    """A page as the beacon reports it: its view, what happened on it (offset ms, event fields), and
    the engagement when it was left."""

    path: str
    title: str
    referrer: str | None
    start_ms: int
    dwell_ms: int
    events: list[tuple[int, dict[str, Any]]]
    signed_in: bool


@dataclasses.dataclass
class Session:
    """One browser session: who, where, and its pages."""

    key: str
    visitor: str
    host: str
    agent: str
    contact: str | None
    signed_in: bool
    start_ms: int
    skew_ms: int = 0
    pages: list[Page] = dataclasses.field(default_factory=list)
    ticket: str | None = None
    edited_ms: int | None = None  # when CHANGED_TERM's answer got it as a keyword (the demo's closed loop)

    def view(self, rng: random.Random, path: str, title: str, dwell_ms: int, referrer: str | None = None,
             events: Iterable[tuple[int, dict[str, Any]]] = ()) -> None:
        """The next page, a second or so after the last was left."""
        start = self.end_ms + rng.randint(300, 1500) if self.pages else self.start_ms
        self.pages.append(Page(path, title + SUFFIX, referrer, start, dwell_ms, list(events), self.signed_in))

    def url(self, path: str) -> str:
        """The address of a path on this session's portal (http on a loopback host, as the demo portal)."""
        scheme = "http" if self.host.split(":")[0] in ("127.0.0.1", "localhost") else "https"
        return f"{scheme}://{self.host}{path}"

    @property
    def here(self) -> str | None:
        """The address of the page the visitor is on."""
        return self.url(self.pages[-1].path) if self.pages else None

    @property
    def end_ms(self) -> int:
        """When the visitor left the last page."""
        return self.pages[-1].start_ms + self.pages[-1].dwell_ms if self.pages else self.start_ms


def _dwell(rng: random.Random, median_s: float, low_s: float, high_s: float) -> int:
    return int(1000 * min(high_s, max(low_s, rng.lognormvariate(math.log(median_s), 0.6))))


def _search(rng: random.Random, s: Session, query: str) -> tuple[str, int | None]:
    """A search results page; returns ("zero" | "results" | "read", the article a click opened).
    CHANGED_TERM finds its answer once that article has it as a keyword (`edited_ms`)."""
    edited = s.edited_ms is not None and s.start_ms >= s.edited_ms and query == CHANGED_TERM
    results, found, _ = (2, (ANSWERS[CHANGED_TERM], 24), None) if edited else TERM[query]
    path = f"/search/?q={quote_plus(query)}"
    clicked = None
    events: list[tuple[int, dict[str, Any]]] = [(rng.randint(700, 2500), {"type": "search", "query": query,
                                                                           "results": results})]
    if results and rng.random() < 0.66:
        position = min(results, rng.choices((1, 2, 3, 4, 5, 6, 8, 10), (55, 21, 11, 5, 3, 2, 2, 1))[0])
        clicked = found[position - 1] if position <= len(found) else rng.choice(list(ARTICLES))
        events.append((rng.randint(3000, 25000), {"type": "search_click", "query": query, "position": position,
                                                  "target": s.url(article_path(clicked))}))
    elif rng.random() < 0.04:  # left before the results showed: no count
        del events[0][1]["results"]
    dwell = events[-1][0] + rng.randint(400, 1500) if clicked else _dwell(rng, 14, 4, 90)
    s.view(rng, path, "Search", dwell, s.here, events)
    return ("read" if clicked else "zero" if results == 0 else "results"), clicked


def _read(rng: random.Random, s: Session, article: int, referrer: str | None) -> str:
    s.view(rng, article_path(article), ARTICLES[article], _dwell(rng, 70, 6, 420), referrer)
    return "read"


def _case(rng: random.Random, s: Session, customer: str) -> str:
    """Sign in if need be, open the case form and (mostly) submit it."""
    if not s.signed_in:
        s.view(rng, "/SignIn?returnUrl=%2Fsupport%2Fcreate-case%2F", "Sign in", _dwell(rng, 20, 6, 90), s.here)
        s.signed_in, s.contact = True, s.contact or customer
    s.view(rng, "/support/create-case/", "Create a case", _dwell(rng, 150, 40, 600), s.here,
           [(rng.randint(200, 600), {"type": "case_form"})])
    if rng.random() < 0.86:
        s.ticket = f"CAS-{rng.randint(1000, 99999):05d}-{''.join(rng.choices('ABCDEFGHJKLMNPQRSTUVWXYZ23456789', k=6))}"
        s.view(rng, "/support/case-created/", "Case created", _dwell(rng, 12, 3, 60), s.here,
               [(rng.randint(200, 600), {"type": "case_submitted", "ticket": s.ticket})])
    return "end"


def _term(rng: random.Random, outage: bool) -> str:
    weights = [w * (2 if outage and q in OUTAGE_TERMS else 1) for w, (q, *_) in zip(TERM_WEIGHTS, TERMS)]
    return rng.choices(TERMS, weights)[0][0]


def _walk(rng: random.Random, s: Session, customer: str, outage: bool, eager: float = 1.0) -> None:
    """A visit: entry page, then searches, reads, navigation, maybe a case; `eager` scales the chance of a case."""
    if (entry := rng.random()) < 0.28:  # from a search engine straight onto an article
        state = _read(rng, s, rng.choice(list(ARTICLES)), rng.choice(ENGINES))
    elif entry < 0.38:
        s.view(rng, *rng.choice(NAVIGATION), _dwell(rng, 15, 3, 120), rng.choice((None, ENGINES[0])))
        state = "page"
    else:
        s.view(rng, "/", "Home", _dwell(rng, 8, 2, 60), rng.choice((None, None, None, ENGINES[0], ENGINES[1])))
        state = "page"
    query = None
    for _ in range(rng.randint(2, 9)):
        r = rng.random()
        if state == "zero":  # found nothing: rephrase, give up, or ask support
            refine = TERM[query][2] if query else None
            if refine and r < 0.5:
                query = refine
            elif r < 0.5 + 0.2 * eager:
                state = _case(rng, s, customer)
                break
            else:
                break
        elif state == "results":  # found something, opened nothing
            if r < 0.3:
                query = (TERM[query][2] if query else None) or _term(rng, outage)
            elif r < 0.3 + 0.06 * eager:
                state = _case(rng, s, customer)
                break
            else:
                break
        elif state == "read":
            if r < 0.45:
                break
            if r < 0.63:
                query = _term(rng, outage)
            elif r < 0.72:
                state = _read(rng, s, rng.choice(list(ARTICLES)), s.here)
                continue
            elif r < 0.72 + 0.03 * eager:
                state = _case(rng, s, customer)
                break
            else:
                s.view(rng, *rng.choice(NAVIGATION), _dwell(rng, 12, 3, 90), s.here)
                state = "page"
                continue
        else:  # a home or navigation page
            if r < 0.58:
                query = _term(rng, outage)
            elif r < 0.68:
                state = _read(rng, s, rng.choice((23, 24, 25, 26, 3, 9)), s.here)
                continue
            elif r < 0.8:
                pages = NAVIGATION + (SIGNED_IN_PAGES if s.signed_in else ())
                s.view(rng, *rng.choice(pages), _dwell(rng, 12, 3, 90), s.here)
                continue
            elif r < 0.8 + 0.015 * eager:
                state = _case(rng, s, customer)
                break
            else:
                break
        assert query is not None
        state, clicked = _search(rng, s, query)
        if clicked is not None:
            _read(rng, s, clicked, s.here)


# --- a day's sessions ----------------------------------------------------------------------------------

def _who(rng: random.Random, hosts: tuple[str, ...]) -> tuple[str, str, str | None, str, float]:
    """(visitor, host, the contact signed in from the start, who signs in for a case, how eager for one)."""
    def host_of(n: int) -> str:
        return hosts[0] if len(hosts) == 1 or n % 10 < 7 else hosts[1]

    r = rng.random()
    if r < 0.36:  # a customer on their own browser (a second one, now and then), often still signed in
        n = rng.randrange(CUSTOMERS)
        signed_in = rng.random() < 0.55
        return f"{VISITOR_PREFIX}c{n:04d}-{int(rng.random() < 0.2)}", host_of(n), \
            contact_of(n) if signed_in else None, contact_of(n), 1.3
    if r < 0.52:  # a browser that comes back without signing in
        n = rng.randrange(ANONYMOUS_BROWSERS)
        return f"{VISITOR_PREFIX}a{n:04d}", host_of(n), None, contact_of(n % CUSTOMERS), 0.6
    n = rng.randrange(CUSTOMERS)  # someone new
    return f"{VISITOR_PREFIX}{rng.getrandbits(96):024x}", host_of(rng.randrange(10)), None, contact_of(n), 0.6


def _browser(visitor: str) -> tuple[str, int]:
    """A browser's User-Agent and its clock's error (ms): most are right, some are minutes off."""
    rng = random.Random(f"dci-demo/browser/{visitor}")
    agent = rng.choices([a for a, _ in AGENTS], [w for _, w in AGENTS])[0]
    return agent, (rng.choice((-1, 1)) * rng.randint(5_000, 600_000) if rng.random() < 0.08 else 0)


def day_sessions(day: date, hosts: tuple[str, ...], weekday_sessions: int = WEEKDAY_SESSIONS,
                 edited_ms: int | None = None) -> Iterator[Session]:
    """A day's sessions, each from its own seeded generator (the same day always gives the same ones),
    and the customers' follow-up visits days later that they bring (a second case, sometimes)."""
    rng = random.Random(f"dci-demo/{day}")
    share = (1.0, 1.0, 1.0, 1.0, 0.92, 0.42, 0.36)[day.weekday()]
    outage = day.toordinal() // 10 % 3 == 2  # ten days in thirty: a VPN outage, and its searches
    midnight = ms_of(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
    for index in range(round(weekday_sessions * share * rng.uniform(0.88, 1.12))):
        key = f"{day}/{index}"
        srng = random.Random(f"dci-demo/{key}")
        visitor, host, contact, signs_in_as, eager = _who(srng, hosts)
        hour = srng.choices(range(24), HOURS)[0]
        agent, skew = _browser(visitor)
        s = Session(key, visitor, host, agent, contact, contact is not None,
                    midnight + hour * HOUR_MS + srng.randrange(HOUR_MS), skew, edited_ms=edited_ms)
        _walk(srng, s, signs_in_as, outage, eager)
        yield s
        if s.ticket and srng.random() < 0.22:  # back some days later, signed in, with another problem
            later = Session(f"{key}/later", visitor, host, agent, s.contact, True,
                            s.start_ms + srng.randint(1, 6) * DAY_MS + srng.randint(-3 * HOUR_MS, 3 * HOUR_MS), skew,
                            edited_ms=edited_ms)
            _walk(srng, later, s.contact or signs_in_as, outage, 3.0)
            yield later


EDITED_DAYS_AGO = 15  # halfway through the 30 days `make demo` seeds


def edited_at(now_ms: int) -> int:
    """When CHANGED_TERM's answer gets it as a keyword: noon, EDITED_DAYS_AGO days before `now_ms`'s
    day (tied to now, not to the range asked for: a day's sessions are the same whatever the range)."""
    day = moment(now_ms).date() - timedelta(days=EDITED_DAYS_AGO)
    return ms_of(datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc))


def plan(hosts: tuple[str, ...], first: date, last: date, now_ms: int,
         weekday_sessions: int = WEEKDAY_SESSIONS) -> list[tuple[list[Session], list[Session]]]:
    """Each day of `first`..`last`: its sessions, and the follow-up visits they bring, that ended a
    minute before `now_ms` (on a day up to `last`)."""
    def ended(s: Session) -> bool:
        return s.end_ms + 1000 <= now_ms - MINUTE_MS and day_of(s.start_ms) <= last.isoformat()

    days = []
    edited = edited_at(now_ms)
    for offset in range((last - first).days + 1):
        sessions = [s for s in day_sessions(first + timedelta(days=offset), hosts, weekday_sessions, edited)
                    if ended(s)]
        days.append(([s for s in sessions if not s.key.endswith("/later")],
                     [s for s in sessions if s.key.endswith("/later")]))
    return days


def messages(s: Session, settings: Settings) -> Iterator[bytes]:
    """The `portal-events` messages collect writes for a session: one batch for its pages before the
    visitor signed in and one for those after (at most MAX_EVENTS each), each arriving a second
    after its last event, as a beacon's outbox sends what it holds."""
    batch: list[dict[str, Any]] = []
    for n, page in enumerate(s.pages):
        view = {"type": "page_view", "title": page.title, **({"referrer": page.referrer} if page.referrer else {})}
        depth = random.Random(f"{s.key}/{n}").triangular(0, 100, 70 if "article" in page.path else 30)
        left = {"type": "engagement", "engaged_ms": int(page.dwell_ms * 0.9), "scroll": min(100, int(depth))}
        events = [{"id": str(uuid.uuid5(DEMO_NAMESPACE, f"{s.key}/{n}/{k}")), "ts": page.start_ms + at,
                   "url": s.url(page.path), **fields}
                  for k, (at, fields) in enumerate([(0, view), *page.events, (page.dwell_ms, left)])]
        if batch and (len(batch) + len(events) > MAX_EVENTS or page.signed_in != s.pages[n - 1].signed_in):
            yield _message(s, settings, batch, s.pages[n - 1].signed_in)
            batch = []
        batch += events
    if batch:
        yield _message(s, settings, batch, s.pages[-1].signed_in)


def _message(s: Session, settings: Settings, events: list[dict[str, Any]], signed_in: bool) -> bytes:
    """The message collect writes for these events (times true, in ms) from this session's browser."""
    received_ms = events[-1]["ts"] + 1000
    received = moment(received_ms)
    sent = [{**event, "ts": iso_of(event["ts"] - s.skew_ms)} for event in events]  # as the browser's clock says
    body = {"v": 1, "site": s.host, "visitor": s.visitor, "session": str(uuid.uuid5(DEMO_NAMESPACE, s.key)),
            "sent_at": iso_of(received_ms - 150 - s.skew_ms), "events": sent}
    batch, checked, rejected = collect.parse({"content-type": "application/json"}, json.dumps(body).encode(),
                                             settings, received)
    assert not rejected, rejected
    message = collect.enrich(batch, checked, received, s.agent, s.contact if signed_in else None)
    assert message is not None
    return message.encode()
