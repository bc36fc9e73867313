"""Body templates of ``http`` targets (pure): JSON-string autoescape, ``tojson``, empty unknowns,
bounds and the sandbox; and the sample events they are checked against."""

import json

import pytest

from app.alerts.envelope import AlertEnvelope
from app.notify import templating
from app.notify.samples import SAMPLE_TYPES, sample_envelope
from app.notify.templating import TemplateFailed
from app.outbox.envelopes import EventEnvelope
from app.vocabulary import SUBSCRIBABLE_EVENTS, EventType

NASTY = 'a "quote" \\ back\nline\ttab \x01 <!channel> é'


def render(source, **variables):
    return templating.render(source, variables)


def test_values_are_escaped_for_a_json_string_and_tojson_is_not_escaped_again():
    text = render('{"v": "{{ v }}", "all": {{ d | tojson }}}', v=NASTY, d={"k": NASTY, "n": 1})
    assert json.loads(text) == {"v": NASTY, "all": {"k": NASTY, "n": 1}}


def test_unknown_variables_and_none_render_empty():
    assert render('"{{ nope }}{{ a.b.c }}{{ none }}"', none=None) == '""'
    assert render("{{ missing | tojson }}") == "null"
    assert render("{{ flag }} {{ n }}", flag=True, n=3) == "true 3"


def test_the_sandbox_keeps_internals_out_of_reach():
    assert render("{{ ''.__class__.__mro__ }}{{ d.__init__.__globals__ }}", d={}) == ""
    with pytest.raises(TemplateFailed):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}")


def test_sizes_and_work_are_bounded():
    with pytest.raises(TemplateFailed, match="longer than 16 KiB"):
        render("x" * (templating.MAX_SOURCE_BYTES + 1))
    with pytest.raises(TemplateFailed, match="more than 64 KiB"):
        render("{% for i in range(100) %}{{ s }}{% endfor %}", s="x" * 1000)
    with pytest.raises(TemplateFailed, match="repetition"):
        render("{{ 'x' * 100000000 }}")
    with pytest.raises(TemplateFailed, match="range"):
        render("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}")
    with pytest.raises(TemplateFailed, match="exponents"):
        render("{{ 9 ** 999999 }}")


def test_errors_are_short_sentences():
    with pytest.raises(TemplateFailed, match=r"^template syntax error on line 2: "):
        render("ok\n{% if %}")
    with pytest.raises(TemplateFailed, match=r"^ZeroDivisionError"):
        render("{{ 1 / 0 }}")
    with pytest.raises(TemplateFailed, match=r"^does not render valid JSON: "):
        templating.render_json("{", {})


def test_variables_and_dashboard_url():
    envelope = sample_envelope("analysis.completed")
    names = templating.variables(envelope, "https://bridge.example.test/")
    assert (
        names["dashboard_url"]
        == f"https://bridge.example.test/watches/{envelope['data']['watch']['id']}"
    )
    assert names["labels"] == envelope["data"]["watch"]["labels"]
    assert templating.variables(envelope, None)["dashboard_url"] == ""


def test_every_sample_has_the_envelope_shape():
    assert set(SAMPLE_TYPES) >= {*SUBSCRIBABLE_EVENTS, EventType.BRIDGE_TEST}
    for event_type in SAMPLE_TYPES:
        model = AlertEnvelope if event_type == EventType.BRIDGE_ALERT else EventEnvelope
        envelope = sample_envelope(event_type)
        assert model.model_validate(envelope).as_json() == envelope, event_type
