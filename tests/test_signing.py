"""API Gateway signature v2: the published algorithm, checked against the fixed test vector."""

import time

from app.upstream import signing

VECTOR_URI = "/api/v1/workspaces/my-workspace/projects/1234/assets/5678/index/status"
VECTOR_SIGNATURE = "Cr30ryEQUJTfWd9r7RGmZkpouqADkGjgr5IdQ9zRQg8="


def test_signature_matches_the_test_vector():
    signature = signing.sign(
        "GET", VECTOR_URI, "1700000000000", "ACCESS_KEY_ID", "SECRET_KEY_EXAMPLE"
    )
    assert signature == VECTOR_SIGNATURE


def test_string_to_sign_layout():
    text = signing.string_to_sign("get", "/p?q=1", "17", "AK")
    assert text == "GET /p?q=1\n17\nAK"


def test_signature_depends_on_every_signed_part():
    base = ("GET", VECTOR_URI, "1700000000000", "ACCESS_KEY_ID", "SECRET_KEY_EXAMPLE")
    variants = [
        ("POST", *base[1:]),
        ("GET", VECTOR_URI + "?x=1", *base[2:]),
        (*base[:2], "1700000000001", *base[3:]),
        (*base[:3], "OTHER_KEY", base[4]),
        (*base[:4], "OTHER_SECRET"),
    ]
    assert all(signing.sign(*variant) != VECTOR_SIGNATURE for variant in variants)


def test_signed_headers_use_a_fresh_real_clock_timestamp():
    before = time.time_ns() // 1_000_000
    headers = signing.signed_headers("GET", VECTOR_URI, "ACCESS_KEY_ID", "SECRET_KEY_EXAMPLE")
    after = time.time_ns() // 1_000_000
    stamp = headers[signing.TIMESTAMP_HEADER]
    assert stamp.isdigit()
    assert before <= int(stamp) <= after
    assert headers[signing.ACCESS_KEY_HEADER] == "ACCESS_KEY_ID"
    assert headers[signing.SIGNATURE_HEADER] == signing.sign(
        "GET", VECTOR_URI, stamp, "ACCESS_KEY_ID", "SECRET_KEY_EXAMPLE"
    )


def test_explicit_timestamp_reproduces_the_vector():
    headers = signing.signed_headers(
        "GET", VECTOR_URI, "ACCESS_KEY_ID", "SECRET_KEY_EXAMPLE", timestamp_ms="1700000000000"
    )
    assert headers[signing.SIGNATURE_HEADER] == VECTOR_SIGNATURE


def test_dot_segments_never_reach_the_upstream_path():
    from app.upstream.generations import status_path
    from app.vocabulary import ApiGeneration

    path = status_path(ApiGeneration.INDEX, "..", ".", "..")
    assert path == "/api/v1/workspaces/%2E%2E/projects/%2E/assets/%2E%2E/index/status"
    assert "/../" not in path
