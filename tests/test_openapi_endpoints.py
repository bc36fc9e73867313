"""``/api/v1/endpoints`` answers exactly what ``/openapi.json`` says: every success, and the
conflicts (``409``) that need an endpoint in a given state (the other errors are in
``test_openapi.py``'s tables)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.test_openapi import (
    ADD_ENDPOINT,
    CHANGE_ENDPOINT,
    DELETE_ENDPOINT,
    ENDPOINTS,
    LIST_ENDPOINTS,
    REPLAY_ENDPOINT,
    ROTATE_SECRET,
    SHOW_ENDPOINT,
    WATCHES,
    Spec,
)

HOOK = "https://hooks.example.test/mi"
SLACK_HOOK = "https://hooks.example.test/services/T000/B000/XXXX"


@pytest.fixture
def spec(client) -> Spec:
    return Spec(client.get("/openapi.json").get_json())


def _dead_delivery(app, watch: dict[str, Any], endpoint_id: str) -> str:
    """Write what a worker leaves when an endpoint's delivery runs out of attempts; its id."""
    from app.db import db
    from app.models import Delivery, Event, new_id

    event_id = new_id("evt")
    body = {"id": event_id, "type": "watch.expired", "timestamp": "2026-11-25T12:00:00.000Z"}
    with app.app_context():
        event = Event(id=event_id, watch_id=watch["id"], type=body["type"], body=json.dumps(body))
        event.dedupe_key = "expired"
        delivery = Delivery(event_id=event_id, target_id=watch["targets"][0]["id"])
        delivery.watch_id, delivery.lane, delivery.state = watch["id"], endpoint_id, "dead"
        db.session.add_all([event, delivery])
        db.session.commit()
        return delivery.id


def test_every_endpoint_operation_answers_as_documented(app, client, auth_headers, spec):
    created = client.post(
        ENDPOINTS, json={"name": "cms", "type": "webhook", "url": HOOK}, headers=auth_headers
    )
    endpoint = spec.check(created, *ADD_ENDPOINT)
    assert created.status_code == 201
    assert endpoint["secret"].startswith("whsec_")
    assert created.headers["Location"] == f"{ENDPOINTS}/{endpoint['id']}"
    slack = {"name": "chat", "type": "slack_webhook", "url": SLACK_HOOK, "rate_limit_per_second": 2}
    masked = spec.check(client.post(ENDPOINTS, json=slack, headers=auth_headers), *ADD_ENDPOINT)
    assert masked["url"].endswith("/****")
    assert "secret" not in masked

    listed = spec.check(client.get(ENDPOINTS, headers=auth_headers), *LIST_ENDPOINTS)
    assert [item["name"] for item in listed["items"]] == ["chat", "cms"]
    one = f"{ENDPOINTS}/cms"
    disabled = client.patch(one, json={"disabled": True}, headers=auth_headers)
    assert spec.check(disabled, *CHANGE_ENDPOINT)["disabled_reason"] == "disabled by an operator"
    rotated = client.post(
        f"{one}/rotate-secret", json={"overlap_seconds": 60}, headers=auth_headers
    )
    assert spec.check(rotated, *ROTATE_SECRET)["previous_secret_until"] is not None
    bare = client.post(f"{ENDPOINTS}/{endpoint['id']}/rotate-secret", headers=auth_headers)
    assert spec.check(bare, *ROTATE_SECRET)["secret"] != rotated.json["secret"]

    watch = client.post(
        WATCHES,
        json={
            "workspace": "w",
            "project_id": "1",
            "asset_id": "2",
            "targets": [{"endpoint": "cms"}],
        },
        headers=auth_headers,
    ).json
    _dead_delivery(app, watch, endpoint["id"])
    shown = spec.check(client.get(one, headers=auth_headers), *SHOW_ENDPOINT)
    assert (shown["dead_deliveries"], shown["watching_watches"]) == (1, 1)
    since = {"state": "dead", "since": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00+09:00"}
    replayed = client.post(f"{one}/replay", json=since, headers=auth_headers)
    assert replayed.status_code == 202
    assert spec.check(replayed, *REPLAY_ENDPOINT) == {"queued": 1}
    again = client.post(f"{one}/replay", headers=auth_headers)  # no body: dead ones, none left
    assert spec.check(again, *REPLAY_ENDPOINT) == {"queued": 0}
    held = spec.check(client.get(one, headers=auth_headers), *SHOW_ENDPOINT)
    assert (held["pending_deliveries"], held["held_deliveries"]) == (1, 1)

    client.delete(f"{WATCHES}/{watch['id']}", headers=auth_headers)
    deleted = client.delete(one, headers=auth_headers)
    documented = spec.operations()[DELETE_ENDPOINT]["responses"][str(deleted.status_code)]
    assert deleted.status_code == 204
    assert deleted.data == b""
    assert "content" not in documented


def test_endpoint_conflicts_are_the_documented_409s(client, auth_headers, spec):
    body = {"name": "chat", "type": "slack", "channel": "C0123456789"}
    assert client.post(ENDPOINTS, json=body, headers=auth_headers).status_code == 201
    taken = client.post(ENDPOINTS, json=body, headers=auth_headers)
    assert taken.status_code == 409
    assert "exists already" in spec.check(taken, *ADD_ENDPOINT)["detail"]
    secretless = client.post(f"{ENDPOINTS}/chat/rotate-secret", headers=auth_headers)
    assert secretless.status_code == 409
    assert "no signing secret" in spec.check(secretless, *ROTATE_SECRET)["detail"]
    registration = {"workspace": "w", "project_id": "1", "asset_id": "2"}
    registration["targets"] = [{"endpoint": "chat"}]
    assert client.post(WATCHES, json=registration, headers=auth_headers).status_code == 201
    in_use = client.delete(f"{ENDPOINTS}/chat", headers=auth_headers)
    assert in_use.status_code == 409
    assert "1 watching watch uses" in spec.check(in_use, *DELETE_ENDPOINT)["detail"]
