"""From a recorded ticket event to finished messages (worker side).

recipients -> format (once per change) -> message (one copy per recipient).
"""

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from trac.notification.mail import create_message_id
from trac.ticket.model import Ticket
from trac.util.text import exception_to_unicode

from tracnotify.config import NotifyConfig
from tracnotify.event import ATTACHMENT_DELETED, CREATED, TicketEvent
from tracnotify.i18n.language import mail_language
from tracnotify.mail.format import RenderedTicketMail, TicketMailFormatter
from tracnotify.mail.html import HtmlMailRenderer
from tracnotify.mail.message import (
    MailHeaders,
    Recipient,
    build_copies,
    encode_shared_part,
)
from tracnotify.mail.recipients import RecipientResolver
from tracnotify.mail.suppression import footer, list_id, with_unsubscribe_links
from tracnotify.outbox import NewMessage


def snapshot_ticket(env, event: TicketEvent) -> Ticket:
    """A ``Ticket`` carrying the values of the snapshot, not of today."""
    ticket = Ticket(env)
    ticket.id = event.ticket_id
    ticket.values.update(event.values)
    ticket._old = {}
    return ticket


def comment_number(env, event: TicketEvent):
    """The comment number of the change, if it is still in the history."""
    for oldvalue, in env.db_query("""
            SELECT oldvalue FROM ticket_change
            WHERE ticket=%s AND time=%s AND field='comment'
            """, (event.ticket_id, event.time)):
        try:
            return int((oldvalue or '').rsplit('.', 1)[-1])
        except ValueError:
            return None
    return None


def thread_ids(env, config: NotifyConfig, event: TicketEvent):
    """``(message_id, root_id)`` as Trac computes them, so that mail keeps
    threading with what Trac itself sent before tracnotify."""
    from_email = config.envelope_from
    target = '%08d' % event.ticket_id
    more = event.values.get('reporter') or ''
    root = create_message_id(env, target, from_email, None, more)
    if event.kind == CREATED:
        return root, None
    if event.is_attachment:  # distinct from a ticket change at that time
        more += '.%s.%s' % (event.kind, event.filename)
    msgid = create_message_id(env, target, from_email, event.datetime,
                              more + '.' + event.kind
                              if event.old_comment is not None else more)
    return msgid, root


def sender_name(env, config: NotifyConfig, event: TicketEvent) -> str:
    """The From display name."""
    if config.smtp_from_author_name and event.author:
        users = env.get_known_users(as_dict=True)
        name = (users.get(event.author) or (None,))[0] or event.author
        return '%s (via %s)' % (name, config.smtp_from_name or
                                env.project_name)
    return config.smtp_from_name or env.project_name


def sender_address(env, config: NotifyConfig, event: TicketEvent) -> str:
    """The From address (the author's with ``smtp_from_author``)."""
    if config.smtp_from_author and event.author:
        from trac.notification.mail import RecipientMatcher
        found = RecipientMatcher(env).match_from_author(event.author)
        if found:
            return found[1] if isinstance(found, tuple) else found
    return config.envelope_from


class Expansion(NamedTuple):
    """One event with its recipients, before rendering."""

    event: TicketEvent
    formatter: TicketMailFormatter
    recipients: List[Recipient]     # mailed now
    digest_items: list              # tracnotify.digest.DigestItem


def expand(env, config: NotifyConfig, event: TicketEvent,
           digest: bool = False) -> Optional[Expansion]:
    """Recipients of *event* (permission-checked); with *digest*, those
    who chose the daily digest get their change rendered into
    ``digest_items`` instead.  None when nobody gets anything."""
    if event.kind == ATTACHMENT_DELETED and not env.db_query(
            'SELECT id FROM ticket WHERE id=%s', (event.ticket_id,)):
        return None  # removed with its ticket: the ticket_deleted mail says so
    if event.cnum is None and event.kind != CREATED:
        event.cnum = comment_number(env, event)
    ticket = snapshot_ticket(env, event)
    resolver = RecipientResolver(env, config)
    recipients = resolver.resolve(event, ticket)
    if not recipients:
        return None
    formatter = TicketMailFormatter(env, ticket)
    items: list = []
    if digest:
        from tracnotify.mail.digest import digest_items_for, split_digest
        recipients, later = split_digest(env, config, resolver, recipients)
        items = digest_items_for(env, formatter, event, later)
    return Expansion(event, formatter, recipients, items)


def build_messages(env, config: NotifyConfig, event: TicketEvent,
                   digest_items: Optional[list] = None) -> List[NewMessage]:
    """Every message that *event* produces, one per recipient.  When a
    *digest_items* list is given, recipients who chose the daily digest
    get no message: their items are appended to it."""
    found = expand(env, config, event, digest=digest_items is not None)
    if found is None:
        return []
    if digest_items is not None:
        digest_items.extend(found.digest_items)
    return render_messages(env, config, event, found.formatter,
                           found.recipients)


def render_messages(env, config: NotifyConfig, event: TicketEvent,
                    formatter: TicketMailFormatter,
                    recipients: List[Recipient]) -> List[NewMessage]:
    """One message per recipient of *event*, the body rendered once per
    (language, format)."""
    if not recipients:
        return []
    msgid, root = thread_ids(env, config, event)
    # personal one-click unsubscribe links, made here in the worker
    recipients = with_unsubscribe_links(env, recipients)
    copies = {}
    # rendered and MIME-encoded once per (language, format), not per person
    for (language, fmt), group in group_recipients(recipients):
        rendered, html = render_mail(env, formatter, event, language, fmt)
        headers = MailHeaders(
            from_name=sender_name(env, config, event),
            from_addr=sender_address(env, config, event),
            reply_to=config.smtp_replyto,
            subject=rendered.subject, msgid=msgid, root_msgid=root,
            date=event.time / 1000000.0,
            extra=(('X-Mailer', 'tracnotify (Trac %s)' % env.trac_version),
                   ('X-Trac-Version', env.trac_version),
                   ('X-Trac-Project', env.project_name),
                   ('X-URL', env.project_url or env.abs_href()),
                   ('X-Trac-Realm', 'ticket'),
                   ('X-Trac-Ticket-ID', str(event.ticket_id)),
                   ('X-Trac-Ticket-URL', rendered.link),
                   ('X-Trac-Notification-Type', event.kind),
                   ('List-Id', list_id(env))))
        shared = encode_shared_part(headers, rendered.body, config, html, fmt)
        for recipient, data in build_copies(shared, group, config,
                                            recipients):
            copies[id(recipient)] = (rendered.subject, data)
    return [NewMessage(ticket=event.ticket_id, kind=event.kind, msgid=msgid,
                       sender=config.envelope_from,
                       recipient=recipient.address, reason=recipient.reason,
                       subject=copies[id(recipient)][0],
                       message=copies[id(recipient)][1])
            for recipient in recipients]


def group_recipients(recipients: Sequence[Recipient]
                     ) -> List[Tuple[Tuple[str, str], List[Recipient]]]:
    """Recipients by (language, format), in order of first appearance."""
    groups: Dict[Tuple[str, str], List[Recipient]] = {}
    for recipient in recipients:
        groups.setdefault((recipient.language or 'en',
                           recipient.format or 'text'), []).append(recipient)
    return list(groups.items())


def render_mail(env, formatter: TicketMailFormatter, event: TicketEvent,
                language: str, fmt: str
                ) -> Tuple[RenderedTicketMail, Optional[str]]:
    """Subject and text body (with the footer), and the HTML body when
    *fmt* asks for one, in *language*."""
    rendered = formatter.render(event, language)
    with mail_language(env, language):
        rendered.body += str(footer(env))
        if fmt not in ('html', 'both'):
            return rendered, None
        formatter.translated = language != 'en'
        try:
            html = HtmlMailRenderer(env, formatter).render(
                event, rendered, language, footer=str(footer(env)))
        except Exception as e:  # a broken override: the text still goes
            env.log.error('tracnotify: HTML mail of ticket #%s failed, '
                          'sending text only: %s', event.ticket_id,
                          exception_to_unicode(e, traceback=True))
            html = None
        finally:
            formatter.translated = False
    return rendered, html

