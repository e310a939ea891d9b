"""The mail that proves control of an address before its mail stops or
resumes (plain Python).

The address in a user's preferences is not verified: anyone can type
someone else's there.  So the logged-in unsubscribe page does not act on
it; it queues this mail, through the outbox like all other mail, to that
address.  The mail holds a personal one-click link (a token of
:mod:`tracnotify.mail.suppression`); only whoever reads the mail can open
it and press the button that (un)subscribes the address.

A few confirmations per address and hour at most (``MAX_PER_HOUR``): the
page cannot be used to flood an address.
"""

import time
from email.utils import make_msgid
from typing import Optional

from tracnotify import outbox
from tracnotify.config import NotifyConfig
from tracnotify.i18n.domain import _
from tracnotify.i18n.language import mail_language
from tracnotify.mail.chrome import clean_header_text, list_id, signature, subject_prefix
from tracnotify.mail.message import (
    AddressError,
    MailHeaders,
    Recipient,
    build_copies,
    encode_shared_part,
    make_address,
)
from tracnotify.mail.suppression import issue_tokens, normalize, page_url

KIND = 'unsubscribe-confirm'        # tracnotify_message.kind
REASON = 'confirm'                  # X-Trac-Notification-Reason
UNSUBSCRIBE, RESUBSCRIBE = 'unsubscribe', 'resubscribe'
ACTIONS = (UNSUBSCRIBE, RESUBSCRIBE)
MAX_PER_HOUR = 3

SENT, LIMITED, CANNOT_SEND, BAD_ADDRESS = 'sent', 'limited', 'cannot_send', \
    'bad_address'


def recent_confirmations(env, address: str, within_us: int = 3600 * 10 ** 6
                         ) -> int:
    """How many confirmations were queued for *address* lately."""
    for n, in env.db_query("""
            SELECT COUNT(*) FROM tracnotify_message
            WHERE kind=%s AND recipient=%s AND created>=%s""",
            (KIND, normalize(address), outbox.now_us() - within_us)):
        return n
    return 0


def request_confirmation(env, config: NotifyConfig, address: str,
                         action: str, requested_by: str,
                         language: Optional[str] = None) -> str:
    """Queue the confirmation mail for *action* on *address*; returns
    SENT (queued), LIMITED (too many lately), CANNOT_SEND (mail is off)
    or BAD_ADDRESS.  Nothing on the never-mail list changes here."""
    if action not in ACTIONS:
        raise ValueError('unknown action: %r' % action)
    if not config.can_send:
        return CANNOT_SEND
    try:
        make_address(address)
    except AddressError:
        return BAD_ADDRESS
    address = normalize(address)
    if recent_confirmations(env, address) >= MAX_PER_HOUR:
        env.log.info('tracnotify: no confirmation mail to %s: %d in the '
                     'last hour', address, MAX_PER_HOUR)
        return LIMITED
    token = issue_tokens(env, [address])[address]
    msgid, subject, data = build_confirmation(
        env, config, address, action, requested_by, page_url(env, token),
        language)
    outbox.add_messages(env, [outbox.NewMessage(
        ticket=0, kind=KIND, msgid=msgid, sender=config.envelope_from,
        recipient=address, reason=REASON, subject=subject, message=data)])
    env.log.info('tracnotify: %s asked to %s %s; confirmation mail queued',
                 requested_by, action, address)
    return SENT


def build_confirmation(env, config: NotifyConfig, address: str, action: str,
                       requested_by: str, url: str,
                       language: Optional[str] = None):
    """``(msgid, subject, message)`` of the confirmation mail."""
    project = env.project_name
    prefix = subject_prefix(env, config)
    with mail_language(env, language):
        if action == UNSUBSCRIBE:
            title = _('Confirm: no more e-mail to %(address)s',
                      address=address)
            asked = _('The user "%(user)s" of %(project)s asked to stop all '
                      'e-mail from this Trac to %(address)s.',
                      user=requested_by, project=project, address=address)
            todo = _('If this is your address and you want that, open this '
                     'link and press "Unsubscribe":')
        else:
            title = _('Confirm: e-mail again to %(address)s',
                      address=address)
            asked = _('The user "%(user)s" of %(project)s asked to send '
                      'e-mail from this Trac to %(address)s again.',
                      user=requested_by, project=project, address=address)
            todo = _('If this is your address and you want that, open this '
                     'link and press "Send me mail again":')
        ignore = _('Otherwise ignore this mail: nothing changes.')
        body = '\n'.join([str(asked), '', str(todo), '', url, '',
                          str(ignore), ''] + signature(env))
    subject = clean_header_text(('%s %s' % (prefix, title)).strip())
    domain = config.envelope_from.rpartition('@')[2] or 'localhost'
    msgid = make_msgid('tracnotify.confirm', domain=domain)
    headers = MailHeaders(
        from_name=config.smtp_from_name or project,
        from_addr=config.envelope_from, reply_to=config.smtp_replyto,
        subject=subject, msgid=msgid, root_msgid=None,
        date=time.time(),
        extra=(('X-Mailer', 'tracnotify (Trac %s)' % env.trac_version),
               ('X-Trac-Project', project),
               ('X-Trac-Notification-Type', KIND),
               ('List-Id', list_id(env, config))))
    shared = encode_shared_part(headers, body, config)
    (_r, data), = build_copies(shared, [Recipient(address, REASON)], config)
    return msgid, subject, data
