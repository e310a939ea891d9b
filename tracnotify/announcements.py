"""Sending an announcement: check it, record it in the outbox, wake delivery.

Plain Python shared by the admin panel (:mod:`tracnotify.web.announce`) and
``trac-admin ENV notify announce`` (:mod:`tracnotify.announce_command`).
Every problem (no subject, an unknown group, nobody to send to, mail
turned off, the same form sent twice) is an :class:`AnnouncementError`
with a message for the admin, raised before anything is stored.
"""

from typing import List, Optional

from tracnotify import outbox
from tracnotify.announce_event import (
    MAX_SUBJECT,
    MAX_TEXT,
    AnnouncementError,
    AnnouncementEvent,
    new_key,
    parse_audience,
)
from tracnotify.config import NotifyConfig, load_config
from tracnotify.delivery.service import DeliveryService
from tracnotify.i18n.domain import _
from tracnotify.mail.announce_recipients import AnnounceRecipientResolver
from tracnotify.mail.chrome import clean_header_text
from tracnotify.mail.message import Recipient

KEY_PREFIX = 'announcement:'


def draft(env, author: str, audience: str, subject: str, text: str,
          key: Optional[str] = None) -> AnnouncementEvent:
    """An announcement made of the admin's input, checked (the audience
    exists, subject and text are given and not too long)."""
    subject = clean_header_text(subject or '', MAX_SUBJECT + 1)
    if not subject:
        raise AnnouncementError(_('An announcement needs a subject.'))
    if len(subject) > MAX_SUBJECT:
        raise AnnouncementError(_(
            'The subject is longer than %(max)d characters.',
            max=MAX_SUBJECT))
    text = (text or '').replace('\r\n', '\n')
    if not text.strip():
        raise AnnouncementError(_('An announcement needs a text.'))
    if len(text) > MAX_TEXT:
        raise AnnouncementError(_(
            'The text is longer than %(max)d characters.', max=MAX_TEXT))
    target = parse_audience(audience)
    return AnnouncementEvent(subject=subject, text=text,
                             audience=str(target), time=outbox.now_us(),
                             author=author or '', key=key or new_key())


def recipients(env, event: AnnouncementEvent,
               config: Optional[NotifyConfig] = None) -> List[Recipient]:
    """Who would get *event* if it were sent now (the worker resolves them
    again when it builds the mail)."""
    return AnnounceRecipientResolver(env, config or load_config(env)) \
        .resolve(event.target)


def was_sent(env, key: str) -> bool:
    """Whether the announcement *key* is in the outbox already."""
    return bool(env.db_query(
        'SELECT 1 FROM tracnotify_event WHERE change_key=%s',
        (KEY_PREFIX + key,)))


def send(env, event: AnnouncementEvent) -> int:
    """Record *event* in the outbox for the delivery worker and wake it;
    returns how many people it is for now.  The same announcement (its
    key: a form submitted twice) is refused the second time."""
    config = load_config(env)
    if not config.smtp_enabled:
        raise AnnouncementError(_(
            'Mail is turned off ([notification] smtp_enabled): nothing '
            'was sent.'))
    if was_sent(env, event.key):
        raise AnnouncementError(_('This announcement was sent already.'))
    count = len(recipients(env, event, config))
    if not count:
        raise AnnouncementError(_(
            'Nobody would receive this announcement (%(audience)s): '
            'nothing was sent.', audience=event.audience))
    try:
        outbox.add_event(env, event, change_key=KEY_PREFIX + event.key)
    except Exception:
        if was_sent(env, event.key):    # the same form, at the same time
            raise AnnouncementError(_('This announcement was sent '
                                      'already.'))
        raise
    env.log.info('tracnotify: announcement %r to %s by %s queued for %d '
                 'recipient(s)', event.subject, event.audience, event.author,
                 count)
    DeliveryService(env).wake()
    return count
