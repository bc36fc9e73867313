"""/metrics: values, not only syntax, parsed with prometheus_client's own parser."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.worker.heartbeat import beat

TOKEN = {"Authorization": "Bearer test-api-token"}


@pytest.fixture
def bridge_overrides():
    return {"BRIDGE_ALLOW_PRIVATE_URLS": "true", "BRIDGE_RETRY_SCHEDULE": "1"}


def samples(client):
    response = client.get("/metrics", headers=TOKEN)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_need_a_token(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_counts_after_polls_and_deliveries(bridge, receiver, deliver):
    from tests.receiver import Answer

    bridge.set_status("a1", "ANALYZING")
    bridge.set_status("a2", "ANALYZING")
    bridge.register("a1", targets=[{"type": "webhook", "url": receiver.url}])
    bridge.register("a2", targets=[{"type": "webhook", "url": receiver.url}])
    bridge.register("gone-asset", targets=[{"type": "webhook", "url": receiver.url}])  # 404: error
    bridge.tick()
    bridge.fault(kind="http_error", status=503)
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=1)
    bridge.set_status("a2", "ANALYZE_COMPLETED", index_id=2)
    bridge.tick(advance=1.2)  # one of them meets the 503
    bridge.tick(advance=3)
    receiver.answer(Answer(500))
    deliver()
    deliver()
    deliver(advance=1.2)
    beat(bridge.runtime)
    found = samples(bridge.client)
    assert found[("mi_bridge_polls_total", (("outcome", "status"),))] == 4  # 2 + 1 + 1
    assert found[("mi_bridge_polls_total", (("outcome", "transient"),))] == 1
    assert found[("mi_bridge_polls_total", (("outcome", "not_found"),))] == 1
    assert found[("mi_bridge_poll_duration_seconds_count", ())] == 6
    assert found[("mi_bridge_poll_lateness_seconds_count", ())] == 6  # one per claim: 3 + 2 + 1
    succeeded = (("outcome", "succeeded"), ("target_type", "webhook"))
    retried = (("outcome", "retry"), ("target_type", "webhook"))
    assert found[("mi_bridge_deliveries_total", succeeded)] == 3  # 2 completed + 1 watch.error
    assert found[("mi_bridge_deliveries_total", retried)] == 1
    assert found[("mi_bridge_watches", (("state", "completed"),))] == 2
    assert found[("mi_bridge_watches", (("state", "error"),))] == 1
    assert found[("mi_bridge_watches", (("state", "watching"),))] == 0
    assert found[("mi_bridge_delivery_queue_depth", ())] == 0
    assert found[("mi_bridge_workers_alive", ())] == 1
    assert found[("mi_bridge_detection_lag_seconds_count", ())] == 2
    assert found[("mi_bridge_detection_lag_seconds_sum", ())] > 0


def test_lateness_histogram_buckets_are_cumulative():
    from app.worker.counters import LATENESS_BUCKETS, WorkerCounters

    counters = WorkerCounters()
    counters.claimed_late([-0.5, 0.0, 0.1, 0.3, 1.0, 7.0, 4000.0])
    lateness = counters.snapshot()["poll_lateness"]
    cumulative = dict(lateness["buckets"])
    assert list(cumulative) == list(LATENESS_BUCKETS)
    # Early claims count as on time; a value equal to a bound falls in that bound's bucket.
    assert (cumulative[0.1], cumulative[0.25], cumulative[0.5], cumulative[1.0]) == (3, 3, 4, 5)
    assert (cumulative[10.0], cumulative[300.0], lateness["count"]) == (6, 6, 7)
    assert lateness["sum"] == pytest.approx(0.1 + 0.3 + 1.0 + 7.0 + 4000.0)
