"""Query parameters are judged before any query: ``400`` naming the parameter for a cursor outside
64-bit range, a negative or non-ASCII number, or a filter no id can match; on SQLite and
PostgreSQL alike. And the growing tables' keys go past 2^31 through the API on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.dashboardtools import sign_in
from tests.watchtools import assert_problem, watch_body

WATCHES, EVENTS, DELIVERIES = "/api/v1/watches", "/api/v1/events", "/api/v1/deliveries"
#: Not a number this API returns: out of 64-bit range, negative, fractional, non-ASCII digits...
BAD_NUMBERS = [
    "9223372036854775808",
    "1000000000000000000",
    "99999999999999999999999",
    "-1",
    "+1",
    "1e3",
    "0x10",
    "1.0",
    " 1",
    "1\n",
    "²",
    "\u0661",  # ARABIC-INDIC DIGIT ONE: str.isdigit says yes
    "x",
    "\x00",
    "1\x00",
]
#: Filters no stored id or coordinate can equal (PostgreSQL refuses the NUL ones).
BAD_FILTERS = ["\x00", "wch_\x00", "a b", "é", "x" * 129, "a\n"]
FILTERS = [
    (WATCHES, "workspace"),
    (WATCHES, "project_id"),
    (EVENTS, "watch_id"),
    (DELIVERIES, "watch_id"),
    (DELIVERIES, "target_id"),
]


def test_a_cursor_beyond_every_event_is_an_empty_page(door_client, auth_headers):
    response = door_client.get(f"{EVENTS}?after=999999999999999999", headers=auth_headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"items": [], "next_cursor": "999999999999999999"}
    response = door_client.get(f"{DELIVERIES}?cursor=999999999999999999", headers=auth_headers)
    assert response.get_json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("path", "name"), [(EVENTS, "after"), (EVENTS, "limit"), (DELIVERIES, "cursor"),
                       (DELIVERIES, "limit"), (WATCHES, "limit")],
)  # fmt: skip
def test_numbers_this_api_never_returns_are_400_naming_the_parameter(
    door_client, auth_headers, path, name
):
    for value in BAD_NUMBERS:
        response = door_client.get(path, query_string={name: value}, headers=auth_headers)
        assert name in assert_problem(response, 400)["detail"], ascii(value)


def test_a_watch_cursor_is_judged_whole(door_client, auth_headers):
    cursor = "wch_01JD3Q00000000000000000000"
    for value in (f"{cursor}\n", f"{cursor}x", f" {cursor}", "wch_\x00", cursor.lower()):
        response = door_client.get(WATCHES, query_string={"cursor": value}, headers=auth_headers)
        assert "cursor" in assert_problem(response, 400)["detail"], ascii(value)
    response = door_client.get(WATCHES, query_string={"cursor": cursor}, headers=auth_headers)
    assert response.get_json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(("path", "name"), FILTERS)
def test_filters_no_id_can_match_are_400_naming_the_parameter(
    door_client, auth_headers, path, name
):
    for value in BAD_FILTERS:
        response = door_client.get(path, query_string={name: value}, headers=auth_headers)
        assert name in assert_problem(response, 400)["detail"], ascii(value)
    for value in ("", "wch_nothing", "..", "my-workspace.v2"):
        response = door_client.get(path, query_string={name: value}, headers=auth_headers)
        assert response.status_code == 200, ascii(value)


def test_a_filter_still_filters(door_client, auth_headers):
    door_client.post(WATCHES, json=watch_body(workspace="one"), headers=auth_headers)
    door_client.post(WATCHES, json=watch_body(workspace="two"), headers=auth_headers)
    items = door_client.get(f"{WATCHES}?workspace=two", headers=auth_headers).get_json()["items"]
    assert [item["workspace"] for item in items] == ["two"]


def test_a_nul_in_any_query_argument_is_400(door_client, auth_headers):
    for query in ({"state": "\x00"}, {"unknown": "\x00"}, {"a\x00": "1"}):
        assert_problem(door_client.get(WATCHES, query_string=query, headers=auth_headers), 400)
    # the token is judged first
    assert door_client.get(WATCHES, query_string={"state": "\x00"}).status_code == 401


def test_the_dashboard_refuses_a_nul_in_its_query_arguments(door_app):
    client = door_app.test_client()
    sign_in(client)
    for url in ("/?q=%00", "/live/watches?q=a%00", "/deliveries?page=%00"):
        assert client.get(url).status_code == 400, url
    assert client.get("/?q=nothing").status_code == 200


# --- 64-bit keys -----------------------------------------------------------------------------------

BEYOND_32_BITS = 2**40


@pytest.mark.postgres
def test_keys_past_32_bits_are_written_and_served_on_postgres(pg_app, auth_headers):
    from sqlalchemy import text

    from app.db import db

    with pg_app.app_context():
        for table, column in [("assets", "pk"), ("status_history", "pk"), ("events", "seq"),
                              ("deliveries", "seq"), ("delivery_attempts", "pk")]:  # fmt: skip
            db.session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), :value)"),
                {"value": BEYOND_32_BITS},
            )
        db.session.commit()
    client = pg_app.test_client()
    watch = client.post(WATCHES, json=watch_body(), headers=auth_headers).get_json()
    seq = _record_delivery(pg_app, watch)
    assert seq > 2**31

    feed = client.get(f"{EVENTS}?after={BEYOND_32_BITS}", headers=auth_headers).get_json()
    assert [item["cursor"] for item in feed["items"]] == [str(seq)]
    shown = client.get(f"{WATCHES}/{watch['id']}", headers=auth_headers).get_json()
    assert [change["status"] for change in shown["history"]] == ["ANALYZE_COMPLETED"]
    assert shown["deliveries"][0]["attempts"][0]["status_code"] == 200
    page = client.get(f"{DELIVERIES}?cursor={seq + 1}", headers=auth_headers).get_json()
    assert [item["state"] for item in page["items"]] == ["succeeded"]


def _record_delivery(app, watch) -> int:
    """Write what a worker would (a status change, an event, its delivery, one attempt); returns
    the event's sequence number."""
    from app.db import db
    from app.models import Delivery, DeliveryAttempt, Event, StatusChange

    with app.app_context():
        change = StatusChange(watch_id=watch["id"], status="ANALYZE_COMPLETED", api="index")
        event = Event(watch_id=watch["id"], type="analysis.completed", body=json.dumps({}))
        event.dedupe_key = "ANALYZE_COMPLETED"
        db.session.add_all([change, event])
        db.session.flush()
        delivery = Delivery(event_id=event.id, target_id=watch["targets"][0]["id"])
        delivery.watch_id, delivery.state, delivery.attempt_count = watch["id"], "succeeded", 1
        db.session.add(delivery)
        db.session.flush()
        attempt = DeliveryAttempt(delivery_seq=delivery.seq, at=datetime.now(UTC), status_code=200)
        attempt.outcome, attempt.duration_ms = "succeeded", 12
        db.session.add(attempt)
        db.session.commit()
        assert min(change.pk, delivery.seq, attempt.pk) > BEYOND_32_BITS
        return event.seq
