"""The README's ``http`` target recipes: each is a valid registration target, renders for a sample
event of every default event type, and produces the JSON its chat tool's documentation requires,
with hostile labels arriving as exact strings."""

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.notify import http_target, templating
from app.notify.results import TargetSnapshot
from app.notify.samples import sample_envelope
from app.vocabulary import DEFAULT_EVENTS
from app.watches.validation import HttpTargetIn, ValidationSettings, WatchCreate

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
HOSTILE = {"title": "<!channel> & <http://x|y>", "note": 'say "hi" \\ bye'}


def recipes() -> dict[str, dict]:
    """Each recipe of the README's http-recipes part, by its URL's host."""
    part = README.split("<!-- http-recipes:start -->")[1].split("<!-- http-recipes:end -->")[0]
    found = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", part, re.DOTALL)]
    return {urlsplit(recipe["url"]).hostname: recipe for recipe in found}


def rendered(recipe: dict, event_type: str) -> tuple[dict, dict[str, str]]:
    """The JSON body and the headers the recipe sends for a sample event with hostile labels."""
    envelope = sample_envelope(event_type)
    envelope["data"]["watch"]["labels"] = dict(HOSTILE)
    target = TargetSnapshot(
        "tgt", "http", recipe["url"], None, None, False, method=recipe.get("method", "POST"),
        headers=tuple(recipe.get("headers", {}).items()), body=recipe["body"],
    )  # fmt: skip
    body, headers = http_target.render_request(envelope, target, "https://bridge.example.test")
    return json.loads(body), headers


def test_there_are_recipes_for_three_chat_tools():
    assert set(recipes()) == {"discord.com", "chat.googleapis.com", "wh.jandi.com"}


@pytest.mark.parametrize("host", ["discord.com", "chat.googleapis.com", "wh.jandi.com"])
def test_each_recipe_is_a_valid_registration_target(host):
    recipe = recipes()[host]
    body = {"workspace": "w", "project_id": "1", "asset_id": "a", "targets": [recipe]}
    watch = WatchCreate.model_validate(body, context=ValidationSettings())
    assert isinstance(watch.targets[0], HttpTargetIn)


def every_default_event(host):
    return [(rendered(recipes()[host], event), event) for event in DEFAULT_EVENTS]


def test_discord_gets_content_and_no_mentions():
    # https://discord.com/developers/docs/resources/webhook#execute-webhook: content (<= 2000
    # characters) or embeds; allowed_mentions.parse [] suppresses @everyone and role pings.
    for (body, _headers), event in every_default_event("discord.com"):
        assert isinstance(body["content"], str)
        assert 0 < len(body["content"]) <= 2000
        assert event in body["content"]
        assert HOSTILE["title"] in body["content"]  # the exact text, escaped only for JSON
        assert body["allowed_mentions"] == {"parse": []}


def test_google_chat_gets_text_as_utf8_json():
    # https://developers.google.com/workspace/chat/quickstart/webhooks: {"text": ...} posted as
    # application/json; charset=UTF-8.
    for (body, headers), event in every_default_event("chat.googleapis.com"):
        assert set(body) == {"text"}
        assert isinstance(body["text"], str)
        assert event in body["text"]
        assert f"title: {HOSTILE['title']}" in body["text"]
        assert f"note: {HOSTILE['note']}" in body["text"]
        assert headers == {"Content-Type": "application/json; charset=UTF-8"}


def test_jandi_gets_body_color_and_connect_info_with_its_accept_header():
    # https://support.jandi.com/en/articles/8799120: POST with Accept
    # application/vnd.tosslab.jandi-v2+json; "body" required (non-empty), "connectColor" a hex
    # colour, "connectInfo" a list of {"title", "description"}.
    for (body, headers), event in every_default_event("wh.jandi.com"):
        assert headers == {"Accept": "application/vnd.tosslab.jandi-v2+json"}
        assert isinstance(body["body"], str)
        assert event in body["body"]
        assert re.fullmatch(r"#[0-9A-F]{6}", body["connectColor"])
        assert all(set(item) == {"title", "description"} for item in body["connectInfo"])
        assert all(isinstance(v, str) for item in body["connectInfo"] for v in item.values())
        info = {item["title"]: item["description"] for item in body["connectInfo"]}
        assert info["title"] == HOSTILE["title"]
        assert info["note"] == HOSTILE["note"]


def test_the_recipes_render_within_the_limits():
    for recipe in recipes().values():
        assert len(recipe["body"].encode()) <= templating.MAX_SOURCE_BYTES
