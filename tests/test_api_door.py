"""The front door refuses what the upstream or the database cannot take (issue 17, item 9).

Ids that would become dot segments of the signed upstream URL, or end in a newline, are ``422`` with
a readable message wherever watches are registered (API, dashboard form, CLI). Path parameters no id
can be are ``404`` and query arguments no column can hold are ``400``, before any query: on SQLite
and on PostgreSQL (which refuses NUL in text), where they were ``500``.
"""

from __future__ import annotations

import copy
from urllib.parse import quote

import pytest
from jsonschema import Draft202012Validator

from app.api.openapi import build_document
from app.cli.watch import watch_group
from tests.dashboardtools import field_errors, sign_in
from tests.watchtools import assert_problem, watch_body

WATCHES, EVENTS, DELIVERIES = "/api/v1/watches", "/api/v1/events", "/api/v1/deliveries"
RULE = "must be 1 to 128 letters, digits, '.', '_' or '-', and not '.' or '..'"
REFUSED_IDS = [".", "..", "a\n", "1234\n", "\n", "a\r", "a\x00", "", "x" * 129, "a/b", "é", " a"]
ACCEPTED_IDS = ["...", ".a", "a.", "a..b", "-", "_", "x" * 128, "A-z.0_9"]
#: Path parameters that no id can be: NUL (PostgreSQL refuses it), other characters, dots, length.
IMPOSSIBLE_IDS = ["\x00", "wch_\x00", "a b", "é", "\u2028", "x" * 129, "..", ".", "%", "a\nb"]


# --- registration: ids the upstream path cannot take ----------------------------------------------


@pytest.mark.parametrize("field", ["workspace", "project_id", "asset_id"])
@pytest.mark.parametrize("value", REFUSED_IDS, ids=ascii)
def test_ids_the_upstream_path_cannot_take_are_422_with_a_readable_message(
    client, auth_headers, field, value
):
    response = client.post(WATCHES, json=watch_body(**{field: value}), headers=auth_headers)
    body = assert_problem(response, 422)
    assert body["errors"] == [{"pointer": f"#/{field}", "detail": RULE}]
    assert client.get(WATCHES, headers=auth_headers).get_json()["items"] == []


@pytest.mark.parametrize("value", ACCEPTED_IDS)
def test_ids_with_dots_that_are_not_dot_segments_are_accepted_as_given(client, auth_headers, value):
    response = client.post(WATCHES, json=watch_body(asset_id=value), headers=auth_headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["asset_id"] == value


def test_the_rule_holds_on_postgres_too(pg_app, auth_headers):
    client = pg_app.test_client()
    for value in (".", "..", "a\n", "a\x00"):
        response = client.post(WATCHES, json=watch_body(workspace=value), headers=auth_headers)
        assert assert_problem(response, 422)["errors"][0]["detail"] == RULE
    response = client.post(WATCHES, json=watch_body(workspace="..."), headers=auth_headers)
    assert response.status_code == 201


def test_the_document_states_the_rule_the_code_applies():
    properties = build_document()["components"]["schemas"]["WatchCreate"]["properties"]
    schema = copy.deepcopy(properties["asset_id"])
    text = schema["anyOf"][0]
    assert text["pattern"].endswith("$")
    # JSON Schema patterns are ECMA 262, where "$" ends the text; Python's "$" (which jsonschema
    # uses) also matches before a final newline, so judge with Python's own end of text.
    text["pattern"] = text["pattern"].removesuffix("$") + r"\Z"
    judge = Draft202012Validator(schema)
    for value in REFUSED_IDS:
        assert not judge.is_valid(value), ascii(value)
    for value in [*ACCEPTED_IDS, 1234]:
        assert judge.is_valid(value), value
    assert "'.' or '..'" in properties["asset_id"]["description"]


def test_the_dashboard_form_refuses_dot_segments_with_the_same_message(app):
    client = app.test_client()
    csrf = sign_in(client)
    form = {"csrf_token": csrf, "workspace": "ws", "project_id": "..", "asset_id": "."}
    form["webhook_url"] = "https://hooks.example.test/in"
    response = client.post("/watches/new", data=form)
    assert response.status_code == 422
    errors = field_errors(response.get_data(as_text=True))
    assert errors["project_id"] == [RULE]
    assert errors["asset_id"] == [RULE]


def test_the_cli_refuses_dot_segments_with_the_same_message(app):
    result = app.test_cli_runner().invoke(watch_group, ["add", "ws", "..", "a", "--slack", "C1"])
    assert result.exit_code == 2
    assert f"#/project_id: {RULE}" in result.stderr


# --- path parameters no id can be -----------------------------------------------------------------


def _id_routes(app, blueprint):
    """(method, rule) of every route of ``blueprint`` that takes a path parameter."""
    return [
        (method, rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(f"{blueprint}.") and rule.arguments
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]


def _url(rule, value):
    return rule.build(dict.fromkeys(rule.arguments, "ID"), append_unknown=False)[1].replace(
        "ID", quote(value, safe="")
    )


@pytest.mark.parametrize("value", IMPOSSIBLE_IDS, ids=ascii)
def test_api_path_parameters_no_id_can_be_are_404_problems(door_app, auth_headers, value):
    client = door_app.test_client()
    routes = _id_routes(door_app, "api")
    assert len(routes) >= 4  # show, stop, test, retry
    for method, rule in routes:
        url = _url(rule, value)
        where = f"{method} {rule.rule}"
        response = client.open(url, method=method, headers=auth_headers, json={})
        assert response.status_code == 404, where
        assert response.mimetype == "application/problem+json", where
        assert response.get_json()["status"] == 404, where
        anonymous = client.open(url, method=method, json={})
        assert anonymous.status_code == 401, where  # the token is judged first


@pytest.mark.parametrize("value", ["\x00", "a\x00b", "x" * 129], ids=ascii)
def test_dashboard_path_parameters_no_id_can_be_are_404(door_app, value):
    client = door_app.test_client()
    csrf = sign_in(client)
    routes = _id_routes(door_app, "dashboard")
    assert len(routes) >= 5  # watch, its live fragment, stop, test, retry
    for method, rule in routes:
        response = client.open(_url(rule, value), method=method, data={"csrf_token": csrf})
        assert response.status_code == 404, f"{method} {rule.rule}"


def test_a_well_formed_unknown_id_is_still_an_ordinary_404(door_client, auth_headers):
    response = door_client.get(f"{WATCHES}/wch_01JD3Q00000000000000000000", headers=auth_headers)
    assert "wch_01JD3Q00000000000000000000" in assert_problem(response, 404)["detail"]
    response = door_client.post(
        f"{DELIVERIES}/dlv_01JD3Q00000000000000000000/retry", headers=auth_headers
    )
    assert_problem(response, 404)
