"""Replies as mail clients write them, and reply tokens, for the inbound
tests."""

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from typing import Optional

from tracnotify.inbound import tokens

REPLY_ADDRESS = 'trac+{token}@example.org'


def issue_token(env, ticket: int, sid: str, address: str,
                days: int = 30) -> str:
    """A stored reply token for *sid* (or a bare *address*) on *ticket*."""
    batch = tokens.ReplyTokens(days)
    token = batch.issue(ticket, sid, address)
    tokens.store_rows(env, batch.rows)
    return token


def reply_to(token: str) -> str:
    return REPLY_ADDRESS.replace('{token}', token)


def reply_mail(to: str, sender: str, text: str, subject: str = 'Re: #1',
               **headers: str) -> bytes:
    """A plain text reply from *sender* to *to*, with extra *headers*
    (``X_Autoreply='yes'`` -> ``X-Autoreply: yes``)."""
    msg = EmailMessage(policy=SMTP)
    msg['From'] = sender
    msg['To'] = to
    msg['Subject'] = subject
    msg['Date'] = formatdate()
    msg['Message-ID'] = make_msgid(domain='client.example')
    for name, value in headers.items():
        msg[name.replace('_', '-')] = value
    msg.set_content(text)
    return msg.as_bytes()


def comments(env, ticket: int) -> list:
    """``(author, text)`` of the comments of *ticket*, oldest first."""
    return [(author, text) for author, text in env.db_query("""
        SELECT author, newvalue FROM ticket_change
        WHERE ticket=%s AND field='comment' AND newvalue!=''
        ORDER BY time""", (ticket,))]


def inbound_rows(env, outcome: Optional[str] = None) -> list:
    """``(kind, outcome, reason)`` of tracnotify_inbound, oldest first."""
    rows = env.db_query("""SELECT kind, outcome, reason FROM tracnotify_inbound
                           ORDER BY id""")
    return [r for r in rows if outcome is None or r[1] == outcome]


def attachments(env, ticket: int) -> list:
    return [name for name, in env.db_query(
        "SELECT filename FROM attachment WHERE type='ticket' AND id=%s",
        (str(ticket),))]
