"""The languages of default messages: gettext catalogs per language, looked up per message.

English is the source language (the msgids); ``ko`` and ``ja`` come from the compiled Babel catalogs
in ``app/translations/<lang>/LC_MESSAGES/messages.mo`` (edited as ``messages.po``, compiled with
``pybabel compile -d app/translations``; both are committed so that a wheel ships them). Lookups
are by the target's language, never by a request: the worker has none.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.support import NullTranslations, Translations

from app.vocabulary import Language

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
DOMAIN = "messages"
DEFAULT = Language.EN

#: gettext for one language: the English msgid in, the translated text out.
Gettext = Callable[[str], str]


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional name for "mark, do not translate"
    """Marks ``message`` for extraction (``pybabel extract -k N_``) without translating it now."""
    return message


@cache
def translations(language: str | None) -> NullTranslations:
    """The catalog of ``language`` (English, the msgids themselves, for None, ``en`` or unknown)."""
    if language is None or language == Language.EN or language not in set(Language):
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS), [language], DOMAIN)


def gettext_for(language: str | None) -> Gettext:
    """The ``gettext`` of ``language``; a msgid without a translation reads in English."""
    return translations(language).gettext


#: An upstream analysis status in words (the six of ``app.upstream.statuses``).
STATUS_WORDS = {
    "BEFORE_ANALYZE": N_("Not analysed yet"),
    "WAIT_ANALYZE": N_("Waiting for analysis"),
    "ANALYZING": N_("Analysing"),
    "ANALYZE_COMPLETED": N_("Analysis completed"),
    "ANALYZE_FAIL": N_("Analysis failed"),
    "ANALYZE_CANCEL": N_("Analysis cancelled"),
}
NOT_SEEN = N_("not yet seen")


def status_name(status: str | None, gettext: Gettext) -> str:
    """A status in words with the upstream value alongside (``분석 완료 (ANALYZE_COMPLETED)``);
    an unknown status as it is, none as ``not yet seen``."""
    if status is None:
        return gettext(NOT_SEEN)
    words = STATUS_WORDS.get(status)
    return f"{gettext(words)} ({status})" if words else status
