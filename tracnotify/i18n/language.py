"""Each recipient's language: choosing it, and rendering mail in it.

A mail is rendered with the translations of one language active in the
current thread (Trac's own ``messages`` catalog for field labels, and the
``tracnotify`` domain for the plugin's strings).  English is rendered with
no translations active at all, which keeps it identical to Trac's format.
"""

from contextlib import contextmanager
from typing import Iterator, List, Optional

from trac.util.translation import activate, deactivate, reactivate

from tracnotify.i18n.catalogs import languages
from tracnotify.i18n.domain import register_domain

ENGLISH = 'en'


def available_languages() -> List[str]:
    """Languages a mail can be written in (``en`` first)."""
    return languages()


def normalize_language(value: Optional[str]) -> Optional[str]:
    """The catalog language for a locale id (``de_DE`` -> ``de``,
    ``en_US`` -> ``en``); None when tracnotify has no such catalog."""
    value = (value or '').strip().replace('-', '_')
    if not value:
        return None
    known = available_languages()
    if value in known:
        return value
    base = value.split('_', 1)[0].lower()
    if base in known:
        return base
    return None


def default_language(env) -> str:
    """``[trac] default_language`` when tracnotify speaks it, else English."""
    return normalize_language(env.config.get('trac', 'default_language',
                                             '')) or ENGLISH


@contextmanager
def mail_language(env, language: Optional[str]) -> Iterator[None]:
    """Translations of *language* active in this thread while rendering;
    whatever was active before is restored afterwards."""
    previous = deactivate()
    try:
        if language and language != ENGLISH:
            register_domain(env)
            activate(language, env.path)
        yield
    finally:
        deactivate()
        reactivate(previous)
