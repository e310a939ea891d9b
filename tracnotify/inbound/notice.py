"""One short mail back to the person whose reply was refused.

It goes to the address the reply token was made for (never to the
forgeable From of the refused message: no backscatter to strangers), at
most once an hour per address, marked ``Auto-Submitted: auto-replied``
(RFC 3834) so that well-behaved systems do not answer it, and it is queued
through the outbox like any mail.
"""

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from typing import Optional

from tracnotify import outbox
from tracnotify.config import load_config
from tracnotify.i18n.domain import _
from tracnotify.i18n.language import mail_language
from tracnotify.mail.message import AddressError, make_address

KIND = 'reply_notice'
HOUR_US = 3600 * 1000000


def _language(env, sid: str) -> Optional[str]:
    if not sid:
        return None
    for value, in env.db_query("""
            SELECT value FROM session_attribute
            WHERE sid=%s AND authenticated=1 AND name='language'""", (sid,)):
        return value
    return None


def queue_notice(env, address: str, ticket: Optional[int], reason: str,
                 sid: str = '', in_reply_to: str = '',
                 subject: str = '') -> bool:
    """Queue the explanation of *reason* to *address*; False when one was
    queued for it within the hour (or mail is off, or the address is
    unusable)."""
    config = load_config(env)
    if not address or not config.can_send:
        return False
    since = outbox.now_us() - HOUR_US
    if env.db_query("""SELECT COUNT(*) FROM tracnotify_message
                       WHERE kind=%s AND recipient=%s AND created>%s""",
                    (KIND, address, since))[0][0]:
        return False
    try:
        to = make_address(address)
        sender = make_address(config.smtp_from or config.smtp_replyto,
                              config.smtp_from_name or env.project_name)
    except AddressError:
        return False
    url = env.abs_href.ticket(ticket) if ticket else env.abs_href()
    with mail_language(env, _language(env, sid)):
        title = str(_('Your reply was not added to ticket #%(id)s',
                      id=ticket) if ticket else _('Your reply was not added'))
        text = str(_('Your e-mail to %(project)s was not added to the ticket:\n'
                 '%(reason)s.\n\nNothing of it was saved. You can comment on '
                 'the ticket here:\n%(url)s\n\n(This is an automatic answer; '
                 'there is at most one an hour.)\n',
                 project=env.project_name, reason=reason, url=url))
    msg = EmailMessage(policy=SMTP)
    msg['From'] = sender
    msg['To'] = to
    msg['Subject'] = title
    msg['Date'] = formatdate(localtime=False)
    msgid = make_msgid(domain=sender.domain or None)
    msg['Message-ID'] = msgid
    if in_reply_to and '\n' not in in_reply_to and len(in_reply_to) < 250:
        msg['In-Reply-To'] = in_reply_to
    msg['Auto-Submitted'] = 'auto-replied'
    msg.set_content(text)
    outbox.add_messages(env, [outbox.NewMessage(
        ticket=ticket or 0, kind=KIND, msgid=msgid,
        sender=config.envelope_from, recipient=address,
        reason='reply_refused', subject=title,
        message=msg.as_bytes(policy=SMTP).decode('utf-8'))])
    return True
