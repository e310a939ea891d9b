"""A change as the batch mail and the daily digest list it: its text block
(the body of its normal mail, up to Trac's signature, then its link) and
its HTML block (``templates/mail/ticket_change.html``), under its ticket's
heading."""

from typing import Optional

from trac.util.text import exception_to_unicode

from tracnotify.event import TicketEvent
from tracnotify.i18n.domain import _
from tracnotify.i18n.language import mail_language
from tracnotify.mail.format import TicketMailFormatter
from tracnotify.mail.html import HtmlMailRenderer, text_as_html
from tracnotify.mail.message import Recipient

#: where Trac's signature starts in a rendered body
BODY_SIGNATURE = '\n-- \n'


def wants_html(recipient: Recipient) -> bool:
    """Whether *recipient* gets an HTML part (format ``html`` or
    ``both``: digest and batch mails then carry text and HTML)."""
    return recipient.format in ('html', 'both')


def change_block(env, formatter: TicketMailFormatter, event: TicketEvent,
                 language: str) -> str:
    """The text of one change as the normal mail shows it, up to Trac's
    signature, then the ticket's link: what a digest or a batch mail lists
    for each change."""
    rendered = formatter.render(event, language)
    body = rendered.body
    cut = body.rfind(BODY_SIGNATURE)
    if cut >= 0:
        body = body[:cut]
    with mail_language(env, language):
        link = str(_('Ticket URL: <%(link)s>', link=rendered.link))
    return body.rstrip('\n') + '\n\n' + link


def change_html(env, formatter: TicketMailFormatter, event: TicketEvent,
                language: str) -> Optional[str]:
    """The HTML of one change (``ticket_change.html``) in *language*, as
    a digest or batch mail lists it; None when it cannot be rendered (a
    broken template override: the text still goes)."""
    rendered = formatter.render(event, language)
    with mail_language(env, language):
        formatter.translated = language != 'en'
        try:
            return HtmlMailRenderer(env, formatter).render_block(
                event, rendered, language)
        except Exception as e:
            env.log.error('tracnotify: HTML of ticket #%s for a digest or '
                          'batch mail failed, text only: %s',
                          event.ticket_id,
                          exception_to_unicode(e, traceback=True))
            return None
        finally:
            formatter.translated = False


def ticket_heading(ticket_id: int, summary: str) -> str:
    """``Ticket #1: summary``, over a ticket's changes (translations
    active)."""
    return str(_('Ticket #%(id)s: %(summary)s', id=ticket_id,
                 summary=summary or ''))


def block_html(text: str, html: Optional[str]) -> str:
    """A change's HTML block, or its text shown as-is when it has none."""
    return html if html is not None else text_as_html(text)
