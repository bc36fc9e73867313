"""The dashboard's pages through Flask's test client: list, search, pages, counts, one watch, escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from app.dashboard.listing import PAGE_SIZE, WatchQuery, list_watches
from app.db import db
from tests.dashboardtools import dead_delivery, seed_watch, sign_in

ROW = re.compile(r'<tr data-watch-id="(wch_[0-9A-Z]+)">')


def listed(client, path: str = "/live/watches", **args) -> list[str]:
    response = client.get(path, query_string=args)
    assert response.status_code == 200
    return ROW.findall(response.get_data(as_text=True))


def count_of(html: str, state: str) -> int:
    match = re.search(rf'data-state="{state}">\s*[^<]*<span class="tabs__count">(\d+)</span>', html)
    assert match, state
    return int(match.group(1))


@pytest.fixture
def signed_in(client):
    sign_in(client)
    return client


def test_watches_newest_first_with_counts_per_state(app, signed_in):
    ids = [seed_watch(app, f"a{n}") for n in range(3)]
    seed_watch(app, "done", state="completed")
    seed_watch(app, "broken", state="failed")
    html = signed_in.get("/").get_data(as_text=True)
    found = ROW.findall(html)
    assert found == sorted(found, reverse=True)
    assert set(ids) <= set(found)
    assert (count_of(html, "all"), count_of(html, "watching")) == (5, 3)
    assert (count_of(html, "completed"), count_of(html, "failed")) == (1, 1)
    assert count_of(html, "expired") == 0
    assert 'data-live-src="/live/watches"' in html


def test_state_filter_keeps_counts_of_every_state(app, signed_in):
    seed_watch(app, "a1")
    done = seed_watch(app, "done", state="completed")
    assert listed(signed_in, state="completed") == [done]
    html = signed_in.get("/live/watches?state=completed").get_data(as_text=True)
    assert (count_of(html, "watching"), count_of(html, "completed")) == (1, 1)
    assert len(listed(signed_in, state="no-such-state")) == 2  # an unknown state lists all


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("5678", {"asset"}),
        ("NEWS", {"workspace"}),  # case-insensitive
        ("cms_id", {"label_key"}),
        ("ABC-12", {"label_key"}),  # a label value
        ("cms_id=abc", {"label_key"}),
        ("cms_id=zzz", set()),
        ("tier=gold", {"label_value"}),
        ("%", set()),  # LIKE wildcards are literal
        ("_i", {"label_key"}),  # "_" is literal too: "tier" and "kind" would match "?i"
        ("영상", {"korean"}),
    ],
)
def test_search_by_asset_workspace_and_labels(app, signed_in, search, expected):
    names = {
        "asset": seed_watch(app, "5678"),
        "workspace": seed_watch(app, "x1", workspace="newsroom"),
        "label_key": seed_watch(app, "x2", labels={"cms_id": "abc-123"}),
        "label_value": seed_watch(app, "x3", labels={"tier": "gold"}),
        "korean": seed_watch(app, "x4", labels={"kind": "영상 파일"}),
    }
    found = set(listed(signed_in, q=search))
    assert found == {names[name] for name in expected}


def test_pages_of_watches(app, signed_in):
    ids = {seed_watch(app, f"a{n}", labels={"batch": "one"}) for n in range(PAGE_SIZE + 5)}
    seed_watch(app, "other")
    first = listed(signed_in, q="batch=one")
    second = listed(signed_in, q="batch=one", page=2)
    assert (len(first), len(second)) == (PAGE_SIZE, 5)
    assert set(first) | set(second) == ids
    assert min(first) > max(second)  # newest first across pages
    assert listed(signed_in, q="batch=one", page=9) == second  # beyond the end: the last page
    html = signed_in.get("/", query_string={"q": "batch=one", "page": 2}).get_data(as_text=True)
    assert "Page 2 of 2" in html
    assert 'href="/?q=batch%3Done"' in html  # "newer" keeps the search, drops page 1
    assert 'id="page-older"' not in html


def test_list_watches_query_directly(app):
    seed_watch(app, "a1", state="expired")
    with app.app_context():
        page = list_watches(db.session, WatchQuery.from_args({"state": "expired", "page": "x"}))
    assert page.page == 1
    assert [w.asset_id for w in page.watches] == ["a1"]
    assert WatchQuery("failed", "abc", 1).args(page=3) == {"state": "failed", "q": "abc", "page": 3}


HOSTILE = {"html": "<script>alert(1)</script>", "template": "{{7*7}}", "quote": '"><img src=x>'}


def test_hostile_labels_and_texts_are_escaped_everywhere(app, signed_in):
    watch_id = seed_watch(app, "a1", labels=HOSTILE, message="<b>upstream</b> {{7*7}}")
    dead_delivery(app, watch_id, error="<script>boom()</script>")
    pages = [
        "/",
        "/live/watches",
        "/?q=<script>",
        f"/watches/{watch_id}",
        f"/watches/{watch_id}/live",
        "/deliveries",
    ]
    for path in pages:
        html = signed_in.get(path).get_data(as_text=True)
        assert "<script>" not in html.replace('<script src="/static/dashboard.js" defer>', "")
        assert "<img src=x>" not in html
        assert "<b>upstream" not in html
        assert "template=49" not in html  # never evaluated as a template
        if "template=" in html:
            assert "template={{7*7}}" in html
    detail = signed_in.get(f"/watches/{watch_id}").get_data(as_text=True)
    assert "html=&lt;script&gt;alert(1)&lt;/script&gt;" in detail
    assert "template={{7*7}}" in detail
    assert "&lt;b&gt;upstream&lt;/b&gt; {{7*7}}" in detail
    assert "&lt;script&gt;boom()&lt;/script&gt;" in detail


def test_one_watch_shows_targets_without_secrets_and_masks_slack_webhooks(app, signed_in):
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" + "bbbbbbbbbbbb"
    targets = [
        {"type": "webhook", "url": "https://hooks.example.test/in", "secret": secret},
        {"type": "slack", "channel": "C0123456789"},
        {"type": "slack_webhook", "url": "https://hooks.example.test/services/T0/B0/XXXXSECRET"},
    ]
    watch_id = seed_watch(app, "a1", targets=targets)
    html = signed_in.get(f"/watches/{watch_id}").get_data(as_text=True)
    assert "https://hooks.example.test/in" in html
    assert "C0123456789" in html
    assert "https://hooks.example.test/services/T0/B0/****" in html
    assert "XXXXSECRET" not in html
    assert secret not in html
    assert "whsec_" not in html


def test_an_unknown_watch_is_404(signed_in):
    assert signed_in.get("/watches/wch_nope").status_code == 404
    assert signed_in.get("/watches/wch_nope/live").status_code == 404


def test_the_live_fragment_stops_once_nothing_can_change(app, signed_in):
    watching = seed_watch(app, "a1")
    ended = seed_watch(app, "a2", state="completed")
    pending = seed_watch(app, "a3", state="completed")
    dead_delivery(app, pending, state="pending")
    assert signed_in.get(f"/watches/{watching}/live").headers["X-Live"] == "on"
    assert signed_in.get(f"/watches/{pending}/live").headers["X-Live"] == "on"
    assert signed_in.get(f"/watches/{ended}/live").headers["X-Live"] == "off"
    assert "data-live-src" not in signed_in.get(f"/watches/{ended}").get_data(as_text=True)
    fragment = signed_in.get(f"/watches/{watching}/live").get_data(as_text=True)
    regions = re.findall(r'<div id="(region-[a-z]+)" class="region" data-region', fragment)
    assert regions == ["region-health", "region-summary", "region-timeline", "region-targets",
                       "region-events"]  # fmt: skip


def test_detection_lag_of_an_ended_watch_and_freshness_of_a_watching_one(app, signed_in):
    ended = seed_watch(app, "a1", state="completed", detection_lag_seconds=2.5)
    html = signed_in.get(f"/watches/{ended}").get_data(as_text=True)
    assert re.search(r'data-field="detection-lag">2\.5 s', html)
    assert 'data-field="since-last-poll"' not in html
    watching = seed_watch(app, "a2", last_polled_at=datetime.now(UTC) - timedelta(seconds=3))
    html = signed_in.get(f"/watches/{watching}").get_data(as_text=True)
    assert re.search(r'data-field="since-last-poll">3\.\d s', html)
    assert 'data-field="detection-lag"' not in html


def test_search_by_watch_id_matches_its_start_only(app, signed_in):
    wanted = seed_watch(app, "id-search")
    seed_watch(app, "other")
    assert listed(signed_in, q=wanted) == [wanted]
    assert listed(signed_in, q=wanted[:-3].lower()) == [wanted]  # a prefix, any case
    assert listed(signed_in, q=wanted[-8:]) == []  # a fragment of the random part is noise
