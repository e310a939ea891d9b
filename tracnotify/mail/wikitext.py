"""Trac wiki text (comments, descriptions) as the HTML of a mail.

Rendered by Trac's own formatter for an anonymous reader of the site
(:mod:`tracnotify.mail.anonymous`): macros run as they do on the web page.
A macro or a processor that fails anyway shows its source text, never a
Python error ("Error: Macro X failed - 'NoneType' object has no attribute
..."), which says nothing to the reader of a mail.  The result is then
sanitised for mail clients (:mod:`tracnotify.mail.sanitize`).
"""

import io
from html import escape
from typing import Optional

from trac.resource import Resource
from trac.util.html import Markup, tag
from trac.util.text import exception_to_unicode
from trac.wiki.formatter import Formatter
from trac.wiki.parser import WikiParser

from tracnotify.mail.anonymous import anonymous_context
from tracnotify.mail.sanitize import clean_html


class _SourceOnError:
    """A ``WikiProcessor`` whose failure is its source text."""

    def __init__(self, processor, source: str, log) -> None:
        self._processor = processor
        self._source = source
        self._log = log

    def __getattr__(self, name):
        return getattr(self._processor, name)

    def process(self, text, *args, **kwargs):
        try:
            return self._processor.process(text, *args, **kwargs)
        except Exception as e:
            self._log.info('tracnotify: %s in mail shown as its source '
                           'text: %s', self._source[:80],
                           exception_to_unicode(e))
            return tag.code(self._source)


class MailWikiFormatter(Formatter):
    """Trac's formatter, with failing macros and processors shown as their
    source text."""

    def _macro_formatter(self, match, fullmatch, macro, only_inline=False):
        return super()._macro_formatter(
            match, fullmatch, _SourceOnError(macro, match, self.env.log),
            only_inline)

    def _exec_processor(self, processor, text):
        try:
            return processor.process(text)
        except Exception as e:
            self.env.log.info('tracnotify: processor %s in mail shown as '
                              'its source text: %s', processor.name,
                              exception_to_unicode(e))
            return tag.pre(text)


def _preserve_newlines(env) -> bool:
    """``[ticket] preserve_newlines``, as Trac's ticket module reads it."""
    value = env.config.get('ticket', 'preserve_newlines', 'default')
    if value == 'default':
        return env.database_initial_version >= 21  # 0.11
    return env.config.getbool('ticket', 'preserve_newlines')


def render_wiki(env, ticket_id: int, text: str,
                language: Optional[str] = None) -> str:
    """*text* of ticket *ticket_id* as Trac renders it for anonymous (not
    yet sanitised)."""
    context = anonymous_context(env, Resource('ticket', ticket_id), language)
    preserve = _preserve_newlines(env)
    context.set_hints(preserve_newlines=preserve)
    out = io.StringIO()
    MailWikiFormatter(env, context).format(WikiParser(env).parse(text), out,
                                           preserve)
    return str(Markup(out.getvalue()))


def wiki_to_html(env, ticket_id: int, text: str,
                 language: Optional[str] = None) -> str:
    """Trac wiki text as mail-safe HTML, as the anonymous user sees it
    (macros included), with absolute links; plain escaped text if Trac
    cannot render it."""
    if not text:
        return ''
    try:
        rendered = render_wiki(env, ticket_id, text, language)
    except Exception as e:
        env.log.warning('tracnotify: wiki text of ticket #%s could not be '
                        'rendered as HTML: %s', ticket_id, e)
        rendered = '<pre>%s</pre>' % escape(text, quote=False)
    return clean_html(rendered)
