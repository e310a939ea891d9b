"""Never a loop, never a flood: what is dropped before any reply is read.

RFC 3834: a message that says it was sent automatically (Auto-Submitted
other than ``no``; the older Precedence bulk/junk/list, X-Autoreply,
X-Autorespond) never gets an automatic action, and neither does mail from
tracnotify's own addresses (its copies sent back to it).  One sender gets
at most ``reply_rate_limit`` messages an hour taken.
"""

from typing import Iterable, Optional

from tracnotify.inbound.parse import InboundMail, addresses, header

AUTO_PRECEDENCE = ('bulk', 'junk', 'list')
AUTO_HEADERS = ('X-Autoreply', 'X-Autorespond')
#: headers only tracnotify's own mail carries
OWN_HEADERS = ('X-Trac-Notification-Reason',)
HOUR_US = 3600 * 1000000


def auto_reason(mail: InboundMail) -> Optional[str]:
    """Why *mail* is an automatic message, or None."""
    msg = mail.msg
    auto = header(msg, 'Auto-Submitted').split(';', 1)[0].strip().lower()
    if auto and auto != 'no':
        return 'automatic message (Auto-Submitted: %s)' % auto[:40]
    precedence = header(msg, 'Precedence').strip().lower()
    if precedence in AUTO_PRECEDENCE:
        return 'automatic message (Precedence: %s)' % precedence
    for name in AUTO_HEADERS:
        if name in msg:
            return 'automatic message (%s)' % name
    return None


def loop_reason(mail: InboundMail, own: Iterable[str],
                reply_pattern=None) -> Optional[str]:
    """Why *mail* looks like tracnotify's own mail coming back, or None:
    From one of the *own* addresses or a reply address, or carrying a
    header only tracnotify writes."""
    sender = mail.sender
    own = {a.strip().lower() for a in own if a}
    if sender and (sender in own or (reply_pattern is not None and
                                     reply_pattern.match(sender))):
        return 'mail loop (from %s, an address of this tracker)' % sender
    for name in OWN_HEADERS:
        if name in mail.msg:
            return 'mail loop (a copy of our own mail: %s)' % name
    return None


def own_addresses(config) -> list:
    """The addresses tracnotify sends from."""
    return [a for a in (config.smtp_from, config.smtp_replyto) if a] + \
        addresses([config.smtp_from or '', config.smtp_replyto or ''])


def over_rate(env, sender: str, limit: int, now: int) -> bool:
    """Whether *sender* has sent *limit* or more messages in the last
    hour (as recorded in ``tracnotify_inbound``)."""
    if not sender:
        return False
    count = env.db_query("""
        SELECT COUNT(*) FROM tracnotify_inbound
        WHERE sender=%s AND received>%s""", (sender, now - HOUR_US))[0][0]
    return count >= limit
