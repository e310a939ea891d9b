"""From a recorded ticket event to finished messages (worker side).

recipients -> format (once per change) -> message (one copy per recipient).
"""

import hashlib
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from trac.notification.mail import RecipientMatcher, create_message_id
from trac.ticket.model import Ticket
from trac.util.datefmt import datetime_now, from_utimestamp, to_utimestamp, utc
from trac.util.text import exception_to_unicode

from tracnotify.config import NotifyConfig
from tracnotify.event import ATTACHMENT_DELETED, CREATED, TicketEvent
from tracnotify.i18n.language import mail_language
from tracnotify.inbound.addresses import with_reply_addresses
from tracnotify.mail.chrome import footer, standard_headers
from tracnotify.mail.digest import digest_items_for, split_digest
from tracnotify.mail.format import RenderedTicketMail, TicketMailFormatter
from tracnotify.mail.html import HtmlMailRenderer
from tracnotify.mail.message import (
    AddressError,
    MailHeaders,
    Recipient,
    build_heads,
    encode_shared_part,
    make_address,
)
from tracnotify.mail.recipients import RecipientResolver
from tracnotify.mail.suppression import TokenBatch, with_unsubscribe_links
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


def edit_time(env, event: TicketEvent) -> Optional[int]:
    """When the comment edit of *event* was made (microseconds), from the
    comment's edit history (``_commentN`` rows: the text before edit N and
    its time); None when the history no longer has it."""
    if event.old_comment is None:
        return None
    with env.db_query as db:
        history = sorted(
            (int(field[8:]), old or '', new) for field, old, new in db("""
                SELECT field, oldvalue, newvalue FROM ticket_change
                WHERE ticket=%%s AND time=%%s AND field %s
                """ % db.prefix_match(), (event.ticket_id, event.time,
                                          db.prefix_match_value('_comment')))
            if field[8:].isdigit())
        current = [new or '' for new, in db("""
            SELECT newvalue FROM ticket_change
            WHERE ticket=%s AND time=%s AND field='comment'
            """, (event.ticket_id, event.time))]
    # the text after edit N is the text before edit N+1 (the comment as it
    # is now after the last one): the edit from old_comment to comment
    after = [old for _rev, old, _when in history[1:]] + current[:1]
    for (_rev, before, when), text in zip(history, after):
        if before == event.old_comment and text == event.comment:
            try:
                return int(when)
            except (TypeError, ValueError):
                return None
    return None


def mail_time(env, event: TicketEvent) -> int:
    """The time a change's mail is about (its Date, part of its Message-ID):
    the change's time; for a comment edit, the edit's (each edit of one
    comment is mail of its own)."""
    if event.old_comment is None:
        return event.time
    when = edit_time(env, event)
    return when if when is not None else to_utimestamp(datetime_now(utc))


def thread_ids(env, config: NotifyConfig, event: TicketEvent,
               when: Optional[int] = None):
    """``(message_id, root_id)`` as Trac computes them, so that mail keeps
    threading with what Trac itself sent before tracnotify.  *when*: the
    time of the mail (:func:`mail_time`), for comment edits."""
    from_email = config.envelope_from
    target = '%08d' % event.ticket_id
    more = event.values.get('reporter') or ''
    root = create_message_id(env, target, from_email, None, more)
    if event.kind == CREATED:
        return root, None
    if event.is_attachment:  # distinct from a ticket change at that time
        more += '.%s.%s' % (event.kind, event.filename)
    if event.old_comment is None:
        return create_message_id(env, target, from_email, event.datetime,
                                 more), root
    # a comment edit: its own id, from the edit's time and new text
    if when is None:
        when = mail_time(env, event)
    digest = hashlib.sha1(event.comment.encode('utf-8')).hexdigest()[:12]
    msgid = create_message_id(env, target, from_email,
                              from_utimestamp(when),
                              '%s.%s.%s' % (more, event.kind, digest))
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
    """The From address (the author's with ``smtp_from_author``).  An
    author address that Trac accepts but that cannot be written in a From
    header (``jane.@example.org``, ``a..b@example.org``, a local part
    that would need SMTPUTF8 in every copy) falls back to ``smtp_from``,
    with a warning: the change's mail still goes."""
    if config.smtp_from_author and event.author:
        found = RecipientMatcher(env).match_from_author(event.author)
        if found:
            address = found[1] if isinstance(found, tuple) else found
            try:
                make_address(address)
            except AddressError as e:
                env.log.warning('tracnotify: author address of %s cannot be '
                                'the From of ticket #%s mail (%s); using '
                                'smtp_from %s', event.author, event.ticket_id,
                                e, config.envelope_from)
            else:
                return address
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
    formatter = TicketMailFormatter(env, ticket, config)
    items: list = []
    if digest:
        recipients, later = split_digest(env, config, resolver, recipients)
        items = digest_items_for(env, formatter, event, later)
    return Expansion(event, formatter, recipients, items)


def build_messages(env, config: NotifyConfig, event: TicketEvent,
                   digest_items: Optional[list] = None,
                   tokens: Optional[TokenBatch] = None) -> List[NewMessage]:
    """Every message that *event* produces, one per recipient.  When a
    *digest_items* list is given, recipients who chose the daily digest
    get no message: their items are appended to it.  With *tokens*, the
    unsubscribe tokens are left in it for the caller to store with the
    messages (else they are stored at once)."""
    found = expand(env, config, event, digest=digest_items is not None)
    if found is None:
        return []
    if digest_items is not None:
        digest_items.extend(found.digest_items)
    return render_messages(env, config, event, found.formatter,
                           found.recipients, tokens)


def render_messages(env, config: NotifyConfig, event: TicketEvent,
                    formatter: TicketMailFormatter,
                    recipients: List[Recipient],
                    tokens: Optional[TokenBatch] = None) -> List[NewMessage]:
    """One message per recipient of *event*, the body rendered once per
    (language, format); *tokens* as in :func:`build_messages`."""
    if not recipients:
        return []
    when = mail_time(env, event)
    msgid, root = thread_ids(env, config, event, when)
    # personal one-click unsubscribe links, made here in the worker
    recipients = with_unsubscribe_links(env, recipients, config, tokens)
    # and personal reply addresses, when replies by mail are on
    recipients, personal_reply = with_reply_addresses(
        env, recipients, event.ticket_id, config, tokens)
    copies = {}
    from_name = sender_name(env, config, event)
    from_addr = sender_address(env, config, event)   # checked (logged) once
    # rendered and MIME-encoded once per (language, format), not per person
    for (language, fmt), group in group_recipients(recipients):
        rendered, html = render_mail(env, formatter, event, language, fmt)
        headers = MailHeaders(
            from_name=from_name, from_addr=from_addr,
            reply_to='' if personal_reply else config.smtp_replyto,
            subject=rendered.subject, msgid=msgid, root_msgid=root,
            date=when / 1000000.0,
            extra=standard_headers(env, config, event.kind, event.ticket_id,
                                   rendered.link))
        # stored once for the group (outbox.add_messages): each copy
        # holds only its personal headers
        shared = encode_shared_part(headers, rendered.body, config, html,
                                    fmt).decode('ascii')
        for recipient, head in build_heads(group, config, recipients):
            copies[id(recipient)] = (rendered.subject, head, shared)
    return [NewMessage(ticket=event.ticket_id, kind=event.kind, msgid=msgid,
                       sender=config.envelope_from,
                       recipient=recipient.address, reason=recipient.reason,
                       subject=copies[id(recipient)][0],
                       message=copies[id(recipient)][1],
                       shared=copies[id(recipient)][2])
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

