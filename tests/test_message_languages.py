"""Default messages in every language: complete catalogs, compiled catalogs that match their .po,
every event type rendered in English, Korean and Japanese, and mrkdwn escaping of templates."""

import json
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from app.notify import languages
from app.notify.mrkdwn_templates import message_for, mrkdwn_text
from app.notify.samples import SAMPLE_TYPES, sample_envelope
from app.notify.slack_blocks import build_message
from app.upstream import statuses
from app.vocabulary import Language

NOTIFY = Path(languages.__file__).parent
TRANSLATED = [language.value for language in Language if language != Language.EN]
HOSTILE = "<!channel> & <http://x|y>"
INERT = "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"


def msgids_in_code() -> set[str]:
    """Every message the code marks for translation (``_(...)`` and ``N_(...)``), as pybabel sees it."""
    found = set()
    for path in NOTIFY.glob("*.py"):
        for _line, message, _comments, _context in extract_from_file(
            "python", str(path), keywords={"_": None, "N_": None}
        ):
            found.add(message)
    return found


def catalog(language: str):
    path = languages.TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        return read_po(handle)


def sample_body(event_type: str, **labels: str) -> str:
    envelope = sample_envelope(event_type)
    if labels and "watch" in envelope["data"]:
        envelope["data"]["watch"]["labels"] = labels
    return json.dumps(envelope, ensure_ascii=False)


def all_texts(message) -> str:
    return json.dumps({"text": message.text, "blocks": message.blocks}, ensure_ascii=False)


def test_the_code_marks_its_messages_and_pybabel_finds_them():
    found = msgids_in_code()
    assert {"Analysis completed", "Labels", "Open in mi-bridge", "not yet seen"} <= found
    assert set(languages.STATUS_WORDS.values()) <= found


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_has_a_translation_and_the_compiled_catalog_matches(language):
    po = catalog(language)
    translated = {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}
    missing = msgids_in_code() - set(translated)
    assert not missing, f"{language}: no translation for {sorted(missing)}"
    gettext = languages.gettext_for(language)
    stale = {msgid for msgid, text in translated.items() if gettext(msgid) != text}
    assert not stale, f"{language}: messages.mo is older than messages.po (pybabel compile)"


def test_every_upstream_status_has_words():
    assert set(statuses.KNOWN) == set(languages.STATUS_WORDS)


@pytest.mark.parametrize(
    ("language", "completed", "failed", "cancelled", "analysing", "waiting"),
    [
        ("ko", "분석 완료", "분석 실패", "분석 취소", "분석 중", "분석 대기"),
        ("ja", "解析完了", "解析失敗", "解析キャンセル", "解析中", "解析待ち"),
        ("en", "Analysis completed", "Analysis failed", "Analysis cancelled", "Analysing",
         "Waiting for analysis"),
    ],
)  # fmt: skip
def test_status_names_are_words_with_the_upstream_value(
    language, completed, failed, cancelled, analysing, waiting
):
    gettext = languages.gettext_for(language)
    names = {status: languages.status_name(status, gettext) for status in statuses.KNOWN}
    assert names["ANALYZE_COMPLETED"] == f"{completed} (ANALYZE_COMPLETED)"
    assert names["ANALYZE_FAIL"] == f"{failed} (ANALYZE_FAIL)"
    assert names["ANALYZE_CANCEL"] == f"{cancelled} (ANALYZE_CANCEL)"
    assert names["ANALYZING"] == f"{analysing} (ANALYZING)"
    assert names["WAIT_ANALYZE"] == f"{waiting} (WAIT_ANALYZE)"
    assert languages.status_name("SOMETHING_NEW", gettext) == "SOMETHING_NEW"


@pytest.mark.parametrize("event_type", SAMPLE_TYPES)
@pytest.mark.parametrize("language", TRANSLATED)
def test_every_event_type_reads_in_each_language(event_type, language):
    english = build_message(sample_body(event_type), "https://bridge.test", "en")
    translated = build_message(sample_body(event_type), "https://bridge.test", language)
    assert translated.text != english.text
    assert translated.blocks[0]["text"]["text"] != english.blocks[0]["text"]["text"]
    # Every translated word appears only translated: no English words of the catalog are left.
    po = catalog(language)
    words = {m.id for m in po if m.id and m.id != m.string and "%" not in m.id}
    shown = all_texts(translated)
    assert not [w for w in words if f"*{w}*" in shown or f'"{w}"' in shown]
    assert [b["type"] for b in translated.blocks] == [b["type"] for b in english.blocks]


def test_a_korean_completion_names_the_status_in_words_and_keeps_the_value():
    message = build_message(sample_body("analysis.completed"), None, "ko")
    assert message.text == "분석 완료: 에셋 5678 (my-workspace/1234)"
    assert message.blocks[0]["text"]["text"] == "✅ 분석 완료"
    assert "*상태*\n분석 완료 (ANALYZE_COMPLETED)" in all_texts(message).replace("\\n", "\n")


def test_an_unknown_language_reads_in_english():
    assert languages.gettext_for("xx")("Analysis completed") == "Analysis completed"


@pytest.mark.parametrize("language", ["en", "ko", "ja"])
def test_a_hostile_label_is_inert_in_text_and_blocks(language):
    default, note = message_for(
        sample_body("analysis.completed", title=HOSTILE), None, language, None
    )
    assert note is None
    shown = all_texts(default)
    assert INERT in shown
    assert "<!channel>" not in shown
    assert "<http://x|y>" not in shown
    template = "*{{ labels.title }}* {{ message }} <{{ dashboard_url }}|open>"
    body = sample_body("analysis.completed", title=HOSTILE)
    templated, note = message_for(body, template, language, "https://bridge.test")
    assert note is None
    assert templated.text.startswith(f"*{INERT}* ")
    assert templated.text.endswith(
        f"<https://bridge.test/watches/{'wch_01JSAMPLE' + '0' * 17}|open>"
    )
    section = next(b for b in templated.blocks if b["type"] == "section")
    assert section["text"]["text"] == templated.text
    assert "fields" in section  # the layout keeps its fields
    assert "<!channel>" not in all_texts(templated)


def test_mrkdwn_escaping_of_every_kind_of_value():
    assert mrkdwn_text("<@U123> & <!here>") == "&lt;@U123&gt; &amp; &lt;!here&gt;"
    assert mrkdwn_text(None) == ""
    assert mrkdwn_text(True) == "true"
    assert mrkdwn_text({"a": "<b>"}) == '{"a":"&lt;b&gt;"}'


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ '' }}", "renders empty text"),
        ("{{ 'x' * 100000 }}", "repetition"),
    ],
)
def test_a_template_that_fails_falls_back_to_the_default_text_with_a_note(template, reason):
    body = sample_body("analysis.failed")
    message, note = message_for(body, template, "ja", None)
    assert message == build_message(body, None, "ja")
    assert note is not None
    assert note.startswith("template failed, default text sent: ")
    assert reason in note
