"""The bounce fixtures of tests/fixtures/bounces/, filled in for a test:
``{verp}`` (the envelope sender that bounced), ``{recipient}`` and
``{message_id}`` (the copy that bounced)."""

import email
import email.policy
import os

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'fixtures', 'bounces')
NAMES = ('dsn_hard', 'dsn_soft', 'postfix_legacy', 'exim', 'vacation')


def bounce_bytes(name: str, verp: str = 'trac+bounce-1-x@example.org',
                 recipient: str = 'alice@example.net',
                 message_id: str = '<1.test@example.org>') -> bytes:
    """Fixture *name* (without .eml) with its placeholders filled, CRLF."""
    with open(os.path.join(FIXTURES, name + '.eml'), encoding='utf-8') as f:
        text = f.read()
    text = text.replace('{verp}', verp).replace('{recipient}', recipient) \
        .replace('{message_id}', message_id)
    return text.replace('\r\n', '\n').replace('\n', '\r\n').encode('utf-8')


def bounce_message(name: str, **values) -> email.message.Message:
    """The same, parsed as ``notify receive`` parses mail."""
    return email.message_from_bytes(bounce_bytes(name, **values),
                                    policy=email.policy.compat32)
