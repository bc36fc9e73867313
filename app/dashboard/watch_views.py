"""The watch list (``/``) and one watch (``/watches/<id>``), with the fragments their script fetches.

Each page and its fragment render the same partial templates, so the script can swap the regions
(elements with ``data-region`` and an id) in place. A fragment answers ``X-Live: off`` once nothing
more can change, and the script stops asking.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, render_template, request, url_for

from app.dashboard import dashboard
from app.dashboard.listing import WatchQuery, list_watches
from app.dashboard.stages import stage_steps, timeline_items
from app.dashboard.timeline import detection, events_with_deliveries, still_live
from app.db import db
from app.resources.targets import target_resource
from app.resources.watches import last_error
from app.services import services
from app.vocabulary import WATCH_STATES, PollFailureKind
from app.watches.queries import find_watch
from app.watches.workflows import stage_of

LIVE_HEADER = "X-Live"


def _list_context() -> dict[str, Any]:
    query = WatchQuery.from_args(request.args)
    page = list_watches(db.session(), query)
    return {"query": query, "listing": page, "states": WATCH_STATES}


@dashboard.get("/")
def watches() -> str:
    """Watches, newest first: state tabs with counts, search, pages; updates itself."""
    context = _list_context()
    live_src = url_for("dashboard.watches_live", **context["query"].args())
    return render_template("dashboard/watches.html", live_src=live_src, **context)


@dashboard.get("/live/watches")
def watches_live() -> Response:
    """The list's regions (health, counts, table) for the page's script; same arguments as ``/``."""
    html = render_template("dashboard/watches_live.html", **_list_context())
    return Response(html, mimetype="text/html")


#: What each kind of failed poll means for the watch, and what (if anything) to do.
TROUBLE_ADVICE = {
    PollFailureKind.TRANSIENT: "The bridge keeps polling, more slowly, until the upstream answers.",
    PollFailureKind.RATE_LIMITED: "The upstream asked the bridge to slow down: all polling pauses.",
    PollFailureKind.AUTH: "Check NCP_ACCESS_KEY, NCP_SECRET_KEY and the clock; polls go on slowly.",
    PollFailureKind.PERMANENT: "The upstream refused this asset: the watch ended.",
}


def _watch_context(watch_id: str) -> dict[str, Any]:
    watch = find_watch(db.session(), watch_id)
    if watch is None:
        abort(404)
    now = services().clock()
    events = events_with_deliveries(db.session(), watch)
    workflow = watch.workflow
    return {
        "watch": watch,
        "now": now,
        "stage": stage_of(watch),
        "stage_steps": stage_steps(watch, workflow),
        "workflow": workflow,
        "timeline": timeline_items(watch, workflow, [item.event for item in events], now),
        "detection": detection(watch, now),
        "events": events,
        "targets": {target.id: target_resource(target).as_json() for target in watch.targets},
        "live": still_live(watch, events),
        "public_url": services().settings.bridge_public_url,
        "last_error": last_error(watch),
        "trouble_advice": TROUBLE_ADVICE,
    }


@dashboard.get("/watches/<watch_id>")
def watch(watch_id: str) -> str:
    """One watch: coordinates, state and stage, its workflow, timeline, detection, targets, events
    and deliveries."""
    context = _watch_context(watch_id)
    live_src = url_for("dashboard.watch_live", watch_id=watch_id) if context["live"] else None
    return render_template("dashboard/watch.html", live_src=live_src, **context)


@dashboard.get("/watches/<watch_id>/live")
def watch_live(watch_id: str) -> Response:
    """The watch page's regions for its script; ``X-Live: off`` once the watch and its
    deliveries have ended."""
    context = _watch_context(watch_id)
    response = Response(
        render_template("dashboard/watch_live.html", **context), mimetype="text/html"
    )
    response.headers[LIVE_HEADER] = "on" if context["live"] else "off"
    return response
