"""The address guard at send time: the address actually connected to is checked (DNS may change)."""

import pytest


@pytest.fixture
def bridge_overrides():
    return {"BRIDGE_RETRY_SCHEDULE": "1"}


def test_a_name_rebound_to_loopback_after_registration_is_refused_at_send_time(
    bridge, receiver, resolver, deliver
):
    port = receiver.url.rsplit(":", 1)[1]
    resolver.table["rebind.example.test"] = ["93.184.216.34"]  # public at registration
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=1)
    watch = bridge.register(
        "a1", targets=[{"type": "webhook", "url": f"http://rebind.example.test:{port}/hook"}]
    )
    resolver.table["rebind.example.test"] = ["127.0.0.1"]  # ...and loopback when sending
    bridge.tick()
    deliver()
    assert receiver.requests == []
    [delivery] = bridge.watch(watch["id"])["deliveries"]
    assert delivery["state"] == "failed"
    assert "loopback" in delivery["attempts"][0]["error"]


def test_a_name_with_one_private_address_among_public_ones_is_refused_before_connecting():
    """The guard checks every address first; none is connected to (so no traffic leaves here)."""
    import requests

    from app.outbound.http import guarded_session, refused_reason

    attempted = []

    def resolver(host, port):
        attempted.append(host)
        return ["93.184.216.34", "127.0.0.1"]

    session = guarded_session(resolver, allow_private=False)
    with pytest.raises(requests.ConnectionError) as caught:
        session.post("http://mixed.example.test/hook", data=b"{}", timeout=2)
    assert attempted == ["mixed.example.test"]
    assert "loopback" in refused_reason(caught.value)
