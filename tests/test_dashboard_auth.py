"""Dashboard sign-in, sign-out, the session cookie's flags, CSRF, and the API's independence of both."""

from __future__ import annotations

import pytest

from app.dashboard.auth import safe_next
from tests.dashboardtools import API_TOKEN, csrf_from, seed_watch, sign_in

SESSION_COOKIE = "mi_bridge_session"


def set_cookie_header(response) -> str:
    (header,) = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(SESSION_COOKIE)]
    return header


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/", "/login?next=/"),
        ("/deliveries", "/login?next=/deliveries"),
        ("/watches/new", "/login?next=/watches/new"),
        ("/?state=failed&q=a", "/login?next=/?state%3Dfailed%26q%3Da"),
    ],
)
def test_anonymous_pages_redirect_to_sign_in_keeping_where_they_were(client, path, location):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == location


def test_anonymous_live_fragments_answer_401(client, app):
    watch_id = seed_watch(app, "a1")
    assert client.get("/live/watches").status_code == 401
    assert client.get(f"/watches/{watch_id}/live").status_code == 401


def test_signing_in_goes_on_to_next(client):
    form_token = csrf_from(client.get("/login?next=/deliveries").get_data(as_text=True))
    response = client.post(
        "/login", data={"token": API_TOKEN, "csrf_token": form_token, "next": "/deliveries"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/deliveries"
    assert client.get("/deliveries").status_code == 200


@pytest.mark.parametrize(
    "hostile",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "/\\/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/ok\r\nSet-Cookie: x=1",
        "",
    ],
)
def test_next_only_leads_to_paths_of_this_site(client, hostile):
    form_token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"token": API_TOKEN, "csrf_token": form_token, "next": hostile}
    )
    assert response.headers["Location"] == "/"
    assert safe_next(hostile) is None


def test_safe_next_keeps_paths_and_queries():
    assert safe_next("/watches/wch_1?x=1") == "/watches/wch_1?x=1"
    assert safe_next("/") == "/"


def test_a_wrong_token_is_refused_without_a_session(client):
    form_token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"token": "nope", "csrf_token": form_token})
    assert response.status_code == 401
    assert "That token is not accepted" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_cookie_is_httponly_and_lax_and_not_secure_over_http(client):
    form_token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"token": API_TOKEN, "csrf_token": form_token})
    header = set_cookie_header(response)
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" not in header


def test_cookie_is_secure_behind_an_https_proxy(client):
    https = {"X-Forwarded-Proto": "https"}
    form_token = csrf_from(client.get("/login", headers=https).get_data(as_text=True))
    response = client.post(
        "/login",
        data={"token": API_TOKEN, "csrf_token": form_token},
        headers={**https, "Referer": "https://localhost/login"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    header = set_cookie_header(response)
    assert "; Secure" in header
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header


def test_sign_out_needs_post_and_its_csrf_token(client):
    csrf = sign_in(client)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert "You are signed out" in client.get("/login").get_data(as_text=True)
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("action", ["stop", "test"])
def test_forms_without_a_csrf_token_are_refused(client, app, action):
    watch_id = seed_watch(app, "a1")
    sign_in(client)
    response = client.post(f"/watches/{watch_id}/{action}")
    assert response.status_code == 400
    assert "could not be accepted" in response.get_data(as_text=True)
    response = client.post(f"/watches/{watch_id}/{action}", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert client.get(f"/api/v1/watches/{watch_id}", headers=bearer()).json["state"] == "watching"


def test_sign_in_itself_needs_a_csrf_token(client):
    assert client.post("/login", data={"token": API_TOKEN}).status_code == 400


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


def test_the_session_cookie_never_authenticates_the_api(client):
    sign_in(client)
    assert client.get("/api/v1/watches").status_code == 401
    assert client.post("/api/v1/watches", json={}).status_code == 401


def test_the_api_needs_no_csrf_token(client):
    body = {"workspace": "ws", "project_id": "1", "asset_id": "a1",
            "targets": [{"type": "webhook", "url": "https://hooks.example.test/in"}]}  # fmt: skip
    assert client.post("/api/v1/watches", json=body, headers=bearer()).status_code == 201


def test_removing_a_token_ends_its_sessions(app_factory, tmp_path):
    first = app_factory(BRIDGE_API_TOKENS=f"{API_TOKEN},other-token")
    client = first.test_client()
    sign_in(client)
    cookie = client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    second = app_factory(BRIDGE_API_TOKENS="other-token")
    other = second.test_client()
    other.set_cookie(SESSION_COOKIE, cookie.value)
    assert other.get("/").status_code == 302
    still = first.test_client()
    still.set_cookie(SESSION_COOKIE, cookie.value)
    assert still.get("/").status_code == 200


def test_pages_carry_a_same_origin_content_security_policy(client):
    sign_in(client)
    for path in ("/", "/login", "/watches/new", "/deliveries"):
        headers = client.get(path).headers
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert "script-src 'self';" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"
