"""``GET /api/v1/events``: the feed, oldest first from a cursor, ``bridge.test`` left out."""

import json
from datetime import UTC, datetime

import pytest

from app.db import db
from app.models import Event, new_id
from tests.watchtools import assert_problem, watch_body

EVENTS = "/api/v1/events"
WATCHES = "/api/v1/watches"


@pytest.fixture
def watches(client, auth_headers):
    """Two registered watch ids."""
    return [
        client.post(WATCHES, json=watch_body(asset_id=a), headers=auth_headers).get_json()["id"]
        for a in ("asset-a", "asset-b")
    ]


def add_events(app, specs):
    """Insert events ``(watch_id, type)`` in order, as the worker's outbox would; returns their ids."""
    ids = []
    with app.app_context():
        for n, (watch_id, kind) in enumerate(specs):
            event_id = new_id("evt")
            body = {
                "id": event_id,
                "type": kind,
                "timestamp": "2026-11-25T12:00:00Z",
                "data": {"watch": {"id": watch_id, "labels": {}}, "n": n},
            }
            db.session.add(
                Event(
                    id=event_id,
                    watch_id=watch_id,
                    type=kind,
                    dedupe_key=event_id,  # one event per observed change
                    body=json.dumps(body),
                    created_at=datetime(2026, 11, 25, 12, 0, n, tzinfo=UTC),
                )
            )
            ids.append(event_id)
        db.session.commit()
    return ids


def feed(client, headers, **query):
    response = client.get(EVENTS, query_string=query, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def test_an_empty_feed(client, auth_headers):
    assert feed(client, auth_headers) == {"items": [], "next_cursor": None}


def test_events_come_oldest_first_exactly_as_sent(app, client, auth_headers, watches):
    a, b = watches
    ids = add_events(
        app, [(a, "analysis.status_changed"), (b, "watch.expired"), (a, "watch.error")]
    )
    page = feed(client, auth_headers)
    assert [item["id"] for item in page["items"]] == ids
    first = page["items"][0]
    assert first["type"] == "analysis.status_changed"
    assert first["watch_id"] == a
    assert first["timestamp"] == "2026-11-25T12:00:00Z"
    assert first["data"] == {"watch": {"id": a, "labels": {}}, "n": 0}
    assert isinstance(first["cursor"], str)
    assert page["next_cursor"] == page["items"][-1]["cursor"]


def test_bridge_test_events_are_not_in_the_feed(app, client, auth_headers, watches):
    a, _ = watches
    ids = add_events(
        app, [(a, "bridge.test"), (a, "analysis.completed"), (a, "bridge.test"), (a, "watch.error")]
    )
    page = feed(client, auth_headers)
    assert [item["id"] for item in page["items"]] == [ids[1], ids[3]]
    assert {item["type"] for item in page["items"]} == {"analysis.completed", "watch.error"}


def test_after_and_limit_walk_the_feed_without_gaps(app, client, auth_headers, watches):
    a, b = watches
    ids = add_events(app, [(a if n % 2 else b, "analysis.status_changed") for n in range(7)])
    seen, cursor = [], None
    for _ in range(4):
        query = {"limit": 3} if cursor is None else {"limit": 3, "after": cursor}
        page = feed(client, auth_headers, **query)
        assert len(page["items"]) <= 3
        seen += [item["id"] for item in page["items"]]
        if page["items"]:
            assert page["next_cursor"] == page["items"][-1]["cursor"]
        cursor = page["next_cursor"]
    assert seen == ids


def test_a_consumer_can_tail_the_feed(app, client, auth_headers, watches):
    a, _ = watches
    add_events(app, [(a, "analysis.status_changed")])
    page = feed(client, auth_headers)
    cursor = page["next_cursor"]
    assert cursor is not None
    empty = feed(client, auth_headers, after=cursor)
    assert empty["items"] == []
    assert empty["next_cursor"] == cursor  # nothing new: keep the same place
    (later,) = add_events(app, [(a, "analysis.completed")])
    tail = feed(client, auth_headers, after=cursor)
    assert [item["id"] for item in tail["items"]] == [later]


def test_the_cursor_skips_bridge_test_events_too(app, client, auth_headers, watches):
    a, _ = watches
    ids = add_events(app, [(a, "analysis.status_changed"), (a, "bridge.test"), (a, "watch.error")])
    first = feed(client, auth_headers, limit=1)
    rest = feed(client, auth_headers, after=first["next_cursor"])
    assert [item["id"] for item in rest["items"]] == [ids[2]]


def test_watch_id_filters_the_feed(app, client, auth_headers, watches):
    a, b = watches
    ids = add_events(app, [(a, "analysis.status_changed"), (b, "watch.error"), (a, "watch.error")])
    assert [i["id"] for i in feed(client, auth_headers, watch_id=a)["items"]] == [ids[0], ids[2]]
    assert [i["id"] for i in feed(client, auth_headers, watch_id=b)["items"]] == [ids[1]]
    assert feed(client, auth_headers, watch_id="wch_01JD3Q00000000000000000000")["items"] == []
    after = feed(client, auth_headers, watch_id=a, limit=1)["next_cursor"]
    rest = feed(client, auth_headers, watch_id=a, after=after)
    assert [i["id"] for i in rest["items"]] == [ids[2]]


def test_limits_from_1_to_500(app, client, auth_headers, watches):
    a, _ = watches
    add_events(app, [(a, "analysis.status_changed")] * 3)
    assert len(feed(client, auth_headers, limit=1)["items"]) == 1
    assert len(feed(client, auth_headers, limit=500)["items"]) == 3
    assert len(feed(client, auth_headers)["items"]) == 3


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "x"},
        {"limit": "-3"},
        {"after": "evt_01JD3Q00000000000000000000"},
        {"after": "-1"},
        {"after": "1.5"},
    ],
    ids=repr,
)
def test_bad_feed_parameters_are_400(client, auth_headers, query):
    assert_problem(client.get(EVENTS, query_string=query, headers=auth_headers), 400)


def test_the_feed_needs_a_token(client):
    response = client.get(EVENTS)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
