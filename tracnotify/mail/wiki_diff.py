"""The unified diff of a wiki page change, as Trac writes diffs.

The hunks are Trac's own (:func:`trac.versioncontrol.diff.unified_diff`,
three lines of context, what Trac's changeset view offers as "Unified
Diff"), under the same ``Index:`` / ``---`` / ``+++`` header with the page
versions instead of revisions: ``patch`` applies it to the old text.  The
result is bounded like the texts of ticket mail; a cut diff ends on a
whole line, with a notice.
"""

from typing import List

from trac.versioncontrol.diff import unified_diff

from tracnotify.i18n.domain import _
from tracnotify.mail.format import MAX_TEXT_CHARS

CONTEXT = 3


def omitted_notice(count: int) -> str:
    """The line that says how much of a page's text or diff was left out."""
    return str(_('[... %(count)s characters omitted; see the page]',
                 count=count))


def bounded_lines(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """*text*, cut after the last whole line within *limit* characters,
    with a notice saying how much was left out."""
    if len(text) <= limit:
        return text
    cut = text.rfind('\n', 0, limit + 1)
    if cut <= 0:
        cut = limit
    return text[:cut].rstrip('\n') + '\n' + omitted_notice(len(text) - cut)


def diff_lines(name: str, old_text: str, new_text: str, old_version: int,
               new_version: int, context: int = CONTEXT) -> List[str]:
    """The lines of the diff from *old_text* to *new_text* (empty when the
    texts do not differ line by line)."""
    hunks = list(unified_diff(old_text.splitlines(), new_text.splitlines(),
                              context))
    if not hunks:
        return []
    return ['Index: %s' % name, '=' * 67,
            '--- %s\t(version %d)' % (name, old_version),
            '+++ %s\t(version %d)' % (name, new_version)] + hunks


def page_diff(name: str, old_text: str, new_text: str, old_version: int,
              new_version: int, limit: int = MAX_TEXT_CHARS) -> str:
    """The bounded diff as one text, lines ending with ``\\n``."""
    lines = diff_lines(name, old_text, new_text, old_version, new_version)
    if not lines:
        return ''
    return bounded_lines('\n'.join(lines) + '\n', limit)
