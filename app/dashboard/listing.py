"""The watch list: state filter, search by asset (or the object an import brings), workspace or
label, counts per state, pages.

Newest first (ids are ULIDs, so id order is registration order, as in the API). Counts follow the
search but not the state filter, so they tell how many watches each state tab would show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.models import USER_WATCHES, Delivery, Watch, Workflow
from app.resources.watches import LastError, last_error
from app.vocabulary import WATCH_STATES, DeliveryState

PAGE_SIZE = 25
MAX_SEARCH_CHARACTERS = 200
_LIKE_ESCAPE = "\\"


@dataclass(frozen=True)
class WatchQuery:
    """What the user asked the list for: a state (None for all), a search text and a page."""

    state: str | None = None
    search: str = ""
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> WatchQuery:
        """Read ``state``, ``q`` and ``page``; anything unusable falls back to its default."""
        state = args.get("state") or None
        page_text = args.get("page", "1")
        page = (
            int(page_text)
            if page_text.isascii() and page_text.isdigit() and 0 < int(page_text) < 10**6
            else 1
        )
        search = " ".join(args.get("q", "").split())[:MAX_SEARCH_CHARACTERS]
        return cls(state if state in WATCH_STATES else None, search, page)

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query-string arguments for this query with ``changes`` applied (defaults left out)."""
        values = {"state": self.state, "q": self.search, "page": self.page, **changes}
        return {key: value for key, value in values.items() if value not in (None, "", 1)}


@dataclass(frozen=True)
class WatchPage:
    """One page of the list, the per-state counts and where the page sits among the others.

    ``poll_errors`` holds the watches on the page whose latest poll failed (their ``last_error``),
    ``dead_deliveries`` how many of each one's deliveries are dead: what the list marks.
    """

    watches: list[Watch]
    counts: dict[str, int]
    page: int
    pages: int
    poll_errors: dict[str, LastError] = field(default_factory=dict)
    dead_deliveries: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Watches matching the search, in every state."""
        return sum(self.counts.values())

    @property
    def has_previous(self) -> bool:
        """A newer page exists."""
        return self.page > 1

    @property
    def has_next(self) -> bool:
        """An older page exists."""
        return self.page < self.pages


def list_watches(session: Session, query: WatchQuery, page_size: int = PAGE_SIZE) -> WatchPage:
    """The page of watches ``query`` asks for (the last page when it asks beyond the end)."""
    matching = search_clause(session, query.search)
    count_statement = select(Watch.state, func.count()).group_by(Watch.state)
    if matching is not None:
        count_statement = count_statement.where(matching)
    found: dict[str, int] = dict(session.execute(count_statement).all())
    counts: dict[str, int] = {state: found.get(state, 0) for state in WATCH_STATES}
    listed = counts[query.state] if query.state else sum(counts.values())
    pages = max(1, -(-listed // page_size))
    page = min(query.page, pages)
    statement = select(Watch).where(USER_WATCHES).order_by(Watch.id.desc())
    if matching is not None:
        statement = statement.where(matching)
    if query.state:
        statement = statement.where(Watch.state == query.state)
    statement = statement.offset((page - 1) * page_size).limit(page_size)
    watches = list(
        session.scalars(statement.options(selectinload(Watch.asset), selectinload(Watch.workflow)))
    )
    poll_errors = {w.id: error for w in watches if (error := last_error(w)) is not None}
    return WatchPage(watches, counts, page, pages, poll_errors, _dead_deliveries(session, watches))


def _dead_deliveries(session: Session, watches: list[Watch]) -> dict[str, int]:
    """How many dead deliveries each of ``watches`` has (watches without any left out)."""
    if not watches:
        return {}
    statement = (
        select(Delivery.watch_id, func.count())
        .where(Delivery.watch_id.in_([w.id for w in watches]), Delivery.state == DeliveryState.DEAD)
        .group_by(Delivery.watch_id)
    )
    return dict(session.execute(statement).all())


def search_clause(session: Session, search: str) -> ColumnElement[bool] | None:
    """Watches whose workspace, project, asset id or imported object's key contains ``search``,
    whose id starts with it, or one of whose label keys or values contains it (case-insensitive);
    ``key=value`` matches that label's value. None: all. (Ids match by prefix only: a fragment of a
    random id is noise.)"""
    if not search:
        return None
    key, equals, value = search.partition("=")
    if equals and key.strip():
        return _label_exists(session, key.strip(), _contains(value.strip()))
    pattern = _contains(search)
    columns = (Watch.workspace, Watch.project_id, Watch.asset_id)
    return or_(
        Watch.id.ilike(pattern.removeprefix("%"), escape=_LIKE_ESCAPE),
        *(column.ilike(pattern, escape=_LIKE_ESCAPE) for column in columns),
        _label_exists(session, None, pattern),
        exists().where(
            Workflow.watch_id == Watch.id,
            Workflow.import_key.ilike(pattern, escape=_LIKE_ESCAPE),
        ),
    )


def _contains(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own ``%`` and ``_`` taken literally."""
    escaped = text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2).replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _label_exists(session: Session, key: str | None, pattern: str) -> ColumnElement[bool]:
    """EXISTS a label of the watch with key ``key`` (or any key matching ``pattern`` when None)
    whose value matches ``pattern``. Labels are a JSON object: SQLite and PostgreSQL each have
    their own function to read one as rows of (key, value)."""
    dialect = session.get_bind().dialect.name
    each_function = func.json_each_text if dialect == "postgresql" else func.json_each
    pairs = each_function(Watch.labels).table_valued("key", "value").alias("label")
    value_matches = pairs.c.value.ilike(pattern, escape=_LIKE_ESCAPE)
    condition: ColumnElement[bool]
    if key is not None:
        condition = (pairs.c.key == key) & value_matches
    else:
        condition = or_(pairs.c.key.ilike(pattern, escape=_LIKE_ESCAPE), value_matches)
    return exists().select_from(pairs).where(condition)
