"""What Trac 1.6 itself writes for a change: the reference the mail body
is compared with (``TicketFormatter``), and the change tracnotify recorded
last."""

import trac.ticket.web_ui  # noqa: F401  (registers Trac's ticket templates)
from trac.ticket.notification import TicketChangeEvent, TicketFormatter

from tracnotify.event import CREATED, TicketEvent
from tracnotify.mail.pipeline import comment_number


def last_event(env) -> TicketEvent:
    """The change tracnotify recorded last (its comment number filled)."""
    (payload,), = env.db_query("""
        SELECT payload FROM tracnotify_event ORDER BY id DESC LIMIT 1""")
    event = TicketEvent.from_json(payload)
    if event.kind != CREATED:
        event.cnum = comment_number(env, event)
    return event


def tracs(env, ticket):
    """Trac 1.6's subject and body for the last change of *ticket*
    (the ticket object as Trac's web UI holds it right after saving)."""
    event = last_event(env)
    if event.kind == CREATED:
        tevent = TicketChangeEvent('created', ticket, ticket['time'],
                                   ticket['reporter'])
    else:
        tevent = TicketChangeEvent('changed', ticket, event.datetime,
                                   event.author, event.comment)
    formatter = TicketFormatter(env)
    body = formatter.format('email', 'text/plain', tevent).decode('utf-8')
    return formatter._format_subj(tevent), body
