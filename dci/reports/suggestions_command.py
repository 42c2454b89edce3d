"""`python -m dci suggestions list | done ID | apply ID --yes`: the suggestions of the insights page
(issue 29) from a terminal, and the one change they propose.

`list` prints the suggestions of the range (default the last 30 days) as the page gives them;
`done ID` marks one done now (its before/after starts today, as when its article changes);
`apply ID --yes` adds the term to the keywords of the article's latest version in Dataverse (with
the credentials the command runs with: DATAVERSE_TOKEN, else the signed-in user's), whatever the
suggestion's status, and marks it done. Without `--yes` it says what it would do.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, TextIO

from dci.clock import ms_of
from dci.reports.suggestions import latest_versions, range_suggestions

if TYPE_CHECKING:
    from dci.dataverse.client import Dataverse
    from dci.storage import Stores

DEFAULT_DAYS = 30
MAX_KEYWORDS = 4000  # knowledgearticle.keywords' MaxLength


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the suggestions of the range, as the insights page shows them")
    listing.add_argument("--from", dest="first", help="first day (default: 30 days before --to)")
    listing.add_argument("--to", dest="last", help="last day (default: today, UTC)")
    done = actions.add_parser("done", help="mark a suggestion done now: its before/after starts today")
    done.add_argument("id")
    apply = actions.add_parser("apply", help="add the term to the article's keywords in Dataverse, and mark it done")
    apply.add_argument("id")
    apply.add_argument("--yes", action="store_true", help="do it (without: say what would be done)")


def run(args: argparse.Namespace, stores: Stores, dataverse: Dataverse | None, out: TextIO,
        now: datetime | None = None) -> int:
    """0 when done, 1 when it could not be, 2 for an unknown id or a bad range."""
    now = now or datetime.now(timezone.utc)
    assert stores.answers is not None
    if args.action == "list":
        try:
            last = date.fromisoformat(args.last) if args.last else now.date()
            first = date.fromisoformat(args.first) if args.first else last - timedelta(days=DEFAULT_DAYS - 1)
        except ValueError as error:
            print(f"error: --from and --to are days like 2026-11-30 ({error})", file=out)
            return 2
        if first > last:
            print("error: --from is after --to", file=out)
            return 2
        found = range_suggestions(stores.insights, stores.answers, first.isoformat(), last.isoformat(),
                                  ms_of(now))["suggestions"]
        print(f"{len(found)} suggestion{'s' if len(found) != 1 else ''} from {first} to {last}", file=out)
        if found:
            print(f"{'id':<12}  {'status':<9}  {'cases':>5}  {'answered':>8}  {'share':>5}  {'searches':>8}  "
                  f"{'zero':>5}  article / term", file=out)
        for s in found:
            print(f"{s['id']:<12}  {s['status']:<9}  {s['cases']:>5}  {s['answered']:>8}  {_percent(s['share']):>5}  "
                  f"{s['searches']:>8}  {_percent(s['zero_result_rate']):>5}  {s['article']} / {s['term']}", file=out)
            print(f"{'':<12}  {s['sentence']}", file=out)
        return 0
    state = stores.answers.suggestion_states().get(args.id)
    if state is None:
        print(f"error: no suggestion {args.id} (python -m dci suggestions list shows their ids)", file=out)
        return 2
    if args.action == "done":
        stores.answers.mark_done(args.id, ms_of(now))
        print(f"marked done: {state['term']!r} → {state['article']}", file=out)
        return 0
    return _apply(args, stores, dataverse, state, now, out)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{round(value * 100)} %"


def has_keyword(keywords: str, term: str) -> bool:
    """Whether an article's keywords (separated by commas or semicolons) hold `term` already."""
    listed = {k.strip().casefold() for k in keywords.replace(";", ",").split(",")}
    return term.strip().casefold() in listed or ("," in term or ";" in term) and term.casefold() in keywords.casefold()


def _apply(args: argparse.Namespace, stores: Stores, dataverse: Dataverse | None, state: dict, now: datetime,
           out: TextIO) -> int:
    from dci.dataverse.client import DataverseError  # (only this path loads requests)

    assert stores.answers is not None
    _, latest = latest_versions(stores.answers.versions())
    article = latest.get(str(state["article"]).upper())
    if dataverse is None or article is None:
        print("error: no Dataverse (DATAVERSE_URL), or no published version of the article is known here yet",
              file=out)
        return 1
    try:  # (as Dataverse has them now: an author may have changed them since the last poll)
        current = dataverse.articles([article["RowKey"]]).get(article["RowKey"])
    except DataverseError as error:
        print(f"error: {error}", file=out)
        return 1
    keywords = current.keywords if current is not None else str(article.get("keywords") or "")
    term = str(state["term"])
    if has_keyword(keywords, term):
        print(f"{state['article']} already has the keyword {term!r}", file=out)
        return 0
    new = f"{keywords.rstrip().rstrip(',;').rstrip()}, {term}" if keywords.strip() else term
    if len(new) > MAX_KEYWORDS:
        print(f"error: {state['article']}'s keywords would be {len(new)} characters, more than the "
              f"{MAX_KEYWORDS} Dataverse holds; shorten them in Dynamics first", file=out)
        return 1
    if not args.yes:
        print(f"would set the keywords of {state['article']} to: {new}  (again with --yes to do it)", file=out)
        return 0
    try:
        dataverse.set_keywords(article["RowKey"], new)
    except DataverseError as error:
        hint = " (the role lacks prvWriteKnowledgeArticle: python -m dci dataverse setup --allow-keyword-edits)" \
            if error.status == 403 else ""
        print(f"error: {error}{hint}", file=out)
        return 1
    stores.answers.mark_done(args.id, ms_of(now))
    stores.answers.put_versions(dataverse.articles([article["RowKey"]]).values())  # (its keywords and change, now)
    print(f"{state['article']}: keywords now {new}; the suggestion is marked done", file=out)
    return 0
